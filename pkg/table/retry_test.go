package table

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// txFake answers TransactWriteItems from a script of errors (a fake is
// used because DynamoDB Local serialises transactions and never reports a
// conflict).
type txFake struct {
	DB
	errs  []error
	calls int
}

func (f *txFake) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.calls++
	if len(f.errs) == 0 {
		return &dynamodb.TransactWriteItemsOutput{}, nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return nil, err
}

func canceled(codes ...string) error {
	var rs []types.CancellationReason
	for _, c := range codes {
		rs = append(rs, types.CancellationReason{Code: aws.String(c)})
	}
	return &types.TransactionCanceledException{CancellationReasons: rs}
}

func TestTransactionConflictRetry(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		errs      []error
		wantCalls int
		wantErr   bool
	}{
		{"case=a conflict is retried until it goes through", []error{canceled("None", "TransactionConflict"), canceled("TransactionConflict")}, 3, false},
		{"case=a failed condition is not retried", []error{canceled("ConditionalCheckFailed", "TransactionConflict")}, 1, true},
		{"case=a transaction in progress is retried", []error{&types.TransactionInProgressException{}}, 2, false},
		{"case=other errors are not retried", []error{errors.New("boom")}, 1, true},
		{"case=endless conflicts give up after the retries", slices.Repeat([]error{canceled("TransactionConflict")}, ConflictRetries+2), ConflictRetries + 1, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			f := &txFake{errs: tc.errs}
			var slept time.Duration
			r := RetryConflicts{DB: f, Sleep: func(d time.Duration) { slept += d }}
			_, err := r.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{})
			if f.calls != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Fatalf("calls %d err %v; want %d calls, error %v", f.calls, err, tc.wantCalls, tc.wantErr)
			}
			if tc.wantCalls > 1 && slept == 0 {
				t.Error("retried without backing off")
			}
		})
	}
}
