package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// StartTimeout bounds how long StartDynamoDB and StartSES wait for the
// service to answer, on top of the caller's context.
const StartTimeout = 90 * time.Second

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// DynamoOptions configures StartDynamoDB.
type DynamoOptions struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free port.
	Port int
	// DataDir persists the data (-sharedDb -dbPath DataDir), created if
	// missing. Empty runs in memory (-inMemory): each access key and region
	// then sees its own set of tables, as with the real service's accounts.
	DataDir string
	// Root is the module root holding tools/; empty means Root().
	Root string
}

// SESOptions configures StartSES.
type SESOptions struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free port.
	Port int
	// Root is the module root holding tools/; empty means Root().
	Root string
}

// Process is a running emulator. Stop it when done; it is also killed when
// the Go process that started it dies.
type Process struct {
	name     string
	cmd      *exec.Cmd
	endpoint string
	out      *tailBuffer
	tmpDir   string // removed on Stop

	done    chan struct{} // closed once the process has been reaped
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Endpoint is the service's base URL, http://127.0.0.1:PORT.
func (p *Process) Endpoint() string { return p.endpoint }

// Output returns the tail of the process's combined stdout and stderr.
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM to the process group, sends SIGKILL if it has not
// exited after a grace period, and reaps it. It is safe to call more than
// once; later calls return the first result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		defer func() {
			if p.tmpDir != "" {
				_ = os.RemoveAll(p.tmpDir)
			}
		}()
		select {
		case <-p.done:
			// It died on its own before Stop: report how.
			p.stopErr = fmt.Errorf("localstack: %s had exited before Stop: %v\n%s", p.name, p.waitErr, p.out.Tail(20))
			return
		default:
		}
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			slog.Warn("localstack: process ignored SIGTERM, killing it", "name", p.name, "pid", pgid)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		// Anything left in the group (there should be nothing) goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		slog.Debug("localstack: stopped", "name", p.name, "pid", pgid)
	})
	return p.stopErr
}

// StartDynamoDB starts DynamoDB Local from tools/ on 127.0.0.1 and waits
// until it answers. ctx bounds the start only; the process runs until Stop.
func StartDynamoDB(ctx context.Context, opts DynamoOptions) (*Process, error) {
	root, err := rootOr(opts.Root)
	if err != nil {
		return nil, err
	}
	jar := filepath.Join(root, dynamoJarRel)
	if err := needFile(jar); err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("localstack: DynamoDB Local needs java on PATH: %w", err)
	}
	// DynamoDB Local writes a metadata file into its working directory, so
	// give it one of its own.
	var workDir, tmpDir string
	storage := []string{"-inMemory"}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("localstack: DynamoDB data dir: %w", err)
		}
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("localstack: DynamoDB data dir: %w", err)
		}
		storage = []string{"-sharedDb", "-dbPath", abs}
		workDir = abs
	} else {
		tmpDir, err = os.MkdirTemp("", "dynamodb-local-")
		if err != nil {
			return nil, fmt.Errorf("localstack: %w", err)
		}
		workDir = tmpDir
	}
	p, err := start(ctx, startSpec{
		name: "dynamodb-local",
		port: opts.Port,
		dir:  workDir,
		args: func(port int) []string {
			// The serial collector and the client compiler alone: on a
			// 2-core machine the default G1 and C2 threads took CPU from
			// the tests the emulator serves (a pkg/api run: 76 s with the
			// defaults, 62 s with these).
			args := []string{java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
				"-Djava.library.path=" + filepath.Join(root, dynamoLibRel), "-jar", jar}
			args = append(args, storage...)
			return append(args, "-port", strconv.Itoa(port), "-disableTelemetry")
		},
		// Any HTTP answer means it is serving (GET / answers 400).
		readyPath: "/",
		ready:     func(int) bool { return true },
	})
	if err != nil {
		if tmpDir != "" {
			_ = os.RemoveAll(tmpDir)
		}
		return nil, err
	}
	p.tmpDir = tmpDir
	return p, nil
}

// StartSES starts the aws-ses-v2-local SES fake from tools/ on 127.0.0.1 and
// waits until it answers. It takes SES v1 (query protocol, POST /) and v2
// calls, keeps the mails in memory and serves them at GET /store; see
// [Inbox]. ctx bounds the start only; the process runs until Stop.
func StartSES(ctx context.Context, opts SESOptions) (*Process, error) {
	root, err := rootOr(opts.Root)
	if err != nil {
		return nil, err
	}
	cli := filepath.Join(root, sesCLIRel)
	if err := needFile(cli); err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("localstack: the SES fake needs node on PATH: %w", err)
	}
	return start(ctx, startSpec{
		name: "ses-local",
		port: opts.Port,
		dir:  filepath.Join(root, toolsDir),
		args: func(port int) []string {
			return []string{node, cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port)}
		},
		// Never relay the kept mails to a real SMTP server.
		dropEnv:   []string{"SMTP_TRANSPORT"},
		readyPath: "/health-check",
		ready:     func(status int) bool { return status == http.StatusOK },
	})
}

type startSpec struct {
	name      string
	port      int
	dir       string
	args      func(port int) []string
	dropEnv   []string
	readyPath string
	ready     func(status int) bool
}

// start launches spec and waits for it to answer. With a port picked here it
// retries on a fresh port if the process dies early (the port may have been
// taken between picking and binding).
func start(ctx context.Context, spec startSpec) (*Process, error) {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	attempts := 1
	if spec.port == 0 {
		attempts = 3
	}
	var lastErr error
	for range attempts {
		port := spec.port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		p, err := launch(spec, port)
		if err != nil {
			return nil, err
		}
		err = waitReady(ctx, p, spec, port)
		if err == nil {
			return p, nil
		}
		_ = p.Stop()
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExitedEarly) {
			break
		}
	}
	return nil, lastErr
}

var errExitedEarly = errors.New("exited before it answered")

func launch(spec startSpec, port int) (*Process, error) {
	argv := spec.args(port)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = spec.dir
	cmd.Env = envWithout(os.Environ(), spec.dropEnv)
	out := &tailBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group, so Stop reaches every descendant; SIGKILL when the
	// thread that started it (and so the Go process) dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("localstack: start %s: %w", spec.name, err)
	}
	p := &Process{
		name:     spec.name,
		cmd:      cmd,
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		out:      out,
		done:     make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	slog.Debug("localstack: started", "name", spec.name, "pid", cmd.Process.Pid, "port", port)
	return p, nil
}

func waitReady(ctx context.Context, p *Process, spec startSpec, port int) error {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	url := p.endpoint + spec.readyPath
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.exited() {
			return fmt.Errorf("localstack: %s on port %d %w (%v); output:\n%s",
				spec.name, port, errExitedEarly, p.waitErr, p.out.Tail(20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if spec.ready(resp.StatusCode) && !p.exited() {
				slog.Info("localstack: ready", "name", spec.name, "endpoint", p.endpoint,
					"took", time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("localstack: %s on port %d %w (%v); output:\n%s",
				spec.name, port, errExitedEarly, p.waitErr, p.out.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("localstack: %s did not answer at %s within %s: %w; output:\n%s",
				spec.name, url, time.Since(start).Round(time.Millisecond), ctx.Err(), p.out.Tail(20))
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localstack: pick a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func envWithout(env, drop []string) []string {
	if len(drop) == 0 {
		return env
	}
	out := env[:0:0]
outer:
	for _, kv := range env {
		for _, d := range drop {
			if len(kv) > len(d) && kv[:len(d)] == d && kv[len(d)] == '=' {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

func rootOr(root string) (string, error) {
	if root != "" {
		return root, nil
	}
	return Root()
}

func needFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("localstack: %w (call EnsureTools first)", err)
	}
	return nil
}
