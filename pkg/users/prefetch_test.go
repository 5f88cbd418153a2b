package users

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// itemsDB is a fault-injecting in-memory table for prefetchDB: it holds
// an item for every key asked, refuses a BatchGetItem with duplicate keys
// or more than 100 keys as DynamoDB does, and leaves unprocessed the keys
// named in throttle the first time they are asked.
type itemsDB struct {
	DB
	throttle map[string]bool
	batches  []int // keys per BatchGetItem
	gets     int
}

func (d *itemsDB) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for tbl, req := range in.RequestItems {
		if len(req.Keys) > 100 {
			return nil, errors.New("ValidationException: too many items requested")
		}
		d.batches = append(d.batches, len(req.Keys))
		seen := map[string]bool{}
		for _, k := range req.Keys {
			id := keyID(k)
			if seen[id] {
				return nil, errors.New("ValidationException: Provided list of item keys contains duplicates")
			}
			seen[id] = true
			if d.throttle[id] {
				delete(d.throttle, id)
				u := out.UnprocessedKeys[tbl]
				u.Keys = append(u.Keys, k)
				out.UnprocessedKeys[tbl] = u
				continue
			}
			out.Responses[tbl] = append(out.Responses[tbl], map[string]types.AttributeValue{"pk": k["pk"], "sk": k["sk"], "v": &types.AttributeValueMemberS{Value: id}})
		}
	}
	return out, nil
}

func (d *itemsDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	d.gets++
	return &dynamodb.GetItemOutput{Item: map[string]types.AttributeValue{"pk": in.Key["pk"], "sk": in.Key["sk"]}}, nil
}

func keysNamed(prefix string, n int) []map[string]types.AttributeValue {
	out := make([]map[string]types.AttributeValue, n)
	for i := range out {
		out[i] = key(fmt.Sprintf("%s%03d", prefix, i), "X")
	}
	return out
}

func ids(items []map[string]types.AttributeValue) map[string]int {
	m := map[string]int{}
	for _, it := range items {
		m[keyID(it)]++
	}
	return m
}

func TestPrefetchFoldsExtraKeys(t *testing.T) {
	ctx := context.Background()
	caller := userKey("caller")
	get := &dynamodb.GetItemInput{TableName: aws.String("t"), Key: caller, ConsistentRead: aws.Bool(true)}
	t.Run("case=the caller's own key among the extras is asked once and returned to both", func(t *testing.T) {
		db := &itemsDB{}
		pf := &prefetchDB{DB: db, table: "t", extra: append(keysNamed("A#", 3), caller)}
		res, err := pf.GetItem(ctx, get)
		if err != nil || keyID(res.Item) != keyID(caller) {
			t.Fatalf("%v %v", res, err)
		}
		got, err := pf.results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m := ids(got); len(got) != 4 || m[keyID(caller)] != 1 || len(db.batches) != 1 || db.batches[0] != 4 || db.gets != 0 {
			t.Errorf("got %v, batches %v, gets %d", m, db.batches, db.gets)
		}
	})
	t.Run("case=more extras than fit: 99 ride with the caller, results reads the rest", func(t *testing.T) {
		db := &itemsDB{}
		pf := &prefetchDB{DB: db, table: "t", extra: keysNamed("B#", 150)}
		if _, err := pf.GetItem(ctx, get); err != nil {
			t.Fatal(err)
		}
		got, err := pf.results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 150 || len(ids(got)) != 150 || fmt.Sprint(db.batches) != "[100 51]" {
			t.Errorf("%d items, batches %v", len(got), db.batches)
		}
	})
	t.Run("case=an API key's BatchGetItem takes what fits, and unprocessed extras are read after", func(t *testing.T) {
		slot := key(UserPK("caller"), "APIKEY#00")
		extra := append(keysNamed("C#", 120), caller)
		db := &itemsDB{throttle: map[string]bool{keyID(extra[5]): true}}
		pf := &prefetchDB{DB: db, table: "t", extra: extra}
		res, err := pf.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{"t": {Keys: []map[string]types.AttributeValue{caller, slot}, ConsistentRead: aws.Bool(true)}}})
		if err != nil {
			t.Fatal(err)
		}
		if m := ids(res.Responses["t"]); len(m) != 2 || m[keyID(caller)] != 1 || m[keyID(slot)] != 1 || len(res.UnprocessedKeys) != 0 {
			t.Errorf("the authentication's answer: %v %v", m, res.UnprocessedKeys)
		}
		got, err := pf.results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m := ids(got); len(got) != 121 || len(m) != 121 || m[keyID(slot)] != 0 || fmt.Sprint(db.batches) != "[100 23]" {
			t.Errorf("%d items %v, batches %v", len(got), len(m), db.batches)
		}
	})
}
