package table

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
)

// batchFake answers BatchGetItem with every key it is asked for as an
// item, except that the first answer leaves its last key unprocessed.
type batchFake struct {
	DB
	calls, maxKeys int
}

func (f *batchFake) BatchGetItem(_ context.Context, in *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.calls++
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	for name, ka := range in.RequestItems {
		f.maxKeys = max(f.maxKeys, len(ka.Keys))
		keys := ka.Keys
		if f.calls == 1 {
			last := keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			out.UnprocessedKeys = map[string]types.KeysAndAttributes{name: {Keys: []map[string]types.AttributeValue{last}}}
		}
		out.Responses[name] = append(out.Responses[name], keys...)
	}
	return out, nil
}

func TestBatchGetChunksAndAsksAgainForUnprocessedKeys(t *testing.T) {
	var keys []map[string]types.AttributeValue
	for i := range 250 {
		keys = append(keys, Key(fmt.Sprintf("K#%d", i), "X"))
	}
	f := &batchFake{}
	items, err := BatchGet(context.Background(), f, "t", keys, true)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, it := range items {
		seen[String(it, "pk")] = true
	}
	if len(seen) != 250 || len(items) != 250 {
		t.Fatalf("%d items, %d distinct; want 250", len(items), len(seen))
	}
	if f.maxKeys > 100 {
		t.Errorf("a request asked for %d keys; DynamoDB takes 100", f.maxKeys)
	}
	if f.calls != 4 { // three chunks and one for the unprocessed key
		t.Errorf("%d requests; want 4", f.calls)
	}
}

func TestErrorMapsToTheContract(t *testing.T) {
	for _, tc := range []struct {
		desc     string
		err      error
		status   int
		sentinel bool
	}{
		{"case=a failed condition is the sentinel", &types.ConditionalCheckFailedException{}, 0, true},
		{"case=a conflict-canceled transaction is retryable", &types.TransactionCanceledException{CancellationReasons: []types.CancellationReason{{Code: strptr("TransactionConflict")}}}, 503, false},
		{"case=a timeout is retryable", context.DeadlineExceeded, 503, false},
		{"case=a network failure is retryable", errors.New("connection refused"), 503, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got := Error(tc.err)
			if tc.sentinel {
				if !errors.Is(got, ErrConditionFailed) {
					t.Fatalf("%v; want ErrConditionFailed", got)
				}
				return
			}
			var he *httpapi.Error
			if !errors.As(got, &he) || he.Status != tc.status {
				t.Fatalf("%#v; want status %d", got, tc.status)
			}
		})
	}
}

func strptr(s string) *string { return &s }
