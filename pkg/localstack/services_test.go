package localstack

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	sestypes "github.com/aws/aws-sdk-go-v2/service/ses/types"
)

var testCreds = credentials.NewStaticCredentialsProvider("local", "local", "")

func dynamoClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  testCreds,
		BaseEndpoint: aws.String(endpoint),
	})
}

func TestEnsureTableOnDynamoDBLocal(t *testing.T) {
	p := sharedDynamo(t)
	if !strings.HasPrefix(p.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint() = %q", p.Endpoint())
	}
	tpl, err := ParseTemplate("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	db := dynamoClient(p.Endpoint())
	const name = "things-ensure"
	for i := range 2 { // idempotent
		if err := EnsureTable(ctx, db, tpl, "ThingsTable", name); err != nil {
			t.Fatalf("EnsureTable #%d: %v", i+1, err)
		}
	}

	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := out.Table
	if tbl.TableStatus != types.TableStatusActive {
		t.Errorf("status %s", tbl.TableStatus)
	}
	if got := keyString(tbl.KeySchema); got != "[pk:HASH sk:RANGE]" {
		t.Errorf("key schema %s", got)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing %+v", tbl.BillingModeSummary)
	}
	attrs := map[string]types.ScalarAttributeType{}
	for _, a := range tbl.AttributeDefinitions {
		attrs[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	if want := map[string]types.ScalarAttributeType{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "N"}; !reflect.DeepEqual(attrs, want) {
		t.Errorf("attributes %v, want %v", attrs, want)
	}
	if len(tbl.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GSIs %+v", tbl.GlobalSecondaryIndexes)
	}
	gsi := tbl.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != "gsi1" || keyString(gsi.KeySchema) != "[gsi1pk:HASH gsi1sk:RANGE]" {
		t.Errorf("GSI %s %s", aws.ToString(gsi.IndexName), keyString(gsi.KeySchema))
	}
	if gsi.Projection == nil || gsi.Projection.ProjectionType != types.ProjectionTypeInclude ||
		!reflect.DeepEqual(gsi.Projection.NonKeyAttributes, []string{"name", "email"}) {
		t.Errorf("GSI projection %+v", gsi.Projection)
	}

	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "expires_at" ||
		d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL %+v", d)
	}

	// The table works, including its index.
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "thing#1"}, "sk": &types.AttributeValueMemberS{Value: "meta"},
		"gsi1pk": &types.AttributeValueMemberS{Value: "owner#1"}, "gsi1sk": &types.AttributeValueMemberN{Value: "42"},
		"name": &types.AttributeValueMemberS{Value: "one"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(name), IndexName: aws.String("gsi1"),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "owner#1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if q.Count != 1 {
		t.Errorf("GSI query found %d items, want 1", q.Count)
	}
}

func TestEnsureTableRejectsDrift(t *testing.T) {
	p := sharedDynamo(t)
	ctx := t.Context()
	db := dynamoClient(p.Endpoint())
	const name = "things-drift"
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = EnsureTable(ctx, db, tpl, "ThingsTable", name)
	if err == nil || !strings.Contains(err.Error(), "another shape") {
		t.Fatalf("EnsureTable over a different table = %v, want a shape error", err)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestDynamoDBDataDirPersists(t *testing.T) {
	root := needTools(t)
	ctx := t.Context()
	dir := filepath.Join(t.TempDir(), "data") // created by StartDynamoDB
	tpl, err := ParseTemplate("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}

	p1, err := StartDynamoDB(ctx, DynamoOptions{Root: root, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p1.Stop() })
	if err := EnsureTable(ctx, dynamoClient(p1.Endpoint()), tpl, "ThingsTable", "persisted"); err != nil {
		t.Fatal(err)
	}
	pid := p1.cmd.Process.Pid
	if err := p1.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(pid) {
		t.Fatalf("pid %d still exists after Stop (zombie or running)", pid)
	}
	if err := p1.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	p2, err := StartDynamoDB(ctx, DynamoOptions{Root: root, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p2.Stop() })
	// A different access key sees the same tables with -sharedDb.
	db := dynamodb.New(dynamodb.Options{
		Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("other", "other", ""),
		BaseEndpoint: aws.String(p2.Endpoint()),
	})
	out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.TableNames, []string{"persisted"}) {
		t.Fatalf("tables after restart = %v, want [persisted]", out.TableNames)
	}
}

func TestStartReportsEarlyExitWithOutput(t *testing.T) {
	root := needTools(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	port := l.Addr().(*net.TCPAddr).Port
	// The port is taken, so the fake fails to bind and exits.
	_, err = StartSES(t.Context(), SESOptions{Root: root, Port: port})
	if err == nil {
		t.Fatal("StartSES on a taken port succeeded")
	}
	// aws-ses-v2-local words a bind failure as "Server does not have an
	// address"; what matters is that its output is in the error.
	if !errors.Is(err, errExitedEarly) || !strings.Contains(err.Error(), "failed to start server") {
		t.Fatalf("error %q: want an early exit with the process output", err)
	}
}

func TestStartMissingTools(t *testing.T) {
	_, err := StartDynamoDB(t.Context(), DynamoOptions{Root: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "EnsureTools") {
		t.Fatalf("StartDynamoDB without tools = %v", err)
	}
}

func TestSESSendEmailAndInbox(t *testing.T) {
	p := sharedSES(t)
	ctx := t.Context()
	inbox := Inbox{Endpoint: p.Endpoint()}
	if err := inbox.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	client := ses.New(ses.Options{Region: "us-east-1", Credentials: testCreds, BaseEndpoint: aws.String(p.Endpoint())})
	send := func(to, subject string) string {
		out, err := client.SendEmail(ctx, &ses.SendEmailInput{
			Source:      aws.String("Accounts <no-reply@example.com>"),
			Destination: &sestypes.Destination{ToAddresses: []string{to}, CcAddresses: []string{"audit@example.com"}},
			Message: &sestypes.Message{
				Subject: &sestypes.Content{Data: aws.String(subject)},
				Body: &sestypes.Body{
					Text: &sestypes.Content{Data: aws.String("Your code is 123456.")},
					Html: &sestypes.Content{Data: aws.String("<p>Your code is <b>123456</b>.</p>")},
				},
			},
		})
		if err != nil {
			t.Fatalf("SendEmail: %v", err)
		}
		return aws.ToString(out.MessageId)
	}
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	id1 := send("alice@example.com", "Verify your email")
	id2 := send("Bob <bob@example.com>", "Reset your password")

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := inbox.WaitFor(wctx, "ALICE@example.com", func(m Mail) bool { return strings.Contains(m.Text, "123456") })
	if err != nil {
		t.Fatal(err)
	}
	want := Mail{
		MessageID: id1,
		From:      "Accounts <no-reply@example.com>",
		To:        []string{"alice@example.com"},
		Cc:        []string{"audit@example.com"},
		Bcc:       []string{},
		ReplyTo:   []string{},
		Subject:   "Verify your email",
		Text:      "Your code is 123456.",
		HTML:      "<p>Your code is <b>123456</b>.</p>",
		At:        m.At,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("mail:\n got %+v\nwant %+v", m, want)
	}
	if m.At.Before(before) || m.At.After(time.Now().Add(time.Second)) {
		t.Errorf("At = %v, not about now", m.At)
	}
	bob, err := inbox.WaitFor(wctx, "bob@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if bob.MessageID != id2 || bob.Subject != "Reset your password" {
		t.Errorf("bob's mail %+v", bob)
	}

	all, err := inbox.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d mails kept, want 2", len(all))
	}
	if err := inbox.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if all, err = inbox.Messages(ctx); err != nil || len(all) != 0 {
		t.Fatalf("after Clear: %d mails, %v", len(all), err)
	}

	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := inbox.WaitFor(short, "alice@example.com", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor on an empty inbox = %v, want a deadline error", err)
	}
}

func TestProcessStopKillsGroup(t *testing.T) {
	root := needTools(t)
	p, err := StartSES(t.Context(), SESOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.cmd.Process.Pid
	if !alive(pid) {
		t.Fatal("not running")
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("pid %d alive after Stop", pid)
	}
	if d := time.Since(start); d > stopGrace {
		t.Errorf("Stop took %s; SIGTERM was ignored", d)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(p.Endpoint(), "http://"), time.Second); err == nil {
		t.Error("port still answers after Stop")
	}
}
