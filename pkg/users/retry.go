package users

import (
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/table"
)

// retrying wraps db so transactions canceled by conflicts are tried again
// (table.RetryConflicts). The list count items are shared by every
// activation, staff change and delete, so at a steady rate two
// transactions touch one at the same moment now and then.
//
// A transaction canceled by a conflict on a list count shard (list.go) is
// retried with its count updates on another shard: the deltas may go to
// any shard, and the one just contended is the likeliest to be contended
// again.
func retrying(db DB, sleep func(time.Duration), shards int) DB {
	return table.RetryConflicts{DB: db, Sleep: sleep, Rewrite: func(in *dynamodb.TransactWriteItemsInput, err error) *dynamodb.TransactWriteItemsInput {
		return reshard(in, err, shards)
	}}
}

// reshard returns in with its count shard updates moved to another shard,
// all to the same one at random (countItems keeps a transaction's lists on
// one shard), when err (a canceled transaction) names one of them as
// conflicting; in itself is not changed.
func reshard(in *dynamodb.TransactWriteItemsInput, err error, shards int) *dynamodb.TransactWriteItemsInput {
	var tc *types.TransactionCanceledException
	if shards < 2 || !errors.As(err, &tc) {
		return in
	}
	cur := -1
	for i, reason := range tc.CancellationReasons {
		if i >= len(in.TransactItems) || aws.ToString(reason.Code) != "TransactionConflict" || in.TransactItems[i].Update == nil {
			continue
		}
		if _, ok := isCountKey(in.TransactItems[i].Update.Key); ok {
			cur = countShardIndex(in.TransactItems[i].Update.Key)
			break
		}
	}
	if cur < 0 {
		return in
	}
	next := rand.IntN(shards - 1) // any shard but the one contended
	if next >= cur {
		next++
	}
	out := *in
	out.TransactItems = slices.Clone(in.TransactItems)
	for i, it := range out.TransactItems {
		if it.Update == nil {
			continue
		}
		if id, ok := isCountKey(it.Update.Key); ok {
			moved := *it.Update
			moved.Key = key(countPrefix+id, countShardSK(next))
			out.TransactItems[i] = types.TransactWriteItem{Update: &moved}
		}
	}
	return &out
}
