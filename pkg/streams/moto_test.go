package streams

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// moto starts a second implementation of the AWS APIs (python3 -m
// moto.server) on a free port; the test skips, saying so, when it is not
// installed (CI has it).
func moto(t *testing.T) aws.Config {
	t.Helper()
	if err := exec.Command("python3", "-c", "import moto.server").Run(); err != nil {
		t.Skip("moto is not installed here (python3 -m moto.server); CI has it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("python3", "-m", "moto.server", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("moto did not start")
		}
	}
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String("http://" + addr)}
}

// markers is an in-memory stand-in for the table's marker items (the
// DynamoDB side has its own tests on DynamoDB Local).
type markers struct {
	mu    sync.Mutex
	items map[string]bool
}

func (m *markers) key(k map[string]types.AttributeValue) string {
	return k["pk"].(*types.AttributeValueMemberS).Value + "|" + k["sk"].(*types.AttributeValueMemberS).Value
}

func (m *markers) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items[m.key(in.Key)] {
		return &dynamodb.GetItemOutput{Item: in.Key}, nil
	}
	return &dynamodb.GetItemOutput{}, nil
}

func (m *markers) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = map[string]bool{}
	}
	m.items[m.key(in.Item)] = true
	return &dynamodb.PutItemOutput{}, nil
}

func (m *markers) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	panic("not used")
}
func (m *markers) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	panic("not used")
}
func (m *markers) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	panic("not used")
}
func (m *markers) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	panic("not used")
}

// TestPublishOnMoto puts a sign-up's event through the SDK call the
// handler makes to a second EventBridge implementation, with a rule that
// delivers the stack's events to an SQS queue, as a product team's
// subscription would; and sends a dead letter to SQS.
func TestPublishOnMoto(t *testing.T) {
	cfg := moto(t)
	ctx := context.Background()
	eb := eventbridge.NewFromConfig(cfg)
	q := sqs.NewFromConfig(cfg)
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("stack-accounts")}); err != nil {
		t.Fatal(err)
	}
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("subscriber")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("signups"), EventBusName: aws.String("stack-accounts"),
		EventPattern: aws.String(`{"source":["stack"],"detail-type":["account.signed_up"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("signups"), EventBusName: aws.String("stack-accounts"),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	h := &Handler{DB: &markers{}, Table: "t", Events: eb, Bus: "stack-accounts", Source: "stack", Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	rec := events.DynamoDBEventRecord{EventID: "ev-1", EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Now()},
		Keys:                        FromSDK(map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "USER#u-1"}, "sk": &types.AttributeValueMemberS{Value: "USER"}}),
		NewImage: FromSDK(map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "USER#u-1"}, "sk": &types.AttributeValueMemberS{Value: "USER"},
			"uuid": &types.AttributeValueMemberS{Value: "u-1"}, "username": &types.AttributeValueMemberS{Value: "ada"},
			"email": &types.AttributeValueMemberS{Value: "ada@example.com"}, "status": &types.AttributeValueMemberS{Value: "UNVERIFIED"},
			"password_hash": &types.AttributeValueMemberS{Value: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"},
		}),
		SequenceNumber: "1"}}
	for range 2 { // the second delivery publishes nothing
		resp, err := h.Handle(ctx, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{rec}})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("handle: %v %+v", err, resp)
		}
	}
	var bodies []string
	for start := time.Now(); time.Since(start) < 10*time.Second && len(bodies) < 2; {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
		if len(bodies) == 1 && time.Since(start) > 3*time.Second {
			break
		}
	}
	if len(bodies) != 1 {
		t.Fatalf("the subscriber got %d events, want 1: %v", len(bodies), bodies)
	}
	var ev struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
		Detail     Detail `json:"detail"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &ev); err != nil {
		t.Fatalf("%v: %s", err, bodies[0])
	}
	if ev.Source != "stack" || ev.DetailType != SignedUp || ev.Detail.User.UUID != "u-1" || ev.Detail.Version != DetailVersion {
		t.Fatalf("event %+v", ev)
	}
	if strings.Contains(bodies[0], "argon2") {
		t.Fatal("the event carries the password hash")
	}

	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("stream-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dead := &SQSDeadLetters{Client: q, URL: aws.ToString(dlq.QueueUrl)}
	if err := dead.Send(ctx, `{"condition":"MailAttemptsExhausted"}`); err != nil {
		t.Fatal(err)
	}
	got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, WaitTimeSeconds: 2})
	if err != nil || len(got.Messages) != 1 || !strings.Contains(aws.ToString(got.Messages[0].Body), "MailAttemptsExhausted") {
		t.Fatalf("dead letter: %v %+v", err, got)
	}
}
