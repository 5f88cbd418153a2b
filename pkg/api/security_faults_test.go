package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/ddbmetrics"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// faultStack serves the template's routes with a second service built by
// app.New, with the given mail sender and DynamoDB wrapper, on the shared
// stack's DynamoDB Local and SES (a second pair of emulators would cost
// seconds to start and prove nothing more).
func faultStack(t *testing.T, m mail.Sender, wrap func(users.DB) users.DB) *testenv.Env {
	t.Helper()
	logs := &testenv.Buffer{}
	a, err := app.New(context.Background(), env.Config, app.Options{LogOutput: logs, Mail: m, WrapDB: wrap})
	if err != nil {
		t.Fatal(err)
	}
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := localstack.NewServer(tpl.Routes, app.Handlers(a), localstack.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testenv.Env{URL: srv.URL, Inbox: env.Inbox, API: a, Config: env.Config, DB: env.DB, Logs: logs, Requests: ddbmetrics.New()}
}

// logLine returns the service's log line with msg for a request id.
func logLine(t *testing.T, logs string, msg, requestID string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", l)
		}
		if m["msg"] == msg && m["request_id"] == requestID {
			return m
		}
	}
	t.Fatalf("no %q log line for request %s", msg, requestID)
	return nil
}

var errSESDown = &smithy.GenericAPIError{Code: "Throttling", Message: "Maximum sending rate exceeded (simulated)."}

// faultyDB passes calls to DynamoDB with per-call options that, while a
// fault is set, make every attempt of the matching calls fail below the
// SDK's retry loop: an API error with the fault's code, or a connection to
// a closed port. The SDK retries as it would in AWS; its backoff is capped
// so the test stays quick.
type faultyDB struct {
	users.DB
	refusedURL string

	mu         sync.Mutex
	code       string // "" for no fault; an error code; or "refused"
	writesOnly bool
	attempts   int // attempts that met the fault
}

func (f *faultyDB) set(code string, writesOnly bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code, f.writesOnly, f.attempts = code, writesOnly, 0
}

func (f *faultyDB) faultAttempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

func (f *faultyDB) opts(write bool, opts []func(*dynamodb.Options)) []func(*dynamodb.Options) {
	f.mu.Lock()
	code := f.code
	if f.writesOnly && !write {
		code = ""
	}
	f.mu.Unlock()
	return append(opts, func(o *dynamodb.Options) {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
		if code == "" {
			return
		}
		if code == "refused" {
			o.BaseEndpoint = aws.String(f.refusedURL)
		}
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// Last in Finalize: once per attempt, inside the retry loop.
			return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("faultyDB", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				f.mu.Lock()
				f.attempts++
				f.mu.Unlock()
				if code == "refused" {
					return next.HandleFinalize(ctx, in)
				}
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: code, Message: "Rate of requests exceeds the allowed throughput.", Fault: smithy.FaultServer}
			}), middleware.After)
		})
	})
}

func (f *faultyDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return f.DB.GetItem(ctx, in, f.opts(false, o)...)
}

func (f *faultyDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return f.DB.BatchGetItem(ctx, in, f.opts(false, o)...)
}

func (f *faultyDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return f.DB.Query(ctx, in, f.opts(false, o)...)
}

func (f *faultyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return f.DB.UpdateItem(ctx, in, f.opts(true, o)...)
}

func (f *faultyDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return f.DB.TransactWriteItems(ctx, in, f.opts(true, o)...)
}

// closedPort is a local address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// unavailable checks a 503 answer: Retry-After, the envelope, no AWS text.
func unavailable(t *testing.T, fe *testenv.Env, r *testenv.Resp, fault string) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable || r.Str("error") != "service_unavailable" {
		t.Fatalf("got %d %s, want 503", r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	body := strings.ToLower(string(r.Body))
	for _, leak := range []string{strings.ToLower(fault), "dynamodb", "throughput", "127.0.0.1", "connect", "exceeded"} {
		if strings.Contains(body, leak) {
			t.Errorf("the 503 body carries %q: %s", leak, r.Body)
		}
	}
	line := logLine(t, fe.Logs.String(), "request", r.Header.Get("Request-Id"))
	if line["level"] != "ERROR" || line["status"] != float64(http.StatusServiceUnavailable) || line["cause"] == nil {
		t.Errorf("the log should hold the cause: %v", line)
	}
}

func TestFaultDynamoDBUnavailable(t *testing.T) {
	fdb := &faultyDB{refusedURL: closedPort(t)}
	fe := faultStack(t, nil, func(db users.DB) users.DB { fdb.DB = db; return fdb })
	for _, fault := range []string{"ThrottlingException", "ProvisionedThroughputExceededException", "refused"} {
		t.Run("fault="+fault, func(t *testing.T) {
			email := testenv.Email("ddbfault")
			body := map[string]any{"email": email, "password": testenv.DefaultPassword, "first_name": "Fault"}

			t.Run("case=sign-up is a 503 and writes nothing", func(t *testing.T) {
				fdb.set(fault, false)
				r := fe.Do(t, "POST", "/api/users", body)
				attempts := fdb.faultAttempts()
				fdb.set("", false)
				unavailable(t, fe, r, fault)
				if attempts < 2 {
					t.Errorf("%d attempts met the fault: the SDK did not retry", attempts)
				}
				for _, pk := range []string{"EMAIL#" + strings.ToLower(email), "USERNAME#" + strings.ToLower(email)} {
					if h := claimHolder(t, pk); h != "" {
						t.Fatalf("a failed sign-up left claim %s for %s", pk, h)
					}
				}
				r = fe.Do(t, "POST", "/api/users", body)
				if r.Status != http.StatusCreated {
					t.Fatalf("the same sign-up once the fault is lifted: %d %s", r.Status, r.Body)
				}
			})

			code := env.CodeFromMail(t, email, "Activate")
			t.Run("case=activation is a 503 and does not spend the code", func(t *testing.T) {
				fdb.set(fault, true)
				r := fe.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword})
				fdb.set("", false)
				unavailable(t, fe, r, fault)
				id := mustParseCode(t, code).User
				item := userItem(t, id)
				c, _ := item["code_activation"].(*types.AttributeValueMemberM)
				if attr(item, "status") != users.StatusUnverified || c == nil || attr(c.Value, "attempts") != "0" {
					t.Fatalf("after the failed activation: status %s, code %v", attr(item, "status"), item["code_activation"])
				}
				if r := fe.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusOK {
					t.Fatalf("the same code once the fault is lifted: %d %s", r.Status, r.Body)
				}
			})

			t.Run("case=login is a 503 and counts no failure", func(t *testing.T) {
				fdb.set(fault, true)
				r := fe.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": testenv.DefaultPassword})
				fdb.set("", false)
				unavailable(t, fe, r, fault)
				tok := fe.Login(t, email, testenv.DefaultPassword)
				me := fe.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok)
				if me.Status != http.StatusOK {
					t.Fatalf("me: %d", me.Status)
				}
				if n := attr(userItem(t, me.Str("uuid")), "failed_logins"); n != "" && n != "0" {
					t.Fatalf("failed_logins %s", n)
				}
			})
		})
	}
	auditClaims(t)
}
