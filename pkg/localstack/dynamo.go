package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableWait bounds how long EnsureTable waits for a table to become ACTIVE.
const tableWait = time.Minute

// CreateTableInput builds the CreateTable call for the table logicalID of the
// template, named tableName (the template's TableName is often an intrinsic,
// so the caller names the table). Billing is PAY_PER_REQUEST; the
// TimeToLiveSpecification is not part of CreateTable (see EnsureTable).
func (t *Template) CreateTableInput(logicalID, tableName string) (*dynamodb.CreateTableInput, error) {
	tb, ok := t.Table(logicalID)
	if !ok {
		return nil, fmt.Errorf("localstack: %s has no AWS::DynamoDB::Table %q", t.Path, logicalID)
	}
	if tb.problem != nil {
		return nil, fmt.Errorf("localstack: %s: %w", t.Path, tb.problem)
	}
	if tableName == "" {
		return nil, fmt.Errorf("localstack: table %s: empty table name", logicalID)
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(tableName),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   keySchema(tb.KeySchema),
	}
	if tb.StreamViewType != "" {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewType(tb.StreamViewType)}
	}
	for _, a := range tb.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: types.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, ix := range tb.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.IndexName),
			KeySchema:  keySchema(ix.KeySchema),
			Projection: projection(ix.Projection),
		})
	}
	for _, ix := range tb.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(ix.IndexName),
			KeySchema:  keySchema(ix.KeySchema),
			Projection: projection(ix.Projection),
		})
	}
	return in, nil
}

func keySchema(ks []KeyElement) []types.KeySchemaElement {
	out := make([]types.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       types.KeyType(k.KeyType),
		})
	}
	return out
}

func projection(p Projection) *types.Projection {
	pt := p.ProjectionType
	if pt == "" {
		pt = string(types.ProjectionTypeKeysOnly) // CloudFormation's default
	}
	return &types.Projection{
		ProjectionType:   types.ProjectionType(pt),
		NonKeyAttributes: slices.Clone(p.NonKeyAttributes),
	}
}

// EnsureTable makes the table logicalID of t exist as tableName: it creates
// it when missing, waits until it is ACTIVE and enables TTL on the
// template's TTL attribute. It is idempotent. A table that already exists
// with another key schema or other indexes is an error (with a persisted
// DynamoDB Local, delete its data directory to start over).
func EnsureTable(ctx context.Context, client *dynamodb.Client, t *Template, logicalID, tableName string) error {
	in, err := t.CreateTableInput(logicalID, tableName)
	if err != nil {
		return err
	}
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = client.CreateTable(ctx, in)
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) { // inUse: created meanwhile by someone else
			return fmt.Errorf("localstack: create table %s: %w", tableName, err)
		}
		slog.InfoContext(ctx, "localstack: created table", "table", tableName, "logical_id", logicalID)
	case err != nil:
		return fmt.Errorf("localstack: describe table %s: %w", tableName, err)
	default:
		if err := sameShape(in, desc.Table); err != nil {
			return fmt.Errorf("localstack: table %s exists with another shape than %s in %s: %w",
				tableName, logicalID, t.Path, err)
		}
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, tableWait); err != nil {
		return fmt.Errorf("localstack: wait for table %s: %w", tableName, err)
	}

	tb, _ := t.Table(logicalID)
	if tb.TimeToLive == nil || !tb.TimeToLive.Enabled || tb.TimeToLive.AttributeName == "" {
		return nil
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: in.TableName})
	if err != nil {
		return fmt.Errorf("localstack: describe TTL of %s: %w", tableName, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == tb.TimeToLive.AttributeName &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: in.TableName,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(tb.TimeToLive.AttributeName),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("localstack: enable TTL on %s.%s: %w", tableName, tb.TimeToLive.AttributeName, err)
	}
	return nil
}

// sameShape compares the keys and index names of an existing table with the
// wanted ones.
func sameShape(want *dynamodb.CreateTableInput, have *types.TableDescription) error {
	if have == nil {
		return errors.New("no table description")
	}
	if a, b := keyString(want.KeySchema), keyString(have.KeySchema); a != b {
		return fmt.Errorf("key schema is %s, want %s", b, a)
	}
	wantIx := map[string]string{}
	for _, ix := range want.GlobalSecondaryIndexes {
		wantIx[aws.ToString(ix.IndexName)] = keyString(ix.KeySchema)
	}
	haveIx := map[string]string{}
	for _, ix := range have.GlobalSecondaryIndexes {
		haveIx[aws.ToString(ix.IndexName)] = keyString(ix.KeySchema)
	}
	for name, ks := range wantIx {
		if got, ok := haveIx[name]; !ok {
			return fmt.Errorf("global secondary index %s is missing", name)
		} else if got != ks {
			return fmt.Errorf("global secondary index %s has key schema %s, want %s", name, got, ks)
		}
	}
	for name := range haveIx {
		if _, ok := wantIx[name]; !ok {
			return fmt.Errorf("global secondary index %s is not in the template", name)
		}
	}
	return nil
}

func keyString(ks []types.KeySchemaElement) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
