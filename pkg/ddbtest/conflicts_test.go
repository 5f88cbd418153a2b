package ddbtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/example/accounts/pkg/ddbtest"
	"github.com/example/accounts/pkg/localstack"
)

// db is DynamoDB Local with table "conflicts" (pk, sk).
var db *dynamodb.Client

const table = "conflicts"

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	p, err := start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting DynamoDB Local:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = p.Stop()
	os.Exit(code)
}

func start(ctx context.Context) (*localstack.Process, error) {
	root, err := localstack.Root()
	if err != nil {
		return nil, err
	}
	if err := localstack.EnsureTools(ctx, root); err != nil {
		return nil, err
	}
	p, err := localstack.StartDynamoDB(ctx, localstack.DynamoOptions{Root: root})
	if err != nil {
		return nil, err
	}
	db = dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}, {AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange}}})
	if err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}

// run sets the items of each test run apart (fresh sets them, per test).
var run string

func fresh() { run = strconv.FormatInt(time.Now().UnixNano(), 36) + "-" }

func k(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: run + pk}, "sk": &types.AttributeValueMemberS{Value: "x"}}
}

// add is the transaction action that adds one to pk's n.
func add(pk string) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(table), Key: k(pk),
		UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}}
}

func tx(pks ...string) *dynamodb.TransactWriteItemsInput {
	in := &dynamodb.TransactWriteItemsInput{}
	for _, pk := range pks {
		in.TransactItems = append(in.TransactItems, add(pk))
	}
	return in
}

func count(t *testing.T, pk string) string {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: k(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := out.Item["n"].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return "absent"
}

// gate holds the first TransactWriteItems in the real call until
// released, and says when it has entered it; later ones pass straight.
type gate struct {
	*dynamodb.Client
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gate) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Client.TransactWriteItems(ctx, in, o...)
}

// inFlight starts a transaction of pks through a double whose real call
// waits on a gate, and returns the double (holding pks) and a function that
// lets the transaction finish and returns its error.
func inFlight(t *testing.T, pks ...string) (*ddbtest.Conflicts, func() error) {
	t.Helper()
	g := &gate{Client: db, entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := ddbtest.New(g, 0)
	done := make(chan error, 1)
	go func() {
		_, err := c.TransactWriteItems(context.Background(), tx(pks...))
		done <- err
	}()
	<-g.entered
	return c, func() error { close(g.release); return <-done }
}

func TestOverlappingTransactionIsCanceledWithTransactionConflict(t *testing.T) {
	fresh()
	c, finish := inFlight(t, "ov-a", "ov-shared")
	// The second shares ov-shared with the one in flight.
	_, err := ddbtestTx(c, c.Client.(*gate), "ov-b", "ov-shared", "ov-c")
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) {
		t.Fatalf("got %v, want a TransactionCanceledException", err)
	}
	codes := []string{}
	for _, r := range tc.CancellationReasons {
		codes = append(codes, aws.ToString(r.Code))
	}
	if fmt.Sprint(codes) != "[None TransactionConflict None]" {
		t.Errorf("cancellation reasons %v, want [None TransactionConflict None]", codes)
	}
	if tc.Message == nil || aws.ToString(tc.Message) != "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict, None]" {
		t.Errorf("message %q", aws.ToString(tc.Message))
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "TransactionCanceledException" {
		t.Errorf("API error code %v", err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	// The canceled one wrote nothing; the first one went through.
	for pk, want := range map[string]string{"ov-a": "1", "ov-shared": "1", "ov-b": "absent", "ov-c": "absent"} {
		if got := count(t, pk); got != want {
			t.Errorf("%s: n %s, want %s", pk, got, want)
		}
	}
	if s := c.Stats(); s.Transactions != 1 || s.Canceled != 1 {
		t.Errorf("stats %+v", s)
	}
	// Once the first has finished, the item is free again.
	if _, err := c.TransactWriteItems(context.Background(), tx("ov-b", "ov-shared")); err != nil {
		t.Fatalf("after the first finished: %v", err)
	}
	if got := count(t, "ov-shared"); got != "2" {
		t.Errorf("ov-shared: n %s, want 2", got)
	}
}

// ddbtestTx sends a transaction through c while the gate g holds another
// one (the double decides before the real call).
func ddbtestTx(c *ddbtest.Conflicts, _ *gate, pks ...string) (*dynamodb.TransactWriteItemsOutput, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.TransactWriteItems(ctx, tx(pks...))
}

func TestDisjointTransactionsGoThroughTogether(t *testing.T) {
	fresh()
	c, finish := inFlight(t, "dj-held")
	g := c.Client.(*gate)
	// While one is in flight, one on other items passes the double.
	if _, err := ddbtestTx(c, g, "dj-other", "dj-other2"); err != nil {
		t.Fatalf("disjoint transaction: %v", err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	// Many at once, each on its own items and held a while so they overlap.
	c = ddbtest.New(db, 50*time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.TransactWriteItems(context.Background(), tx(fmt.Sprintf("dj-%d-a", i), fmt.Sprintf("dj-%d-b", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("disjoint transaction: %v", err)
		}
	}
	if s := c.Stats(); s.Canceled != 0 || s.Transactions != 40 {
		t.Errorf("stats %+v, want 40 through and none canceled", s)
	}
}

func TestConcurrentTransactionsOnOneItemConflict(t *testing.T) {
	fresh()
	// 40 at once on one shared item, each held 50 ms: on DynamoDB most
	// are canceled; what goes through is exactly what is counted.
	c := ddbtest.New(db, 50*time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, conflicts := 0, 0
	start := make(chan struct{})
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := c.TransactWriteItems(context.Background(), tx(fmt.Sprintf("hot-%d", i), "hot-shared"))
			var tc *types.TransactionCanceledException
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &tc):
				conflicts++
			default:
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if conflicts == 0 || ok == 0 {
		t.Fatalf("%d through, %d canceled: want both", ok, conflicts)
	}
	if got := count(t, "hot-shared"); got != fmt.Sprint(ok) {
		t.Errorf("hot-shared n %s, want %d (one per transaction let through)", got, ok)
	}
	if s := c.Stats(); s.Canceled != int64(conflicts) || s.Transactions != int64(ok) {
		t.Errorf("stats %+v", s)
	}
}

func TestSingleItemWriteOnAHeldItemIsRejected(t *testing.T) {
	fresh()
	c, finish := inFlight(t, "sw-held")
	ctx := context.Background()
	one := map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}
	want := func(op string, err error) {
		t.Helper()
		var tce *types.TransactionConflictException
		if !errors.As(err, &tce) || aws.ToString(tce.Message) != "Transaction is ongoing for the item" {
			t.Errorf("%s: got %v, want a TransactionConflictException", op, err)
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "TransactionConflictException" {
			t.Errorf("%s: API error code of %v", op, err)
		}
	}
	_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: k("sw-held"), UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: one})
	want("UpdateItem", err)
	item := k("sw-held")
	item["n"] = &types.AttributeValueMemberN{Value: "100"}
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	want("PutItem", err)
	_, err = c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: k("sw-held")})
	want("DeleteItem", err)
	// Another item is no obstacle.
	if _, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: k("sw-free"), UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: one}); err != nil {
		t.Errorf("UpdateItem of a free item: %v", err)
	}
	// Reads pass.
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: k("sw-held")}); err != nil {
		t.Errorf("GetItem: %v", err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, "sw-held"); got != "1" {
		t.Errorf("sw-held n %s, want 1: the rejected writes wrote nothing", got)
	}
	if s := c.Stats(); s.Rejected != 3 {
		t.Errorf("stats %+v, want 3 rejected", s)
	}
	// Released: the same write now goes through.
	if _, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: k("sw-held"), UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: one}); err != nil {
		t.Errorf("UpdateItem after the transaction: %v", err)
	}
}

func TestHoldOutlastsTheRealCall(t *testing.T) {
	fresh()
	c := ddbtest.New(db, 2*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := c.TransactWriteItems(context.Background(), tx("hold-a"))
		done <- err
	}()
	// The real call is over in a few ms; the item stays held for Hold.
	deadline := time.Now().Add(20 * time.Second)
	for count(t, "hold-a") != "1" {
		if time.Now().After(deadline) {
			t.Fatal("the transaction never reached DynamoDB Local")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := c.TransactWriteItems(context.Background(), tx("hold-a"))
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) {
		t.Errorf("during the hold: %v, want canceled", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := c.TransactWriteItems(context.Background(), tx("hold-a")); err != nil {
		t.Errorf("after the hold: %v", err)
	}
}

func TestInFlightBoundsTheRealCalls(t *testing.T) {
	fresh()
	g := &gate{Client: db, entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := ddbtest.New(g, 0)
	c.InFlight = 1
	first := make(chan error, 1)
	go func() {
		_, err := c.TransactWriteItems(context.Background(), tx("if-a", "if-shared"))
		first <- err
	}()
	<-g.entered
	// The second waits for the slot, holding nothing and not yet checked:
	// it shares if-shared, yet is not canceled, and goes through after.
	second := make(chan error, 1)
	go func() {
		_, err := c.TransactWriteItems(context.Background(), tx("if-b", "if-shared"))
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("the second went through the bound: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(g.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second after the first: %v", err)
	}
	if got := count(t, "if-shared"); got != "2" {
		t.Errorf("if-shared n %s, want 2", got)
	}
}
