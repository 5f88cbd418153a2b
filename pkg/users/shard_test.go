package users

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Unit tests of the count shards' arithmetic; the shards on DynamoDB Local
// under concurrent writes are tested in pkg/api (conflict_test.go).

func TestCountShardKeys(t *testing.T) {
	st := store{table: "t", countShards: 4}
	var sks []string
	for _, k := range st.countKeys("all") {
		if pkOf(k) != "USERLIST#all" {
			t.Fatalf("pk %q", pkOf(k))
		}
		sks = append(sks, k["sk"].(*types.AttributeValueMemberS).Value)
		if i := countShardIndex(k); countShardSK(i) != sks[len(sks)-1] {
			t.Errorf("index %d of %v", i, sks[len(sks)-1])
		}
	}
	// Shard 0 is the single count item of the design before shards.
	if want := []string{"COUNT", "COUNT#1", "COUNT#2", "COUNT#3"}; len(sks) != 4 || sks[0] != want[0] || sks[3] != want[3] {
		t.Errorf("sort keys %v, want %v", sks, want)
	}
	if got := (&store{}).shards(); got != 16 {
		t.Errorf("unset shards = %d, want the default 16", got)
	}
}

func TestShardForSpreadsWithinTheBucketsWindow(t *testing.T) {
	seen := map[int]bool{}
	for range 1000 {
		seen[shardFor("usr", 16)] = true
	}
	if len(seen) != countSpread {
		t.Errorf("one bucket's writes went to %d shards, want %d", len(seen), countSpread)
	}
	all := map[int]bool{}
	for _, b := range []string{"abc", "joh", "mar", "usr", "a", "zz", "pet", "ann", "kim", "lee", "ali", "bob"} {
		for range 50 {
			all[shardFor(b, 16)] = true
		}
	}
	if len(all) < 12 {
		t.Errorf("many buckets' writes went to only %d of 16 shards", len(all))
	}
	for range 100 {
		if s := shardFor("abc", 1); s != 0 {
			t.Fatalf("one shard: %d", s)
		}
	}
}

func TestSumCountsAddsUpShards(t *testing.T) {
	item := func(id string, shard int, attrs map[string]int64) map[string]types.AttributeValue {
		it := key(countPrefix+id, countShardSK(shard))
		for k, v := range attrs {
			it[k] = n(v)
		}
		return it
	}
	got := []map[string]types.AttributeValue{
		item("all", 0, map[string]int64{"n": 3, "b:abc": 2, "b:zed": 1}),
		// A delete of an abc user written on another shard than its create.
		item("all", 5, map[string]int64{"n": -1, "b:abc": -1, "b:mar": 0}),
		item("all", 9, map[string]int64{"n": 2, "b:mar": 2}),
		item("staff#1", 0, map[string]int64{"n": 50, "b:abc": 50}), // another list
		claimItem(emailKey("x@example.com"), "u", 0),               // not a count
	}
	c := sumCounts("all", got)
	if c.total != 4 {
		t.Errorf("total %d, want 4", c.total)
	}
	want := []bucketCount{{"abc", 1}, {"mar", 2}, {"zed", 1}}
	if len(c.buckets) != len(want) {
		t.Fatalf("buckets %v, want %v", c.buckets, want)
	}
	for i := range want {
		if c.buckets[i] != want[i] {
			t.Errorf("buckets %v, want %v", c.buckets, want)
		}
	}
	if z := sumCounts("status#ENABLED", got); z.total != 0 || len(z.buckets) != 0 {
		t.Errorf("a list with no shard read: %+v", z)
	}
}

func TestCountItemsUseOneShard(t *testing.T) {
	st := store{table: "t", countShards: 16}
	before := &User{Username: "alice", Status: StatusEnabled}
	after := &User{Username: "zoe", Status: StatusEnabled, IsStaff: true}
	for range 20 {
		items := st.countItems(before, after)
		lists := map[string]int{}
		shards := map[int]bool{}
		for _, it := range items {
			id, ok := isCountKey(it.Update.Key)
			if !ok {
				t.Fatalf("not a count key: %v", it.Update.Key)
			}
			lists[id]++
			shards[countShardIndex(it.Update.Key)] = true
		}
		// all and status#ENABLED move two buckets each, in one update; staff
		// moves from 0 to 1; support#0 moves a bucket.
		for _, id := range []string{"all", "status#ENABLED", "staff#0", "staff#1", "support#0"} {
			if lists[id] != 1 {
				t.Errorf("list %s: %d updates, want 1 (%v)", id, lists[id], lists)
			}
		}
		if len(shards) != 1 {
			t.Errorf("the lists went to shards %v, want one", shards)
		}
	}
}

// conflictOnce cancels the first transaction for a conflict on its items
// at the given indexes, and records every input.
type conflictOnce struct {
	DB
	at  []int
	ins []*dynamodb.TransactWriteItemsInput
}

func (c *conflictOnce) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.ins = append(c.ins, in)
	if len(c.ins) > 1 {
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	for i := range reasons {
		reasons[i].Code = aws.String("None")
	}
	for _, i := range c.at {
		reasons[i].Code = aws.String("TransactionConflict")
	}
	return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
}

func TestConflictRetryMovesToAnotherShard(t *testing.T) {
	st := store{table: "t", countShards: 16}
	u := &User{UUID: "u1", Username: "alice", Status: StatusEnabled}
	for range 50 {
		items := append([]types.TransactWriteItem{{Put: &types.Put{TableName: aws.String("t"), Item: userKey(u.UUID)}}}, st.countItems(nil, u)...)
		// The user's item and the first list's shard conflicted.
		f := &conflictOnce{at: []int{0, 1}}
		r := retrying(f, func(time.Duration) {}, 16)
		if _, err := r.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			t.Fatal(err)
		}
		if len(f.ins) != 2 {
			t.Fatalf("%d calls", len(f.ins))
		}
		first, retry := f.ins[0].TransactItems, f.ins[1].TransactItems
		if pkOf(retry[0].Put.Item) != pkOf(first[0].Put.Item) {
			t.Error("the user's item changed")
		}
		a, b := countShardIndex(first[1].Update.Key), countShardIndex(retry[1].Update.Key)
		if a == b || b < 0 || b >= 16 || pkOf(first[1].Update.Key) != pkOf(retry[1].Update.Key) {
			t.Errorf("conflicting shard %d of %s retried on %d of %s", a, pkOf(first[1].Update.Key), b, pkOf(retry[1].Update.Key))
		}
		for i := 2; i < len(first); i++ {
			if countShardIndex(retry[i].Update.Key) != b {
				t.Errorf("item %d retried on shard %d, the others on %d", i, countShardIndex(retry[i].Update.Key), b)
			}
		}
		if items[1].Update.Key["sk"] != first[1].Update.Key["sk"] {
			t.Error("the caller's input was changed")
		}
	}
}
