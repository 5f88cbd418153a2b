package users

import (
	"context"
	"errors"
	"math/rand/v2"
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
type retryConflicts struct {
	DB
	sleep func(time.Duration)
}

func (r retryConflicts) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for attempt := 0; ; attempt++ {
		out, err := r.DB.TransactWriteItems(ctx, in, opts...)
		if err == nil || attempt == conflictRetries || !onlyConflicts(err) || ctx.Err() != nil {
			return out, err
		}
		base := 10 * time.Millisecond << attempt
		r.sleep(base/2 + time.Duration(rand.Int64N(int64(base))))
	}
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
