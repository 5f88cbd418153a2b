package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// streamTable makes a table with a stream on the shared DynamoDB Local.
func streamTable(t *testing.T) (db *dynamodb.Client, endpoint, arn, table string) {
	t.Helper()
	p := sharedDynamo(t)
	db = dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	name := fmt.Sprintf("stream-%d", time.Now().UnixNano())
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{TableName: aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}})
	if err != nil {
		t.Fatal(err)
	}
	// A table made without a stream gets one (an older local table).
	arn, err = StreamARN(context.Background(), db, name, "NEW_AND_OLD_IMAGES")
	if err != nil {
		t.Fatal(err)
	}
	return db, p.Endpoint(), arn, name
}

func put(t *testing.T, db *dynamodb.Client, table string, i int) {
	t.Helper()
	_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table),
		Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "item" + strconv.Itoa(i)}, "n": &types.AttributeValueMemberN{Value: strconv.Itoa(i)}}})
	if err != nil {
		t.Fatal(err)
	}
}

func convert(m map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	out := map[string]events.DynamoDBAttributeValue{}
	for k, v := range m {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = events.NewStringAttribute(v.Value)
		case *types.AttributeValueMemberN:
			out[k] = events.NewNumberAttribute(v.Value)
		}
	}
	return out
}

// TestStreamPollerRunsTheMappingsRules writes to a real stream and checks
// the event source mapping's behaviour: order, batches, a reported failure
// retried from the failed record, and a record that keeps failing dead-
// lettered after the retries, with the shard going on behind it.
func TestStreamPollerRunsTheMappingsRules(t *testing.T) {
	db, endpoint, arn, table := streamTable(t)
	var mu sync.Mutex
	var seen []string // pk of each record, every delivery
	failedOnce := false
	handler := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		var resp events.DynamoDBEventResponse
		for _, r := range ev.Records {
			pk := r.Change.Keys["pk"].String()
			seen = append(seen, pk)
			if r.EventName != "INSERT" || r.Change.NewImage["n"].Number() == "" {
				return resp, fmt.Errorf("record %s is not as written: %+v", pk, r)
			}
			if (pk == "item2" && !failedOnce) || pk == "item4" {
				failedOnce = failedOnce || pk == "item2"
				resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: r.Change.SequenceNumber}}
				return resp, nil
			}
		}
		return resp, nil
	}
	dlq := &Queue{}
	p := &StreamPoller{Client: StreamsClient(endpoint, "us-east-1"), StreamARN: arn, Handler: handler, Convert: convert,
		MaxRetries: 2, Backoff: 10 * time.Millisecond, DLQ: dlq}
	// The records are written before the poller starts: they come as one
	// batch, from the shard's start.
	for i := 1; i <= 5; i++ {
		put(t, db, table, i)
	}
	p.Start(context.Background())
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := fmt.Sprint(seen)
	mu.Unlock()
	// item2 fails once: redelivered from it. item4 always fails: after the
	// checkpoint moves to it, the batch from it is delivered and retried
	// twice (MaxRetries), then the rest of its batch (item4, item5) goes to
	// the dead-letter queue.
	want := "[item1 item2 item2 item3 item4 item4 item4 item4]"
	if got != want {
		t.Fatalf("deliveries %s, want %s", got, want)
	}
	msgs := dlq.Messages()
	if len(msgs) != 1 {
		t.Fatalf("dead letters %v", msgs)
	}
	var dl DeadLetter
	if err := json.Unmarshal([]byte(msgs[0]), &dl); err != nil || dl.BatchSize != 2 || dl.Condition != "RetryAttemptsExhausted" {
		t.Fatalf("dead letter %s (%v)", msgs[0], err)
	}
	// The shard goes on: a record written now is delivered.
	put(t, db, table, 6)
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[len(seen)-1] != "item6" {
		t.Fatalf("after the dead letter: %v", seen)
	}
	if records, _ := p.Stats(); records != 4 { // item1-3 and item6
		t.Errorf("%d records handled, want 4", records)
	}
}

// TestStreamPollerBisectsOnError: a handler error (not a failure report)
// splits the batch, so the good records get through around the bad one.
func TestStreamPollerBisectsOnError(t *testing.T) {
	db, endpoint, arn, table := streamTable(t)
	var mu sync.Mutex
	done := map[string]int{}
	handler := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			if r.Change.Keys["pk"].String() == "item3" {
				return events.DynamoDBEventResponse{}, fmt.Errorf("poison")
			}
		}
		for _, r := range ev.Records {
			done[r.Change.Keys["pk"].String()]++
		}
		return events.DynamoDBEventResponse{}, nil
	}
	for i := 1; i <= 4; i++ {
		put(t, db, table, i)
	}
	dlq := &Queue{}
	p := &StreamPoller{Client: StreamsClient(endpoint, "us-east-1"), StreamARN: arn, Handler: handler, Convert: convert,
		MaxRetries: 1, Backoff: 5 * time.Millisecond, DLQ: dlq}
	p.Start(context.Background())
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if done["item1"] != 1 || done["item2"] != 1 || done["item4"] != 1 || done["item3"] != 0 {
		t.Fatalf("handled %v", done)
	}
	if len(dlq.Messages()) != 1 {
		t.Fatalf("dead letters %v", dlq.Messages())
	}
}

// TestEventBusTakesTheSDKsPutEvents: the local bus speaks EventBridge's
// protocol to the real SDK, keeps the events, shows them, and fails on
// demand.
func TestEventBusTakesTheSDKsPutEvents(t *testing.T) {
	b, err := StartEventBus("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	c := eventbridge.New(eventbridge.Options{Region: "us-east-1", BaseEndpoint: aws.String(b.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	out, err := c.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{EventBusName: aws.String("bus"), Source: aws.String("accounts"), DetailType: aws.String("account.signed_up"), Detail: aws.String(`{"version":"1"}`)},
		{EventBusName: aws.String("bus"), Source: aws.String("accounts"), DetailType: aws.String("account.deleted"), Detail: aws.String(`not json`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 1 || aws.ToString(out.Entries[0].EventId) == "" || aws.ToString(out.Entries[1].ErrorCode) == "" {
		t.Fatalf("answer %+v", out)
	}
	evs := b.Events()
	if len(evs) != 1 || evs[0].DetailType != "account.signed_up" || evs[0].Source != "accounts" || string(evs[0].Detail) != `{"version":"1"}` {
		t.Fatalf("kept %+v", evs)
	}
	b.FailNext(1)
	if _, err := c.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{Source: aws.String("a"), DetailType: aws.String("b"), Detail: aws.String(`{}`)}}}, func(o *eventbridge.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("the injected failure did not fail the call")
	}
}
