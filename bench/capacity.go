package main

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/localstack"
)

// DynamoDB Local reports consumed capacity as DynamoDB does for single-item
// reads and writes (indexes included), but not for TransactWriteItems: it
// charges 4 units per KB instead of 2, and counts items of the same size
// once (see calibrate). So the request units of a transaction are worked
// out here as DynamoDB bills them, from the sizes of the items it touches:
// read with a plain client just before and after the call, outside every
// timing (the time is subtracted as overhead).

// txModel prices TransactWriteItems as DynamoDB on demand does.
type txModel struct {
	db      *dynamodb.Client // without the timing and counting middlewares
	table   string
	key     []string // the table's key attributes
	indexes []localstack.SecondaryIndex
}

func newTxModel(db *dynamodb.Client, tpl *localstack.Template, logicalID, table string) (*txModel, error) {
	tb, ok := tpl.Table(logicalID)
	if !ok {
		return nil, fmt.Errorf("template.yaml has no table %s", logicalID)
	}
	m := &txModel{db: db, table: table, indexes: tb.GlobalSecondaryIndexes}
	for _, k := range tb.KeySchema {
		m.key = append(m.key, k.AttributeName)
	}
	return m, nil
}

type txAction struct {
	kind string // Put, Update, Delete, ConditionCheck
	key  map[string]types.AttributeValue
	put  map[string]types.AttributeValue
}

func (m *txModel) actions(in *dynamodb.TransactWriteItemsInput) ([]txAction, error) {
	var acts []txAction
	for _, it := range in.TransactItems {
		var a txAction
		var table *string
		switch {
		case it.Put != nil:
			a = txAction{kind: "Put", put: it.Put.Item, key: m.keyOf(it.Put.Item)}
			table = it.Put.TableName
		case it.Update != nil:
			a, table = txAction{kind: "Update", key: it.Update.Key}, it.Update.TableName
		case it.Delete != nil:
			a, table = txAction{kind: "Delete", key: it.Delete.Key}, it.Delete.TableName
		case it.ConditionCheck != nil:
			a, table = txAction{kind: "ConditionCheck", key: it.ConditionCheck.Key}, it.ConditionCheck.TableName
		default:
			continue
		}
		if aws.ToString(table) != m.table {
			return nil, fmt.Errorf("a transaction on table %s, not %s", aws.ToString(table), m.table)
		}
		acts = append(acts, a)
	}
	return acts, nil
}

func (m *txModel) keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	k := map[string]types.AttributeValue{}
	for _, name := range m.key {
		k[name] = item[name]
	}
	return k
}

func (m *txModel) keyString(k map[string]types.AttributeValue) string {
	var parts []string
	for _, name := range m.key {
		if s, ok := k[name].(*types.AttributeValueMemberS); ok {
			parts = append(parts, s.Value)
		} else {
			parts = append(parts, fmt.Sprint(k[name]))
		}
	}
	return strings.Join(parts, "\x00")
}

// images reads the current items of the actions (strongly consistent).
func (m *txModel) images(ctx context.Context, acts []txAction, want func(txAction) bool) (map[string]map[string]types.AttributeValue, error) {
	out := map[string]map[string]types.AttributeValue{}
	seen := map[string]bool{}
	var keys []map[string]types.AttributeValue
	for _, a := range acts {
		if ks := m.keyString(a.key); want(a) && !seen[ks] {
			seen[ks] = true
			keys = append(keys, a.key)
		}
	}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 100)]
		keys = keys[len(batch):]
		req := map[string]types.KeysAndAttributes{m.table: {Keys: batch, ConsistentRead: aws.Bool(true)}}
		for len(req) > 0 {
			res, err := m.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, err
			}
			for _, it := range res.Responses[m.table] {
				out[m.keyString(m.keyOf(it))] = it
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// units prices a committed transaction from the items before and after:
// each Put, Update or Delete 2 WRU per KB of the larger image, each
// ConditionCheck 2 RRU per 4 KB, and each index entry written or removed
// 1 WRU per KB of what the index projects.
func (m *txModel) units(acts []txAction, before, after map[string]map[string]types.AttributeValue) (rru, wru float64) {
	for _, a := range acts {
		ks := m.keyString(a.key)
		b, aft := before[ks], after[ks]
		if a.kind == "Delete" {
			aft = nil
		}
		if a.kind == "ConditionCheck" {
			rru += 2 * math.Max(1, math.Ceil(float64(itemSize(b))/4096))
			continue
		}
		wru += 2 * kbUnits(max(itemSize(b), itemSize(aft)))
		for _, ix := range m.indexes {
			inB, inA := hasKeys(b, ix.KeySchema), hasKeys(aft, ix.KeySchema)
			switch {
			case inB && inA && sameKeys(b, aft, ix.KeySchema):
				if !reflect.DeepEqual(b, aft) {
					wru += kbUnits(m.projected(aft, ix))
				}
			case inB && inA:
				wru += kbUnits(m.projected(b, ix)) + kbUnits(m.projected(aft, ix))
			case inB:
				wru += kbUnits(m.projected(b, ix))
			case inA:
				wru += kbUnits(m.projected(aft, ix))
			}
		}
	}
	return rru, wru
}

// projected is the size of an item's entry in an index.
func (m *txModel) projected(item map[string]types.AttributeValue, ix localstack.SecondaryIndex) int {
	if ix.Projection.ProjectionType == "ALL" {
		return itemSize(item)
	}
	keep := map[string]bool{}
	for _, k := range m.key {
		keep[k] = true
	}
	for _, k := range ix.KeySchema {
		keep[k.AttributeName] = true
	}
	for _, a := range ix.Projection.NonKeyAttributes {
		keep[a] = true
	}
	part := map[string]types.AttributeValue{}
	for k, v := range item {
		if keep[k] {
			part[k] = v
		}
	}
	return itemSize(part)
}

func hasKeys(item map[string]types.AttributeValue, ks []localstack.KeyElement) bool {
	if item == nil {
		return false
	}
	for _, k := range ks {
		if _, ok := item[k.AttributeName]; !ok {
			return false
		}
	}
	return true
}

func sameKeys(a, b map[string]types.AttributeValue, ks []localstack.KeyElement) bool {
	for _, k := range ks {
		if !reflect.DeepEqual(a[k.AttributeName], b[k.AttributeName]) {
			return false
		}
	}
	return true
}

func kbUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

// itemSize is an item's size as DynamoDB counts it: attribute names plus
// values (strings and binaries by length, numbers about one byte per two
// digits plus one, lists and maps 3 bytes plus one per element).
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value)
	case *types.AttributeValueMemberN:
		return numberSize(x.Value)
	case *types.AttributeValueMemberB:
		return len(x.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range x.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range x.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range x.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range x.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	}
	return 0
}

func numberSize(s string) int {
	digits := 0
	for _, r := range strings.TrimLeft(s, "-+0") {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return (digits+1)/2 + 1
}

// Calibration is what DynamoDB Local reported for probe transactions on
// a scratch table, beside what DynamoDB bills for them.
type Calibration struct {
	Probe    string  `json:"probe"`
	LocalCU  float64 `json:"dynamodb_local_units"`
	AWSUnits float64 `json:"dynamodb_wru"`
}

// calibrate runs probe transactions on a scratch table to show how DynamoDB
// Local's units for transactions differ from DynamoDB's.
func calibrate(ctx context.Context, db *dynamodb.Client) ([]Calibration, error) {
	table := aws.String("bench-calibration")
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: table, BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}})
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = db.DeleteTable(context.WithoutCancel(ctx), &dynamodb.DeleteTableInput{TableName: table})
	}()
	n := 0
	put := func(size int) types.TransactWriteItem {
		n++
		return types.TransactWriteItem{Put: &types.Put{TableName: table, Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("probe-", n)},
			"x":  &types.AttributeValueMemberS{Value: strings.Repeat("x", size)},
		}}}
	}
	probes := []struct {
		name  string
		sizes []int
	}{
		{"1 item of 100 B", []int{100}},
		{"3 items of 100 B", []int{100, 100, 100}},
		{"1 item of 3 KB", []int{3000}},
		{"1 item of 3 KB and 1 of 100 B", []int{3000, 100}},
	}
	var out []Calibration
	for _, p := range probes {
		var items []types.TransactWriteItem
		billed := 0.0
		for _, s := range p.sizes {
			it := put(s)
			items = append(items, it)
			billed += 2 * kbUnits(itemSize(it.Put.Item))
		}
		res, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items, ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		if err != nil {
			return nil, err
		}
		out = append(out, Calibration{Probe: "TransactWriteItems, " + p.name, LocalCU: sum(res.ConsumedCapacity), AWSUnits: billed})
	}
	return out, nil
}

// timeOverhead runs f and adds its duration to the overhead to subtract.
func (c *awsCalls) timeOverhead(f func()) {
	t := time.Now()
	f()
	c.overhead.Add(int64(time.Since(t)))
}
