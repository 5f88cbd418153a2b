package lambdatest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/accounts/pkg/lambdatest"
)

// echoReply mirrors the reply of testdata/echo.
type echoReply struct {
	Event        json.RawMessage `json:"event"`
	Invocation   int             `json:"invocation"`
	RequestID    string          `json:"request_id"`
	FunctionARN  string          `json:"function_arn"`
	DeadlineMs   int64           `json:"deadline_ms"`
	FunctionName string          `json:"function_name"`
	MemoryMB     string          `json:"memory_mb"`
	Region       string          `json:"region"`
	TraceID      string          `json:"trace_id"`
	Extra        string          `json:"extra"`
}

var (
	echoOnce sync.Once
	echoDir  string
	echoPath string
	echoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if echoDir != "" {
		_ = os.RemoveAll(echoDir)
	}
	os.Exit(code)
}

// echoBinary builds testdata/echo once per test run, as Lambda functions
// are built (lambda.norpc), for this machine.
func echoBinary(t *testing.T) string {
	t.Helper()
	echoOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			echoErr = err
			return
		}
		echoDir, echoErr = os.MkdirTemp("", "lambdatest-echo-")
		if echoErr != nil {
			return
		}
		echoPath = filepath.Join(echoDir, "bootstrap")
		cmd := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-o", echoPath, "./testdata/echo")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			echoErr = fmt.Errorf("go build ./testdata/echo: %v\n%s", err, out)
		}
	})
	if echoErr != nil {
		t.Fatalf("building the echo function: %v", echoErr)
	}
	return echoPath
}

// start runs the echo function on a new server and waits for its first poll.
func start(t *testing.T, cfg lambdatest.Config) (*lambdatest.Server, *lambdatest.Function) {
	t.Helper()
	srv := lambdatest.New()
	t.Cleanup(srv.Close)
	cfg.Binary = echoBinary(t)
	fn, err := srv.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(fn.Stop)
	if _, err := fn.WaitFirstPoll(t.Context()); err != nil {
		t.Fatalf("WaitFirstPoll: %v\noutput:\n%s", err, fn.Output())
	}
	return srv, fn
}

func invoke(t *testing.T, fn *lambdatest.Function, event string) lambdatest.Result {
	t.Helper()
	res, err := fn.Invoke(t.Context(), []byte(event))
	if err != nil {
		t.Fatalf("Invoke(%s): %v\noutput:\n%s", event, err, fn.Output())
	}
	return res
}

func decode(t *testing.T, res lambdatest.Result) echoReply {
	t.Helper()
	if res.Error != nil {
		t.Fatalf("invocation %s failed: %v", res.RequestID, res.Error)
	}
	var r echoReply
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		t.Fatalf("decoding %q: %v", res.Payload, err)
	}
	return r
}

func TestStartFunctionAndInvoke(t *testing.T) {
	srv := lambdatest.New()
	defer srv.Close()
	fn, err := srv.StartFunction(t.Context(), echoBinary(t), []string{"ECHO_EXTRA=hello"})
	if err != nil {
		t.Fatalf("StartFunction: %v", err)
	}
	defer fn.Stop()

	coldStart, err := fn.WaitFirstPoll(t.Context())
	if err != nil {
		t.Fatalf("WaitFirstPoll: %v\noutput:\n%s", err, fn.Output())
	}
	if coldStart <= 0 {
		t.Errorf("first poll after %v, want > 0", coldStart)
	}
	t.Logf("cold start (process start to first /next): %v", coldStart)

	var ids []string
	for i, event := range []string{`{"n":1,"hello":"world"}`, `{"n":2}`} {
		before := time.Now()
		res := invoke(t, fn, event)
		r := decode(t, res)
		if string(r.Event) != event {
			t.Errorf("invocation %d: event echoed as %s, want %s", i+1, r.Event, event)
		}
		if r.Invocation != i+1 {
			t.Errorf("invocation %d: the process counted %d (want one warm process)", i+1, r.Invocation)
		}
		if res.RequestID == "" || r.RequestID != res.RequestID {
			t.Errorf("invocation %d: request ID %q, the function saw %q", i+1, res.RequestID, r.RequestID)
		}
		ids = append(ids, res.RequestID)
		if res.Duration <= 0 || res.Duration > time.Since(before) {
			t.Errorf("invocation %d: duration %v out of range", i+1, res.Duration)
		}
		if r.FunctionARN != fn.ARN() || !strings.HasPrefix(r.FunctionARN, "arn:aws:lambda:us-east-1:") {
			t.Errorf("function ARN %q, want %q", r.FunctionARN, fn.ARN())
		}
		deadline := time.UnixMilli(r.DeadlineMs)
		if deadline.Before(before.Add(lambdatest.DefaultTimeout-time.Second)) || deadline.After(time.Now().Add(lambdatest.DefaultTimeout)) {
			t.Errorf("deadline %v is not about %v from now", deadline, lambdatest.DefaultTimeout)
		}
		if !strings.HasPrefix(r.TraceID, "Root=1-") {
			t.Errorf("trace ID %q", r.TraceID)
		}
		if r.FunctionName != lambdatest.DefaultFunctionName || r.MemoryMB != "1024" || r.Region != "us-east-1" || r.Extra != "hello" {
			t.Errorf("environment: name %q memory %q region %q extra %q", r.FunctionName, r.MemoryMB, r.Region, r.Extra)
		}
	}
	if ids[0] == ids[1] {
		t.Errorf("both invocations had request ID %s", ids[0])
	}
	if !strings.Contains(fn.Output(), "echo: init") {
		t.Errorf("output %q lacks the function's init log", fn.Output())
	}
}

func TestConfig(t *testing.T) {
	_, fn := start(t, lambdatest.Config{Name: "signup", MemoryMB: 256, Region: "eu-west-1"})
	r := decode(t, invoke(t, fn, `{}`))
	if r.FunctionName != "signup" || r.MemoryMB != "256" || r.Region != "eu-west-1" {
		t.Errorf("environment: name %q memory %q region %q", r.FunctionName, r.MemoryMB, r.Region)
	}
	if want := "arn:aws:lambda:eu-west-1:123456789012:function:signup"; r.FunctionARN != want {
		t.Errorf("ARN %q, want %q", r.FunctionARN, want)
	}
}

func TestHandlerError(t *testing.T) {
	_, fn := start(t, lambdatest.Config{})
	res := invoke(t, fn, `{"fail":"boom"}`)
	if res.Error == nil {
		t.Fatalf("no error; payload %s", res.Payload)
	}
	if res.Error.Message != "boom" || res.Error.Type != "errorString" {
		t.Errorf("error %+v, want errorString: boom", res.Error)
	}
	if !strings.Contains(string(res.Payload), `"errorMessage":"boom"`) {
		t.Errorf("payload %s is not the error document", res.Payload)
	}
	// The function goes on serving.
	if r := decode(t, invoke(t, fn, `{"ok":true}`)); r.Invocation != 2 {
		t.Errorf("next invocation counted %d, want 2", r.Invocation)
	}
}

func TestPanic(t *testing.T) {
	_, fn := start(t, lambdatest.Config{})
	res := invoke(t, fn, `{"panic":"kaboom"}`)
	if res.Error == nil || res.Error.Message != "kaboom" || len(res.Error.StackTrace) == 0 {
		t.Fatalf("error %+v, want a panic with a stack trace", res.Error)
	}
	// aws-lambda-go exits after reporting a panic.
	select {
	case <-fn.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("process still running after a panic")
	}
	if _, err := fn.Invoke(t.Context(), []byte(`{}`)); !errors.Is(err, lambdatest.ErrExited) {
		t.Errorf("Invoke after exit: %v, want ErrExited", err)
	}
}

func TestInitError(t *testing.T) {
	srv := lambdatest.New()
	defer srv.Close()
	fn, err := srv.StartFunction(t.Context(), echoBinary(t), []string{"ECHO_INIT_FAIL=no table configured"})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	_, err = fn.WaitFirstPoll(t.Context())
	var initErr *lambdatest.InitError
	if !errors.As(err, &initErr) {
		t.Fatalf("WaitFirstPoll: %v, want an *InitError\noutput:\n%s", err, fn.Output())
	}
	if initErr.Payload.Message != "no table configured" || initErr.Payload.Type != "Runtime.EchoInitError" {
		t.Errorf("init error %+v", initErr.Payload)
	}
	if _, err := fn.Invoke(t.Context(), []byte(`{}`)); !errors.As(err, &initErr) {
		t.Errorf("Invoke after init error: %v, want an *InitError", err)
	}
}

func TestTimeout(t *testing.T) {
	srv, fn := start(t, lambdatest.Config{Timeout: 300 * time.Millisecond})
	res, err := fn.Invoke(t.Context(), []byte(`{"sleep_ms":5000}`))
	if !errors.Is(err, lambdatest.ErrTimedOut) {
		t.Fatalf("Invoke: %v, want ErrTimedOut", err)
	}
	if res.Error == nil || res.Error.Type != "Sandbox.Timedout" || !strings.Contains(res.Error.Message, "Task timed out after 0.30 seconds") {
		t.Errorf("result error %+v", res.Error)
	}
	select {
	case <-fn.Exited():
	default:
		t.Error("process not killed after the timeout")
	}
	// The environment is reset: the server can run a new process.
	fn2, err := srv.StartFunction(t.Context(), echoBinary(t), nil)
	if err != nil {
		t.Fatalf("StartFunction after timeout: %v", err)
	}
	defer fn2.Stop()
	if r := decode(t, invoke(t, fn2, `{}`)); r.Invocation != 1 {
		t.Errorf("new process counted %d invocations", r.Invocation)
	}
}

func TestExitWithoutAnswer(t *testing.T) {
	_, fn := start(t, lambdatest.Config{})
	_, err := fn.Invoke(t.Context(), []byte(`{"exit":3}`))
	if !errors.Is(err, lambdatest.ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Invoke: %v, want ErrExited with exit status 3", err)
	}
}

func TestResponseTooLarge(t *testing.T) {
	_, fn := start(t, lambdatest.Config{})
	res, err := fn.Invoke(t.Context(), []byte(`{"big":7000000}`))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if res.Error == nil || res.Error.Type != "Function.ResponseSizeTooLarge" {
		t.Fatalf("error %+v, want Function.ResponseSizeTooLarge", res.Error)
	}
	if _, err := fn.Invoke(t.Context(), make([]byte, lambdatest.MaxPayloadBytes+1)); !errors.Is(err, lambdatest.ErrPayloadTooLarge) {
		t.Errorf("Invoke with a 6 MB + 1 event: %v, want ErrPayloadTooLarge", err)
	}
}

func TestStopAndRestart(t *testing.T) {
	srv, fn := start(t, lambdatest.Config{})
	if _, err := srv.StartFunction(t.Context(), echoBinary(t), nil); !errors.Is(err, lambdatest.ErrBusy) {
		t.Fatalf("second StartFunction: %v, want ErrBusy", err)
	}
	fn.Stop()
	fn.Stop() // idempotent
	if _, err := fn.Invoke(t.Context(), []byte(`{}`)); !errors.Is(err, lambdatest.ErrStopped) {
		t.Errorf("Invoke after Stop: %v, want ErrStopped", err)
	}
	if _, err := fn.WaitFirstPoll(t.Context()); err != nil {
		t.Errorf("WaitFirstPoll after Stop: %v (it had polled)", err)
	}
	fn2, err := srv.StartFunction(t.Context(), echoBinary(t), nil)
	if err != nil {
		t.Fatalf("StartFunction after Stop: %v", err)
	}
	defer fn2.Stop()
	decode(t, invoke(t, fn2, `{}`))
}

func TestSIGTERMExtension(t *testing.T) {
	_, fn := start(t, lambdatest.Config{Env: []string{"ECHO_SIGTERM=1"}})
	decode(t, invoke(t, fn, `{}`))
	fn.Stop()
	if !strings.Contains(fn.Output(), "echo: SIGTERM") {
		t.Errorf("the function did not get SIGTERM; output:\n%s", fn.Output())
	}
}

func TestContextCanceled(t *testing.T) {
	_, fn := start(t, lambdatest.Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := fn.Invoke(ctx, []byte(`{"sleep_ms":500}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke: %v, want context.DeadlineExceeded", err)
	}
	// The abandoned invocation finishes; the function then takes the next.
	if r := decode(t, invoke(t, fn, `{}`)); r.Invocation != 2 {
		t.Errorf("next invocation counted %d, want 2", r.Invocation)
	}
}

func TestConcurrentInvokes(t *testing.T) {
	_, fn := start(t, lambdatest.Config{})
	const n = 8
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			event := fmt.Sprintf(`{"i":%d}`, i)
			res, err := fn.Invoke(t.Context(), []byte(event))
			if err != nil {
				t.Errorf("Invoke %d: %v", i, err)
				return
			}
			var r echoReply
			if err := json.Unmarshal(res.Payload, &r); err != nil || string(r.Event) != event {
				t.Errorf("Invoke %d: reply %s", i, res.Payload)
			}
			ids <- res.RequestID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("request ID %s used twice", id)
		}
		seen[id] = true
	}
}

// TestRuntimeProtocol plays the runtime by hand against an idle process.
func TestRuntimeProtocol(t *testing.T) {
	srv := lambdatest.New()
	defer srv.Close()
	fn, err := srv.Start(t.Context(), lambdatest.Config{Binary: echoBinary(t), Name: "raw", Env: []string{"ECHO_IDLE=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	base := "http://" + srv.Addr() + "/2018-06-01/runtime/invocation/"

	type answer struct {
		res lambdatest.Result
		err error
	}
	invokeAsync := func(event string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			res, err := fn.Invoke(t.Context(), []byte(event))
			ch <- answer{res, err}
		}()
		return ch
	}
	next := func() (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + "next")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	// A streamed response whose error comes in the trailers.
	first := invokeAsync(`{"a":1}`)
	resp, body := next()
	id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
	if resp.StatusCode != http.StatusOK || body != `{"a":1}` || id == "" {
		t.Fatalf("/next: %s %q id %q", resp.Status, body, id)
	}
	if arn := resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"); arn != fn.ARN() {
		t.Errorf("function ARN header %q", arn)
	}
	if resp.Header.Get("Lambda-Runtime-Deadline-Ms") == "" || resp.Header.Get("Lambda-Runtime-Trace-Id") == "" {
		t.Errorf("missing deadline or trace header: %v", resp.Header)
	}
	errBody := base64.StdEncoding.EncodeToString([]byte(`{"errorMessage":"stream broke","errorType":"Runtime.StreamError"}`))
	req, _ := http.NewRequest(http.MethodPost, base+id+"/response", io.MultiReader(strings.NewReader("partial")))
	req.Trailer = http.Header{
		"Lambda-Runtime-Function-Error-Type": {"Runtime.StreamError"},
		"Lambda-Runtime-Function-Error-Body": {errBody},
	}
	posted, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	posted.Body.Close()
	if posted.StatusCode != http.StatusAccepted {
		t.Errorf("/response: %s, want 202", posted.Status)
	}
	if a := <-first; a.err != nil || a.res.Error == nil || a.res.Error.Type != "Runtime.StreamError" || a.res.Error.Message != "stream broke" {
		t.Errorf("streamed error: %+v %v", a.res.Error, a.err)
	}

	// A second answer to the same invocation is refused.
	again, err := http.Post(base+id+"/response", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusBadRequest {
		t.Errorf("second /response: %s, want 400", again.Status)
	}

	// Asking for the next event without answering fails the invocation.
	second := invokeAsync(`{"b":2}`)
	if resp, _ := next(); resp.StatusCode != http.StatusOK {
		t.Fatalf("/next: %s", resp.Status)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"next", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if a := <-second; a.err == nil || !strings.Contains(a.err.Error(), "without answering") {
		t.Errorf("unanswered invocation: %+v %v", a.res, a.err)
	}
}

func TestRuntimeAPIRejectsUnknownRequests(t *testing.T) {
	srv := lambdatest.New()
	defer srv.Close()
	base := "http://" + srv.Addr() + "/2018-06-01/runtime"

	resp, err := http.Get(base + "/invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("/next with no function: %s, want 403", resp.Status)
	}

	running, _ := start(t, lambdatest.Config{})
	url := "http://" + running.Addr() + "/2018-06-01/runtime/invocation/not-a-request-id/response"
	resp, err = http.Post(url, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var e lambdatest.ErrorPayload
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || e.Type != "InvalidRequestID" {
		t.Errorf("/response for an unknown request ID: %s %+v, want 400 InvalidRequestID", resp.Status, e)
	}
}
