// Package ddbtest holds test doubles of the DynamoDB client.
//
// Conflicts enforces DynamoDB's transaction conflict rule over a real
// client (DynamoDB Local, which serialises transactions and never reports
// a conflict), so that tests see what concurrent writes meet on DynamoDB.
// From "Transaction conflict handling in DynamoDB" (Amazon DynamoDB
// Developer Guide, transaction-apis):
//
//   - an item within a TransactWriteItems request that is part of another
//     ongoing TransactWriteItems request: the request fails with a
//     TransactionCanceledException whose CancellationReasons hold
//     "TransactionConflict" for that item ("None" for the others);
//   - a PutItem, UpdateItem or DeleteItem request for an item that an
//     ongoing TransactWriteItems request includes: it fails with a
//     TransactionConflictException.
//
// A transaction holds its items from the moment it is let through until
// the real call has returned and Hold has passed (DynamoDB holds them for
// its own commit; Hold stands in for that time, and makes transactions
// overlap as they do under load). A rejected request never reaches the
// real client, so it writes nothing, as on DynamoDB. Single-item writes
// hold nothing (DynamoDB serialises them with transactions, it does not
// cancel a transaction for them), and reads pass straight through.
package ddbtest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Client is the part of the DynamoDB client the double wraps: the
// operations pkg/users uses (users.DB).
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Messages as DynamoDB words them.
const (
	canceledMessage = "Transaction cancelled, please refer cancellation reasons for specific reasons"
	ongoingMessage  = "Transaction is ongoing for the item"
)

// Conflicts is the conflict-enforcing double. Its zero Hold holds items
// only for the real call.
type Conflicts struct {
	Client
	// Hold is how long a transaction keeps its items after the real call.
	Hold time.Duration
	// KeyAttributes name the table's key (default pk, sk), to find a Put's
	// item key.
	KeyAttributes []string
	// InFlight bounds how many transactions are at the real client at once
	// (0: no bound). DynamoDB Local runs transactions one at a time, so
	// under a burst a transaction waits there, for seconds, for the others,
	// which DynamoDB does not; and the double would hold its items all that
	// time. With a bound a transaction waits here instead, holding nothing,
	// and is only checked for conflicts and holds its items once it goes to
	// the real client: the items are held for the real call (short again)
	// plus Hold, which stands for DynamoDB's own commit time.
	InFlight int

	mu    sync.Mutex
	held  map[string]bool // table and key of every item an ongoing transaction holds
	once  sync.Once
	slots chan struct{} // InFlight of them

	transactions, canceled, rejected atomic.Int64
	realCalls, maxRealCall           atomic.Int64 // nanoseconds
}

// New wraps c.
func New(c Client, hold time.Duration) *Conflicts {
	return &Conflicts{Client: c, Hold: hold}
}

// Stats are what the double let through and refused.
type Stats struct {
	// Transactions let through to the real client.
	Transactions int64
	// Canceled transactions (TransactionConflict).
	Canceled int64
	// Rejected single-item writes (TransactionConflictException).
	Rejected int64
	// RealCalls is the time the transactions let through spent in the
	// real client, in all; MaxRealCall the longest one.
	RealCalls, MaxRealCall time.Duration
}

// Stats returns the tallies so far.
func (c *Conflicts) Stats() Stats {
	return Stats{Transactions: c.transactions.Load(), Canceled: c.canceled.Load(), Rejected: c.rejected.Load(),
		RealCalls: time.Duration(c.realCalls.Load()), MaxRealCall: time.Duration(c.maxRealCall.Load())}
}

func (c *Conflicts) keyNames() []string {
	if len(c.KeyAttributes) > 0 {
		return c.KeyAttributes
	}
	return []string{"pk", "sk"}
}

// itemID names an item by table and key.
func (c *Conflicts) itemID(table *string, k map[string]types.AttributeValue) string {
	var b strings.Builder
	b.WriteString(aws.ToString(table))
	for _, name := range c.keyNames() {
		b.WriteByte(0)
		switch v := k[name].(type) {
		case *types.AttributeValueMemberS:
			b.WriteString("S" + v.Value)
		case *types.AttributeValueMemberN:
			b.WriteString("N" + v.Value)
		case *types.AttributeValueMemberB:
			b.WriteString("B" + string(v.Value))
		}
	}
	return b.String()
}

// txItemID names the item a transaction action touches.
func (c *Conflicts) txItemID(it types.TransactWriteItem) string {
	switch {
	case it.Put != nil:
		return c.itemID(it.Put.TableName, it.Put.Item)
	case it.Update != nil:
		return c.itemID(it.Update.TableName, it.Update.Key)
	case it.Delete != nil:
		return c.itemID(it.Delete.TableName, it.Delete.Key)
	case it.ConditionCheck != nil:
		return c.itemID(it.ConditionCheck.TableName, it.ConditionCheck.Key)
	}
	return ""
}

// TransactWriteItems lets the transaction through when none of its items
// is held by another ongoing transaction, holding them until the real call
// has returned and Hold has passed; else it cancels it with
// TransactionConflict on the held items.
func (c *Conflicts) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	ids := make([]string, len(in.TransactItems))
	for i, it := range in.TransactItems {
		ids[i] = c.txItemID(it)
	}
	c.once.Do(func() {
		if c.InFlight > 0 {
			c.slots = make(chan struct{}, c.InFlight)
		}
	})
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-c.slots }()
	}
	c.mu.Lock()
	if c.held == nil {
		c.held = map[string]bool{}
	}
	conflict := false
	reasons := make([]types.CancellationReason, len(ids))
	for i, id := range ids {
		reasons[i] = types.CancellationReason{Code: aws.String("None")}
		if c.held[id] {
			conflict = true
			reasons[i] = types.CancellationReason{Code: aws.String("TransactionConflict"), Message: aws.String(ongoingMessage)}
		}
	}
	if conflict {
		c.mu.Unlock()
		c.canceled.Add(1)
		codes := make([]string, len(reasons))
		for i, r := range reasons {
			codes[i] = aws.ToString(r.Code)
		}
		return nil, &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "TransactWriteItems",
			Err: &types.TransactionCanceledException{
				Message:             aws.String(canceledMessage + " [" + strings.Join(codes, ", ") + "]"),
				CancellationReasons: reasons,
			}}
	}
	for _, id := range ids {
		c.held[id] = true
	}
	c.mu.Unlock()
	c.transactions.Add(1)
	began := time.Now()
	defer func() {
		took := int64(time.Since(began))
		c.realCalls.Add(took)
		for m := c.maxRealCall.Load(); took > m && !c.maxRealCall.CompareAndSwap(m, took); m = c.maxRealCall.Load() {
		}
		if c.Hold > 0 {
			time.Sleep(c.Hold)
		}
		c.mu.Lock()
		for _, id := range ids {
			delete(c.held, id)
		}
		c.mu.Unlock()
	}()
	return c.Client.TransactWriteItems(ctx, in, opts...)
}

// refuse answers a single-item write of an item an ongoing transaction
// holds.
func (c *Conflicts) refuse(op string, table *string, k map[string]types.AttributeValue) error {
	c.mu.Lock()
	held := c.held[c.itemID(table, k)]
	c.mu.Unlock()
	if !held {
		return nil
	}
	c.rejected.Add(1)
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op,
		Err: &types.TransactionConflictException{Message: aws.String(ongoingMessage)}}
}

// UpdateItem fails with TransactionConflictException when an ongoing
// transaction holds the item.
func (c *Conflicts) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := c.refuse("UpdateItem", in.TableName, in.Key); err != nil {
		return nil, err
	}
	return c.Client.UpdateItem(ctx, in, opts...)
}

// ErrUnsupported is returned for an operation the wrapped client lacks.
var ErrUnsupported = errors.New("ddbtest: the wrapped client does not implement this operation")

// PutItem fails with TransactionConflictException when an ongoing
// transaction holds the item (the wrapped client must implement PutItem).
func (c *Conflicts) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	p, ok := c.Client.(interface {
		PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	})
	if !ok {
		return nil, ErrUnsupported
	}
	if err := c.refuse("PutItem", in.TableName, in.Item); err != nil {
		return nil, err
	}
	return p.PutItem(ctx, in, opts...)
}

// DeleteItem fails with TransactionConflictException when an ongoing
// transaction holds the item (the wrapped client must implement
// DeleteItem).
func (c *Conflicts) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	d, ok := c.Client.(interface {
		DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	})
	if !ok {
		return nil, ErrUnsupported
	}
	if err := c.refuse("DeleteItem", in.TableName, in.Key); err != nil {
		return nil, err
	}
	return d.DeleteItem(ctx, in, opts...)
}
