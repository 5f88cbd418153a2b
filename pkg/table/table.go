// Package table owns what every domain package needs from the one
// DynamoDB table: the client interface, item keys and attribute values,
// uniqueness claims, the mapping of DynamoDB's failures to the contract,
// transactions retried on conflicts, and batch reads. It knows no domain:
// pkg/users, pkg/groups and pkg/apikeys each keep their own items and use
// it, so none reaches into another's storage.
package table

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/example/accounts/pkg/httpapi"
)

// DB is the part of the DynamoDB client the service uses; tests wrap it to
// count requests or inject faults.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Key is an item's primary key.
func Key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": S(pk), "sk": S(sk)}
}

// S is a string attribute value.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// N is a number attribute value.
func N(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// String reads a string attribute of item ("" when absent or not a string).
func String(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// ErrConditionFailed is returned when a conditional write's condition fails.
var ErrConditionFailed = errors.New("table: condition failed")

// TxCanceled tells which items of a canceled transaction failed their
// condition, and whether any did.
func TxCanceled(err error) ([]bool, bool) {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) {
		return nil, false
	}
	failed := make([]bool, len(tc.CancellationReasons))
	any := false
	for i, r := range tc.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			failed[i] = true
			any = true
		}
	}
	return failed, any
}

// Error maps a DynamoDB failure (after the SDK's own retries) to the
// contract: a failed condition becomes ErrConditionFailed (a canceled
// transaction with failed conditions is returned as it is, for TxCanceled),
// throttling, conflicts and outages are 503 with Retry-After, anything else
// is a 500 whose cause is only logged.
func Error(err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrConditionFailed
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return httpapi.Unavailable(err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
			"InternalServerError", "ServiceUnavailable", "TransactionInProgressException", "LimitExceededException",
			// A single-item write to an item a transaction holds that moment.
			"TransactionConflictException":
			return httpapi.Unavailable(err)
		}
		if _, conditional := TxCanceled(err); conditional {
			return err
		}
		var tc *types.TransactionCanceledException
		if errors.As(err, &tc) {
			// Canceled for throttling or a conflicting transaction: retryable.
			return httpapi.Unavailable(err)
		}
		return httpapi.Internal(err)
	}
	// Network failures (connection refused, reset, retries exhausted).
	return httpapi.Unavailable(err)
}

// BatchGet reads keys from tableName in as few BatchGetItem requests as
// DynamoDB allows (100 keys each), asking again for what it leaves
// unprocessed; items come back in no particular order, absent ones not at
// all.
func BatchGet(ctx context.Context, db DB, tableName string, keys []map[string]types.AttributeValue, consistent bool) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 100)]
		keys = keys[len(chunk):]
		req := map[string]types.KeysAndAttributes{tableName: {Keys: chunk, ConsistentRead: aws.Bool(consistent)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 5 {
				return nil, httpapi.Unavailable(errors.New("batch get left keys unprocessed"))
			}
			if attempt > 0 {
				if err := sleepCtx(ctx, 20*time.Millisecond<<attempt); err != nil {
					return nil, httpapi.Unavailable(err)
				}
			}
			out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, Error(err)
			}
			items = append(items, out.Responses[tableName]...)
			req = out.UnprocessedKeys
		}
	}
	return items, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
