package users

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// conflictRetries is how many times a transaction canceled only by a
// conflicting transaction is tried again. The list count items are shared by
// every activation, staff change and delete, so at a steady rate two
// transactions touch one at the same moment now and then; a canceled
// transaction wrote nothing, so trying it again is safe, and its conditions
// are evaluated afresh.
const conflictRetries = 4

// retryConflicts wraps a DB so TransactWriteItems is retried, with jittered
// backoff, when DynamoDB cancels it for a transaction conflict (the SDK's
// retryer does not retry TransactionCanceledException).
//
// A transaction canceled by a conflict on a list count shard (list.go) is
// retried with its count updates on another shard: the deltas may go to
// any shard, and the one just contended is the likeliest to be contended
// again.
type retryConflicts struct {
	DB
	sleep func(time.Duration)
	// shards is how many shards each list's count has.
	shards int
}

func (r retryConflicts) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for attempt := 0; ; attempt++ {
		out, err := r.DB.TransactWriteItems(ctx, in, opts...)
		if err == nil || attempt == conflictRetries || !onlyConflicts(err) || ctx.Err() != nil {
			return out, err
		}
		in = reshard(in, err, r.shards)
		base := 10 * time.Millisecond << attempt
		r.sleep(base/2 + time.Duration(rand.Int64N(int64(base))))
	}
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

// onlyConflicts reports whether a transaction was canceled for conflicts
// and nothing else (no failed condition, no validation error).
func onlyConflicts(err error) bool {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) {
		var tip *types.TransactionInProgressException
		return errors.As(err, &tip)
	}
	conflict := false
	for _, r := range tc.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict":
			conflict = true
		case "", "None":
		default:
			return false
		}
	}
	return conflict
}
