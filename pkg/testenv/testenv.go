// Package testenv runs the whole service for integration tests against the
// real parts: DynamoDB Local and the local SES, started on free ports, the
// table created from template.yaml, and every route of the template served
// in process over HTTP, as `make run` serves them.
package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/ddbmetrics"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/streams"
)

// Env is a running service.
type Env struct {
	URL    string
	Inbox  localstack.Inbox
	API    *api.API
	Config config.Config
	DB     *dynamodb.Client
	// Logs holds every JSON log line the service wrote.
	Logs *Buffer
	// Requests counts the service's DynamoDB requests (an SDK middleware).
	Requests *ddbmetrics.Counter
	// Actions records the IAM actions each endpoint's requests need.
	Actions *Actions
	// Exchanges holds every request the server answered and its answer,
	// when Options.Record is set (nil otherwise).
	Exchanges *Exchanges

	Dynamo, SES *localstack.Process
	// S3 holds the images bucket (ImagesBucket).
	S3 *localstack.S3
	// Bus is the local EventBridge the stream publishes account events to.
	Bus *localstack.EventBus
	// DLQ is the stream's dead-letter queue.
	DLQ *localstack.Queue
	// Stream runs the stream function over the table's stream, as the
	// event source mapping does on AWS.
	Stream *localstack.StreamPoller
	// StreamLogs holds the stream function's log lines; StreamRequests
	// counts its DynamoDB requests.
	StreamLogs     *Buffer
	StreamRequests *ddbmetrics.Counter
	mailFault      atomic.Pointer[func(mail.Message) error]
	server         *httptest.Server
}

// EventSource is the test stack's event source (its "stack name").
const EventSource = "accounts-test"

// SetMailFault makes the stream's sends fail with what f returns for a
// message (nil: sent); nil f removes it. SES refusing, on demand.
func (e *Env) SetMailFault(f func(mail.Message) error) {
	if f == nil {
		e.mailFault.Store(nil)
		return
	}
	e.mailFault.Store(&f)
}

// faultySender is the stream's sender with Env.SetMailFault's fault.
type faultySender struct {
	next mail.Sender
	e    *Env
}

func (f faultySender) Send(ctx context.Context, m mail.Message) error {
	if p := f.e.mailFault.Load(); p != nil {
		if err := (*p)(m); err != nil {
			return err
		}
	}
	return f.next.Send(ctx, m)
}

// Drain waits until the stream function has handled every change made so
// far: the mail they queue is in the inbox, their events on the bus.
func (e *Env) Drain(t testing.TB) {
	t.Helper()
	if e.Stream == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Stream.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// EventsOf returns the events on the bus about user uuid, oldest first.
func (e *Env) EventsOf(t testing.TB, uuid string) []localstack.Event {
	t.Helper()
	e.Drain(t)
	var out []localstack.Event
	for _, ev := range e.Bus.Events() {
		var d struct {
			User struct {
				UUID string `json:"uuid"`
			} `json:"user"`
		}
		if json.Unmarshal(ev.Detail, &d) == nil && d.User.UUID == uuid {
			out = append(out, ev)
		}
	}
	return out
}

// ImagesBucket is the local stack's images bucket.
const ImagesBucket = "images-test"

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Options adjust the service under test.
type Options struct {
	// Env overrides configuration variables.
	Env map[string]string
	// App is passed to app.New (WrapDB, Mail…); LogOutput is set by Start.
	App app.Options
	// Record keeps every request and answer in Env.Exchanges, so that a
	// suite can check them against the OpenAPI description afterwards.
	Record bool
	// StreamRetries and StreamBackoff set the stream poller's retries and
	// first backoff (defaults: the template's 3, and 200 ms).
	StreamRetries int
	StreamBackoff time.Duration
	// StreamDynamoAPIOptions are added to the stream function's DynamoDB
	// client after its request counter (a bench pricing what it writes).
	StreamDynamoAPIOptions []func(*middleware.Stack) error
}

// Start brings up the stack; call Close when done (TestMain).
func Start(ctx context.Context, opts Options) (*Env, error) {
	root, err := localstack.Root()
	if err != nil {
		return nil, err
	}
	if err := localstack.EnsureTools(ctx, root); err != nil {
		return nil, err
	}
	e := &Env{Logs: &Buffer{}, Requests: ddbmetrics.New(), Actions: &Actions{}}
	if e.Dynamo, err = localstack.StartDynamoDB(ctx, localstack.DynamoOptions{Root: root}); err != nil {
		return nil, err
	}
	if e.SES, err = localstack.StartSES(ctx, localstack.SESOptions{Root: root}); err != nil {
		e.Close()
		return nil, err
	}
	e.Inbox = localstack.Inbox{Endpoint: e.SES.Endpoint()}
	if e.Bus, err = localstack.StartEventBus("127.0.0.1:0"); err != nil {
		e.Close()
		return nil, err
	}
	if e.S3, err = localstack.StartS3("127.0.0.1:0", ImagesBucket); err != nil {
		e.Close()
		return nil, err
	}
	// The server's address is known before the service is built, so that
	// its links come from configuration as on AWS.
	e.server = httptest.NewUnstartedServer(nil)
	vars := map[string]string{
		"PUBLIC_URL":           "http://" + e.server.Listener.Addr().String(),
		"TABLE_NAME":           "users-test",
		"MAIL_FROM":            "no-reply@example.com",
		"TOKEN_KEY":            "test-token-key-0123456789abcdef",
		"AWS_REGION":           "us-east-1",
		"DYNAMODB_ENDPOINT":    e.Dynamo.Endpoint(),
		"SES_ENDPOINT":         e.SES.Endpoint(),
		"S3_ENDPOINT":          e.S3.Endpoint(),
		"IMAGES_BUCKET":        ImagesBucket,
		"EVENT_BUS_NAME":       "accounts-test-events",
		"EVENT_SOURCE":         EventSource,
		"EVENTBRIDGE_ENDPOINT": e.Bus.Endpoint(),
		// Every test request comes from 127.0.0.1; the per-IP limits have
		// tests of their own, with their own stack.
		"IP_RATE_LIMIT": "0",
	}
	for k, v := range opts.Env {
		vars[k] = v
	}
	if e.Config, err = config.Load(func(k string) string { return vars[k] }); err != nil {
		e.Close()
		return nil, err
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		e.Close()
		return nil, err
	}
	e.DB = dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(e.Dynamo.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	if err := localstack.EnsureTable(ctx, e.DB, tpl, "UsersTable", e.Config.TableName); err != nil {
		e.Close()
		return nil, err
	}
	appOpts := opts.App
	appOpts.LogOutput = e.Logs
	appOpts.DynamoAPIOptions = append(appOpts.DynamoAPIOptions, e.Requests.Middleware)
	// The IAM actions of every client's requests (DynamoDB, SES, S3).
	appOpts.AWSOptions = append(appOpts.AWSOptions, awsconfig.WithAPIOptions([]func(*middleware.Stack) error{e.Actions.Middleware}))
	if e.API, err = app.New(ctx, e.Config, appOpts); err != nil {
		e.Close()
		return nil, err
	}
	h, err := localstack.NewServer(tpl.Routes, app.Handlers(e.API), localstack.ServerOptions{})
	if err != nil {
		e.Close()
		return nil, err
	}
	if opts.Record {
		e.Exchanges = &Exchanges{}
		h = e.Exchanges.Middleware(h)
	}
	if err := e.startStream(ctx, opts); err != nil {
		e.Close()
		return nil, err
	}
	e.server.Config.Handler = h
	e.server.Start()
	e.URL = e.server.URL
	return e, nil
}

// startStream runs the stream function over the table's stream.
func (e *Env) startStream(ctx context.Context, opts Options) error {
	e.StreamLogs = &Buffer{}
	// The stream function gets its own clients: the options' middlewares
	// time and count the API's calls (bench, budgets), not the stream's.
	so := app.Options{LogOutput: e.StreamLogs, Mail: opts.App.Mail}
	// Its requests are not the API's: counted apart (StreamRequests).
	e.StreamRequests = ddbmetrics.New()
	so.DynamoAPIOptions = append([]func(*middleware.Stack) error{e.StreamRequests.Middleware}, opts.StreamDynamoAPIOptions...)
	// Its IAM actions, on every client (DynamoDB, SES, S3), as the API's.
	so.AWSOptions = []func(*awsconfig.LoadOptions) error{awsconfig.WithAPIOptions([]func(*middleware.Stack) error{e.Actions.Middleware})}
	h, err := app.NewStream(ctx, e.Config, so)
	if err != nil {
		return err
	}
	h.Mail = faultySender{next: h.Mail, e: e}
	e.DLQ = &localstack.Queue{}
	h.Dead = e.DLQ
	arn, err := localstack.StreamARN(ctx, e.DB, e.Config.TableName, "NEW_AND_OLD_IMAGES")
	if err != nil {
		return err
	}
	e.Stream = &localstack.StreamPoller{
		Client:    localstack.StreamsClient(e.Dynamo.Endpoint(), "us-east-1"),
		StreamARN: arn, Convert: streams.FromSDK, Filter: streams.Accepts,
		MaxRetries: opts.StreamRetries, Backoff: opts.StreamBackoff, DLQ: e.DLQ,
		Handler: func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
			return h.Handle(httpapi.WithRoute(ctx, "Stream"), ev)
		},
	}
	e.Stream.Start(context.Background())
	return nil
}

// Close stops everything Start started.
func (e *Env) Close() {
	if e.server != nil {
		e.server.Close()
	}
	if e.Stream != nil {
		e.Stream.Stop()
	}
	if e.Bus != nil {
		e.Bus.Stop()
	}
	if e.S3 != nil {
		e.S3.Stop()
	}
	if e.Dynamo != nil {
		_ = e.Dynamo.Stop()
	}
	if e.SES != nil {
		_ = e.SES.Stop()
	}
}

// Resp is an answer.
type Resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object (nil when it is not one).
func (r *Resp) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Str returns a top-level string field of the body.
func (r *Resp) Str(field string) string {
	s, _ := r.JSON()[field].(string)
	return s
}

// Do sends a request; body is JSON-encoded unless it is a string or []byte.
// hdr are name, value pairs.
func (e *Env) Do(t testing.TB, method, path string, body any, hdr ...string) *Resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &Resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Token is the Authorization header value for a token.
func Token(tok string) string { return "Token " + tok }

// Basic is the Authorization header value for HTTP Basic.
func Basic(login, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(login+":"+password))
}

// Email returns a fresh address, unique across tests.
func Email(prefix string) string {
	return fmt.Sprintf("%s-%s@example.com", prefix, strings.ReplaceAll(uuid.NewString()[:13], "-", ""))
}

var codePattern = regexp.MustCompile(`[?&]code=([A-Za-z0-9_-]+)`)

// CodeFromMail waits for a mail to `to` whose subject contains subject and
// returns the code in its link, as a person reads it from their inbox.
func (e *Env) CodeFromMail(t testing.TB, to, subject string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := e.Inbox.WaitFor(ctx, to, func(m localstack.Mail) bool { return strings.Contains(m.Subject, subject) })
	if err != nil {
		t.Fatalf("no mail %q to %s: %v", subject, to, err)
	}
	sm := codePattern.FindStringSubmatch(m.Text)
	if sm == nil {
		t.Fatalf("mail %q to %s has no code link in its text: %q", subject, to, m.Text)
	}
	return sm[1]
}

// MailsTo counts the mails to an address with subject, once the stream
// has sent what is queued.
func (e *Env) MailsTo(t testing.TB, to, subject string) []localstack.Mail {
	t.Helper()
	e.Drain(t)
	all, err := e.Inbox.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []localstack.Mail
	for _, m := range all {
		for _, a := range m.To {
			if strings.EqualFold(a, to) && strings.Contains(m.Subject, subject) {
				out = append(out, m)
			}
		}
	}
	return out
}

// DefaultPassword is a password that passes the rules.
const DefaultPassword = "violet-Tractor-93-lantern"

// SignUp registers email and returns the created user's uuid.
func (e *Env) SignUp(t testing.TB, email string) string {
	t.Helper()
	r := e.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": DefaultPassword})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up %s: %d %s", email, r.Status, r.Body)
	}
	return r.Str("uuid")
}

// Activate reads the activation code from the inbox and activates with
// DefaultPassword.
func (e *Env) Activate(t testing.TB, email string) {
	t.Helper()
	e.ActivateWith(t, email, DefaultPassword)
}

// ActivateWith reads the activation code from the inbox and activates
// with the password chosen at sign-up.
func (e *Env) ActivateWith(t testing.TB, email, password string) {
	t.Helper()
	code := e.CodeFromMail(t, email, "Activate")
	r := e.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": password})
	if r.Status != http.StatusOK {
		t.Fatalf("activate %s: %d %s", email, r.Status, r.Body)
	}
}

// Login logs in and returns the token.
func (e *Env) Login(t testing.TB, login, password string) string {
	t.Helper()
	r := e.Do(t, "POST", "/api/auth/login", map[string]any{"login": login, "password": password})
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", login, r.Status, r.Body)
	}
	return r.Str("token")
}

// User is an active account made for a test.
type User struct {
	UUID, Email, Password, Token string
}

// NewUser signs up, activates and logs in a fresh user.
func (e *Env) NewUser(t testing.TB, prefix string) User {
	t.Helper()
	email := Email(prefix)
	id := e.SignUp(t, email)
	e.Activate(t, email)
	return User{UUID: id, Email: email, Password: DefaultPassword, Token: e.Login(t, email, DefaultPassword)}
}

// NewStaff makes an active staff account directly through the service, as
// the bootstrap of a deployed stack does.
func (e *Env) NewStaff(t testing.TB, prefix string, support bool) User {
	t.Helper()
	email := Email(prefix)
	u, err := e.API.Users.EnsureStaff(context.Background(), email, DefaultPassword, !support, support)
	if err != nil {
		t.Fatal(err)
	}
	return User{UUID: u.UUID, Email: email, Password: DefaultPassword, Token: e.Login(t, email, DefaultPassword)}
}

// CodeIn returns the code in a mail's text.
func CodeIn(t testing.TB, text string) string {
	t.Helper()
	sm := codePattern.FindStringSubmatch(text)
	if sm == nil {
		t.Fatalf("no code link in %q", text)
	}
	return sm[1]
}

// MailFeedback hands an SNS delivery of SES's feedback to the feedback
// function (MailFeedbackFunction), as SNS would, with its DynamoDB calls
// recorded for the IAM check.
func (e *Env) MailFeedback(ctx context.Context, ev events.SNSEvent) error {
	f, err := app.NewFeedback(ctx, e.Config, app.Options{LogOutput: e.StreamLogs,
		DynamoAPIOptions: []func(*middleware.Stack) error{e.StreamRequests.Middleware, e.Actions.Middleware}})
	if err != nil {
		return err
	}
	return f.Handle(httpapi.WithRoute(ctx, "MailFeedback"), ev)
}
