// Package ddbmetrics counts DynamoDB requests and the capacity they consume,
// as an SDK middleware on the DynamoDB client, for tests that hold the
// service to its request budgets and for the benchmarks.
package ddbmetrics

import (
	"context"
	"sort"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Counter tallies requests per operation and consumed capacity units.
type Counter struct {
	mu       sync.Mutex
	requests map[string]int
	capacity float64
}

// New returns an empty counter.
func New() *Counter { return &Counter{requests: map[string]int{}} }

// Snapshot is a counter's state at one moment.
type Snapshot struct {
	Requests   int
	ByOp       map[string]int
	Capacity   float64
	Operations []string // the operations, sorted, for messages
}

// Snapshot returns the tallies so far.
func (c *Counter) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{ByOp: map[string]int{}, Capacity: c.capacity}
	for op, n := range c.requests {
		s.ByOp[op] = n
		s.Requests += n
		s.Operations = append(s.Operations, op)
	}
	sort.Strings(s.Operations)
	return s
}

// Reset zeroes the tallies.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = map[string]int{}
	c.capacity = 0
}

// Measure runs f and returns what it cost. Not for concurrent use with
// other traffic on the same counter.
func (c *Counter) Measure(f func()) Snapshot {
	c.Reset()
	f()
	return c.Snapshot()
}

// Middleware is the API option to add to the DynamoDB client
// (dynamodb.Options.APIOptions): it asks each request for its consumed
// capacity and counts one request per operation call (SDK retries of the
// same call are not counted again).
func (c *Counter) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbmetrics.Count",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			askCapacity(in.Parameters)
			out, md, err := next.HandleInitialize(ctx, in)
			op := awsmiddleware.GetOperationName(ctx)
			units := 0.0
			if err == nil {
				units = consumed(out.Result)
			}
			c.mu.Lock()
			c.requests[op]++
			c.capacity += units
			c.mu.Unlock()
			return out, md, err
		}), middleware.After)
}

func askCapacity(p any) {
	total := types.ReturnConsumedCapacityTotal
	switch in := p.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.ScanInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactGetItemsInput:
		in.ReturnConsumedCapacity = total
	}
}

func sum(cs []types.ConsumedCapacity) float64 {
	t := 0.0
	for _, c := range cs {
		if c.CapacityUnits != nil {
			t += *c.CapacityUnits
		}
	}
	return t
}

func one(c *types.ConsumedCapacity) float64 {
	if c == nil || c.CapacityUnits == nil {
		return 0
	}
	return *c.CapacityUnits
}

func consumed(r any) float64 {
	switch out := r.(type) {
	case *dynamodb.GetItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.ScanOutput:
		return one(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		return sum(out.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		return sum(out.ConsumedCapacity)
	case *dynamodb.TransactWriteItemsOutput:
		return sum(out.ConsumedCapacity)
	case *dynamodb.TransactGetItemsOutput:
		return sum(out.ConsumedCapacity)
	}
	return 0
}
