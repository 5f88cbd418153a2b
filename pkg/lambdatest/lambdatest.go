// Package lambdatest runs Lambda function binaries on the local machine
// against an in-process implementation of the Lambda Runtime API, for tests
// and benchmarks.
//
// A [Server] plays the part of the Lambda service inside one execution
// environment: it serves the Runtime API (version 2018-06-01) on a loopback
// port, and [Server.StartFunction] starts a function binary (a custom-runtime
// "bootstrap", such as a Go program built with aws-lambda-go and the
// lambda.norpc tag) with AWS_LAMBDA_RUNTIME_API pointing at it and the rest of
// the environment Lambda provides. [Function.Invoke] then hands the function
// one event, as the service does, and waits for the function's answer.
//
//	srv := lambdatest.New()
//	defer srv.Close()
//	fn, err := srv.StartFunction(ctx, "/path/to/bootstrap", []string{"TABLE_NAME=users"})
//	if err != nil { ... }
//	defer fn.Stop()
//	coldStart, err := fn.WaitFirstPoll(ctx) // process start to first /next
//	res, err := fn.Invoke(ctx, []byte(`{"version":"2.0", ...}`))
//
// A server hosts one function process at a time, like one Lambda execution
// environment; start one server per function to run several side by side.
//
// The emulation covers what a runtime sees: the event and its request ID,
// deadline, function ARN and X-Ray trace header; response, invocation-error
// and init-error reporting (including errors sent as HTTP trailers of a
// streamed response); the 6 MB payload limit; the function timeout, after
// which the process is killed as Lambda resets the environment; and the
// registration of internal extensions, which is how aws-lambda-go enables
// SIGTERM on shutdown. It does not restart a process that died, freeze
// processes between invocations, or enforce the memory size.
package lambdatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Defaults applied by [Server.Start] to the zero fields of a [Config].
const (
	// DefaultFunctionName is the function name when Config.Name is empty.
	DefaultFunctionName = "function"
	// DefaultMemoryMB is the memory size reported to the function (the
	// MemorySize of this project's template.yaml).
	DefaultMemoryMB = 1024
	// DefaultTimeout is the function timeout (the Timeout of template.yaml).
	DefaultTimeout = 10 * time.Second
	// DefaultRegion is the AWS region reported to the function.
	DefaultRegion = "us-east-1"
	// AccountID is the AWS account ID used in the function's ARN.
	AccountID = "123456789012"
)

// MaxPayloadBytes is the largest event or response Lambda accepts for a
// synchronous invocation (6 MB).
const MaxPayloadBytes = 6 * 1024 * 1024

// Errors reported by [Function.Invoke] and [Function.WaitFirstPoll]; test
// for them with errors.Is.
var (
	// ErrExited means the function process exited.
	ErrExited = errors.New("lambdatest: function process exited")
	// ErrStopped means the function was stopped with Stop or by closing
	// its server.
	ErrStopped = errors.New("lambdatest: function stopped")
	// ErrTimedOut means the function did not answer within its timeout; the
	// process has been killed, as Lambda resets the execution environment.
	ErrTimedOut = errors.New("lambdatest: invocation timed out")
	// ErrPayloadTooLarge means the event is larger than MaxPayloadBytes.
	ErrPayloadTooLarge = errors.New("lambdatest: event payload larger than 6 MB")
	// ErrBusy means the server already runs a function.
	ErrBusy = errors.New("lambdatest: server already runs a function")
)

// ErrorPayload is an error document as a runtime reports it to Lambda, and
// as Lambda passes it on to the invoker.
type ErrorPayload struct {
	// Message is the errorMessage field.
	Message string `json:"errorMessage"`
	// Type is the errorType field, or the Lambda-Runtime-Function-Error-Type
	// header when the document has none.
	Type string `json:"errorType"`
	// StackTrace is the stackTrace field, kept as sent (its form differs
	// between runtimes).
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

// Error makes an *ErrorPayload usable as an error.
func (e *ErrorPayload) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// InitError is returned by [Function.WaitFirstPoll] and [Function.Invoke]
// once the function has reported a failed initialisation to
// /runtime/init/error.
type InitError struct {
	// Payload is the error the runtime reported.
	Payload ErrorPayload
}

// Error describes the failed initialisation.
func (e *InitError) Error() string {
	return "lambdatest: function init failed: " + e.Payload.Error()
}

// Result is the outcome of one invocation the function answered.
type Result struct {
	// RequestID is the invocation's Lambda-Runtime-Aws-Request-Id.
	RequestID string
	// Payload is the response body, or the raw error document when the
	// function reported an error.
	Payload []byte
	// ContentType is the Content-Type the runtime sent with Payload.
	ContentType string
	// Error is the function's error, nil when the invocation succeeded.
	Error *ErrorPayload
	// Duration runs from the hand-off of the event (the answer to the
	// runtime's /next request) to the receipt of the whole answer.
	Duration time.Duration
}

// Config describes a function process for [Server.Start].
type Config struct {
	// Binary is the path of the executable, the function's "bootstrap".
	Binary string
	// Env is added to the process environment last, so it can override
	// any of the variables set by the server.
	Env []string
	// InheritEnv starts the environment from this process's own
	// (os.Environ) instead of an empty one. Lambda gives a function only
	// its own variables, so the default is not to inherit.
	InheritEnv bool
	// Name is the function name (AWS_LAMBDA_FUNCTION_NAME, and in the
	// function ARN); DefaultFunctionName if empty.
	Name string
	// MemoryMB is reported in AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
	// DefaultMemoryMB if zero. It is not enforced.
	MemoryMB int
	// Timeout is the function timeout, used for the invocation deadline;
	// DefaultTimeout if zero.
	Timeout time.Duration
	// Region is reported in AWS_REGION and AWS_DEFAULT_REGION and used in
	// the function ARN; DefaultRegion if empty.
	Region string
	// Dir is the working directory and LAMBDA_TASK_ROOT; the directory of
	// Binary if empty.
	Dir string
	// Output, if set, also receives everything the process writes to
	// stdout and stderr (os.Stderr, say, to watch a function's logs).
	Output io.Writer
}

// Server serves the Lambda Runtime API on a loopback port for one function
// process at a time. Create it with [New]; it is safe for concurrent use.
type Server struct {
	ln        net.Listener
	hs        *http.Server
	closed    chan struct{}
	closeOnce sync.Once

	mu sync.Mutex
	fn *Function
}

// New starts a Runtime API server on 127.0.0.1 on a free port. It panics if
// it cannot listen, as httptest.NewServer does. Close it when done.
//
// Give each process start a server of its own where it matters which
// process polls: a stopped process's last /next request can still be read
// by a shared server after the next process started, and be taken for that
// process's first poll.
func New() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("lambdatest: failed to listen on a port: %v", err))
	}
	s := &Server{ln: ln, closed: make(chan struct{})}
	s.hs = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hs.Serve(ln) }()
	return s
}

// Addr is the server's host:port, the value of AWS_LAMBDA_RUNTIME_API.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the running function, if any, and shuts the server down.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		fn := s.fn
		s.mu.Unlock()
		if fn != nil {
			fn.Stop()
		}
		close(s.closed)
		_ = s.hs.Close()
	})
}

// StartFunction starts binary as the server's function with the default
// configuration and env added to its environment; see [Server.Start].
func (s *Server) StartFunction(ctx context.Context, binary string, env []string) (*Function, error) {
	return s.Start(ctx, Config{Binary: binary, Env: env})
}

// Start starts the function process described by cfg and returns without
// waiting for it to initialise (see [Function.WaitFirstPoll]). Like
// exec.CommandContext, ctx bounds the life of the process: when it is done
// the process is killed. The server runs one function at a time: Start
// fails with ErrBusy until the previous one is stopped or has exited.
//
// The process gets the variables Lambda sets for a custom runtime
// (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME,
// AWS_LAMBDA_FUNCTION_VERSION, AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
// AWS_LAMBDA_LOG_GROUP_NAME, AWS_LAMBDA_LOG_STREAM_NAME,
// AWS_LAMBDA_INITIALIZATION_TYPE, AWS_REGION, AWS_DEFAULT_REGION,
// LAMBDA_TASK_ROOT, _HANDLER, TZ, LANG, PATH) and, as Lambda always provides
// credentials, dummy AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY values so
// that AWS SDKs do not go looking for others; cfg.Env comes last.
func (s *Server) Start(ctx context.Context, cfg Config) (*Function, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-s.closed:
		return nil, errors.New("lambdatest: server closed")
	default:
	}
	if cfg.Binary == "" {
		return nil, errors.New("lambdatest: no binary given")
	}
	bin, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, err
	}
	cfg.Binary = bin
	if cfg.Name == "" {
		cfg.Name = DefaultFunctionName
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = DefaultMemoryMB
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Dir(bin)
	}

	f := &Function{
		srv:        s,
		cfg:        cfg,
		queue:      make(chan *invocation),
		firstPoll:  make(chan struct{}),
		initFailed: make(chan struct{}),
		exited:     make(chan struct{}),
		stopped:    make(chan struct{}),
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn != nil {
		return nil, ErrBusy
	}

	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = cfg.Dir
	cmd.Env = f.environ()
	var out io.Writer = &f.out
	if cfg.Output != nil {
		out = io.MultiWriter(&f.out, cfg.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	f.cmd = cmd

	f.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lambdatest: starting %s: %w", bin, err)
	}
	s.fn = f
	go f.wait()
	return f, nil
}

// function returns the running function, or nil.
func (s *Server) function() *Function {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fn
}

// release frees the server for another function once f is gone.
func (s *Server) release(f *Function) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn == f {
		s.fn = nil
	}
}

// Function is a function process started by a [Server].
type Function struct {
	srv     *Server
	cfg     Config
	cmd     *exec.Cmd
	started time.Time
	out     syncBuffer

	queue chan *invocation // Invoke -> /next hand-off

	firstPollOnce sync.Once
	firstPoll     chan struct{} // closed at the first /next
	firstPollAt   time.Time

	initOnce   sync.Once
	initFailed chan struct{} // closed when /init/error was called
	initErr    *InitError

	exited  chan struct{} // closed when the process has exited
	exitErr error

	stopOnce sync.Once
	stopped  chan struct{} // closed by Stop

	mu            sync.Mutex
	inflight      *invocation // handed to the runtime, not yet answered
	extRegistered bool        // an internal extension registered (SIGTERM on stop)
}

// Name is the function name the process was given.
func (f *Function) Name() string { return f.cfg.Name }

// ARN is the function ARN sent with each invocation.
func (f *Function) ARN() string {
	return "arn:aws:lambda:" + f.cfg.Region + ":" + AccountID + ":function:" + f.cfg.Name
}

// PID is the process ID of the function process.
func (f *Function) PID() int { return f.cmd.Process.Pid }

// Started is when the process was started.
func (f *Function) Started() time.Time { return f.started }

// Output returns everything the process has written to stdout and stderr so
// far, interleaved as written.
func (f *Function) Output() string { return f.out.String() }

// Exited is closed when the function process has exited.
func (f *Function) Exited() <-chan struct{} { return f.exited }

// WaitFirstPoll waits until the runtime first asks for an event
// (GET /runtime/invocation/next) and returns the time from the start of the
// process until then: the cold start, initialisation included. It returns
// an [*InitError] if the function reported a failed init, and an error
// wrapping ErrExited if the process exited first.
func (f *Function) WaitFirstPoll(ctx context.Context) (time.Duration, error) {
	select {
	case <-f.firstPoll:
		return f.firstPollAt.Sub(f.started), nil
	case <-f.initFailed:
		return 0, f.initErr
	case <-f.exited:
		select {
		case <-f.firstPoll:
			return f.firstPollAt.Sub(f.started), nil
		default:
		}
		return 0, f.exitError()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Invoke queues event for the function, waits until the runtime takes it
// and answers, and returns the answer. A handler error is not an error of
// Invoke: it comes back in Result.Error, with the raw error document in
// Result.Payload. Invoke fails with an [*InitError] after a failed init,
// with ErrTimedOut when the function does not answer within its timeout
// (the process is then killed), with ErrExited or ErrStopped when the
// process goes away first, and with ctx's error when ctx is done first (an
// event already handed over then stays with the function). Invocations may
// be made concurrently; the function takes them one at a time.
func (f *Function) Invoke(ctx context.Context, event []byte) (Result, error) {
	if len(event) > MaxPayloadBytes {
		return Result{}, ErrPayloadTooLarge
	}
	inv := &invocation{
		id:      newRequestID(),
		event:   event,
		traceID: newTraceID(),
		handed:  make(chan struct{}),
		done:    make(chan outcome, 1),
	}

	select {
	case f.queue <- inv:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-f.initFailed:
		return Result{}, f.initErr
	case <-f.exited:
		return Result{}, f.exitError()
	case <-f.stopped:
		return Result{}, ErrStopped
	}
	<-inv.handed // the /next handler has set the deadline

	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	select {
	case o := <-inv.done:
		return o.res, o.err
	case <-timer.C:
		select {
		case o := <-inv.done:
			return o.res, o.err
		default:
		}
		f.Stop()
		msg := fmt.Sprintf("%s Task timed out after %.2f seconds", time.Now().UTC().Format(time.RFC3339), f.cfg.Timeout.Seconds())
		res := Result{RequestID: inv.id, Error: &ErrorPayload{Message: msg, Type: "Sandbox.Timedout"}}
		return res, fmt.Errorf("%w: no answer to %s within %v", ErrTimedOut, inv.id, f.cfg.Timeout)
	case <-f.exited:
		select {
		case o := <-inv.done:
			return o.res, o.err
		default:
		}
		return Result{RequestID: inv.id}, f.exitError()
	case <-f.stopped:
		select {
		case o := <-inv.done:
			return o.res, o.err
		default:
		}
		return Result{RequestID: inv.id}, ErrStopped
	case <-ctx.Done():
		return Result{RequestID: inv.id}, ctx.Err()
	}
}

// Stop ends the function process and waits for it to exit, freeing the
// server for another function. Like Lambda, it kills the process at once
// unless an extension registered, in which case the process first gets
// SIGTERM and half a second to exit. Stop may be called more than once.
func (f *Function) Stop() {
	f.stopOnce.Do(func() {
		close(f.stopped)
		f.mu.Lock()
		graceful := f.extRegistered
		f.mu.Unlock()
		if graceful {
			_ = f.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-f.exited:
			case <-time.After(500 * time.Millisecond):
			}
		}
		_ = f.cmd.Process.Kill()
		<-f.exited
	})
}

// wait reaps the process and frees the server.
func (f *Function) wait() {
	f.exitErr = f.cmd.Wait()
	f.srv.release(f) // before exited closes, so Stop returns with the server free
	close(f.exited)
}

// exitError describes the exit of the process; call it only after exited
// is closed.
func (f *Function) exitError() error {
	select {
	case <-f.stopped:
		return ErrStopped
	default:
	}
	status := "exit status 0"
	if f.exitErr != nil {
		status = f.exitErr.Error()
	}
	return fmt.Errorf("%w (%s); output:\n%s", ErrExited, status, tail(f.Output(), 4096))
}

// environ builds the process environment.
func (f *Function) environ() []string {
	c := f.cfg
	// Lambda always provides credentials; dummy ones keep SDKs from probing
	// for others (instance metadata, profiles). Real or inherited ones win.
	env := []string{
		"AWS_ACCESS_KEY_ID=lambdatest",
		"AWS_SECRET_ACCESS_KEY=lambdatest",
	}
	if c.InheritEnv {
		env = append(env, os.Environ()...)
	}
	env = append(env,
		"PATH="+os.Getenv("PATH"),
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"AWS_LAMBDA_RUNTIME_API="+f.srv.Addr(),
		"AWS_LAMBDA_FUNCTION_NAME="+c.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(c.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+c.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+time.Now().UTC().Format("2006/01/02")+"/[$LATEST]"+randomHex(16),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_REGION="+c.Region,
		"AWS_DEFAULT_REGION="+c.Region,
		"LAMBDA_TASK_ROOT="+c.Dir,
		"_HANDLER="+filepath.Base(c.Binary),
	)
	return append(env, c.Env...)
}

func (f *Function) markFirstPoll() {
	f.firstPollOnce.Do(func() {
		f.firstPollAt = time.Now()
		close(f.firstPoll)
	})
}

func (f *Function) failInit(p ErrorPayload) {
	f.initOnce.Do(func() {
		f.initErr = &InitError{Payload: p}
		close(f.initFailed)
	})
}

// invocation is one queued or running event.
type invocation struct {
	id      string
	event   []byte
	traceID string

	handed    chan struct{} // closed by /next once handedOff and deadline are set
	handedOff time.Time
	deadline  time.Time

	finishOnce sync.Once
	done       chan outcome // buffered: the one answer
}

type outcome struct {
	res Result
	err error
}

func (inv *invocation) finish(res Result, err error) {
	inv.finishOnce.Do(func() { inv.done <- outcome{res, err} })
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newRequestID returns a random (version 4) UUID, as Lambda's request IDs are.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newTraceID returns an X-Ray trace header for a new, unsampled trace.
func newTraceID() string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomHex(24), randomHex(16))
}
