package table

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ConflictRetries is how many times a transaction canceled only by a
// conflicting transaction is tried again. A canceled transaction wrote
// nothing, so trying it again is safe, and its conditions are evaluated
// afresh. Eight tries spread over about a second (Backoff): a burst of 200
// writes on 16 count shards of a slow table (a loaded test machine) saw a
// request give up after five.
const ConflictRetries = 8

// maxBackoff caps Backoff's base.
const maxBackoff = 160 * time.Millisecond

// Backoff is the wait before retry attempt+1: a base of 10 ms doubled each
// attempt up to 160 ms, jittered to between half and one and a half of it.
func Backoff(attempt int) time.Duration {
	base := min(10*time.Millisecond<<min(attempt, 8), maxBackoff)
	return base/2 + time.Duration(rand.Int64N(int64(base)))
}

// RetryConflicts wraps a DB so TransactWriteItems is retried, with jittered
// backoff, when DynamoDB cancels it for a transaction conflict (the SDK's
// retryer does not retry TransactionCanceledException).
type RetryConflicts struct {
	DB
	// Sleep waits between attempts (time.Sleep when nil).
	Sleep func(time.Duration)
	// Rewrite, when set, gives the input of the next attempt from the last
	// one and its conflict (e.g. a counter moved to another shard).
	Rewrite func(in *dynamodb.TransactWriteItemsInput, err error) *dynamodb.TransactWriteItemsInput
}

// TransactWriteItems runs in, again on conflicts.
func (r RetryConflicts) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	sleep := r.Sleep
	if sleep == nil {
		sleep = time.Sleep
	}
	for attempt := 0; ; attempt++ {
		out, err := r.DB.TransactWriteItems(ctx, in, opts...)
		if err == nil || attempt == ConflictRetries || !OnlyConflicts(err) || ctx.Err() != nil {
			return out, err
		}
		if r.Rewrite != nil {
			in = r.Rewrite(in, err)
		}
		sleep(Backoff(attempt))
	}
}

// OnlyConflicts reports whether a transaction was canceled for conflicts
// and nothing else (no failed condition, no validation error).
func OnlyConflicts(err error) bool {
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
