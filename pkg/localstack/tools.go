package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Paths of the pinned tools, relative to the module root.
const (
	toolsDir      = "tools"
	dynamoJarRel  = "tools/node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal.jar"
	dynamoLibRel  = "tools/node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal_lib"
	sesCLIRel     = "tools/node_modules/aws-ses-v2-local/dist/cli.js"
	lockFileName  = ".install.lock"
	hiddenLockRel = "node_modules/.package-lock.json"
	stampRel      = "node_modules/.localstack-installed"
)

// Root returns the module root: the nearest directory at or above the working
// directory that holds a go.mod. Tests in any package use it to find tools/.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("localstack: working directory: %w", err)
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("localstack: no go.mod found at or above the working directory")
		}
		dir = parent
	}
}

// EnsureTools installs the pinned npm tools with `npm ci` in root/tools when
// they are missing or older than tools/package-lock.json (judged by
// tools/node_modules/.package-lock.json and a stamp EnsureTools writes after
// a complete install). A file lock (flock on tools/.install.lock) makes
// concurrent callers, such as the packages of one `go test ./...`, wait for
// a single install instead of running several at once or using a
// half-written node_modules. An empty root means [Root].
func EnsureTools(ctx context.Context, root string) error {
	if root == "" {
		r, err := Root()
		if err != nil {
			return err
		}
		root = r
	}
	dir := filepath.Join(root, toolsDir)
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err != nil {
		return fmt.Errorf("localstack: tools not found: %w", err)
	}
	lockPath := filepath.Join(dir, lockFileName)
	// Check under a shared lock: while another process installs (holding
	// the exclusive lock) node_modules is half-written and must not be
	// trusted.
	unlockShared, err := lockFile(ctx, lockPath, syscall.LOCK_SH)
	if err != nil {
		return err
	}
	stale, err := toolsStale(root)
	unlockShared()
	if err != nil || !stale {
		return err
	}

	unlock, err := lockFile(ctx, lockPath, syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()

	// Someone else may have installed while we waited for the lock.
	if stale, err = toolsStale(root); err != nil || !stale {
		return err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("localstack: npm is needed to install tools/: %w", err)
	}
	slog.InfoContext(ctx, "localstack: installing npm tools", "dir", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	var out tailBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("localstack: npm ci in %s: %w\n%s", dir, err, out.Tail(40))
	}
	// npm ci writes the hidden lockfile anew; touch it anyway so that the
	// freshness check holds on coarse-grained file systems and with a
	// package-lock.json dated in the future.
	stamp := time.Now()
	if st, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil && st.ModTime().After(stamp) {
		stamp = st.ModTime()
	}
	if err := os.Chtimes(filepath.Join(dir, hiddenLockRel), stamp, stamp); err != nil {
		return fmt.Errorf("localstack: npm ci left no %s: %w", hiddenLockRel, err)
	}
	// Our own stamp says the install finished: an npm ci killed half-way may
	// leave a hidden lockfile behind, never this.
	if err := os.WriteFile(filepath.Join(dir, stampRel), []byte(stamp.UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	if err := os.Chtimes(filepath.Join(dir, stampRel), stamp, stamp); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	if stale, err := toolsStale(root); err != nil || stale {
		if err == nil {
			err = errors.New("npm ci succeeded but the tools are still missing or stale")
		}
		return fmt.Errorf("localstack: %w", err)
	}
	slog.InfoContext(ctx, "localstack: npm tools installed", "dir", dir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// toolsStale reports whether tools/node_modules needs an install.
func toolsStale(root string) (bool, error) {
	dir := filepath.Join(root, toolsDir)
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false, fmt.Errorf("localstack: %w", err)
	}
	for _, rel := range []string{hiddenLockRel, stampRel} {
		st, err := os.Stat(filepath.Join(dir, rel))
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("localstack: %w", err)
		}
		if st.ModTime().Before(lock.ModTime()) {
			return true, nil
		}
	}
	for _, rel := range []string{dynamoJarRel, sesCLIRel} {
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			return true, nil
		}
	}
	return false, nil
}

// lockFile takes a flock of the given kind (syscall.LOCK_SH or LOCK_EX) on
// path, polling so that ctx can cancel the wait. The returned func releases
// it.
func lockFile(ctx context.Context, path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("localstack: lock file: %w", err)
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("localstack: flock %s: %w", path, err)
		}
		if !logged {
			slog.InfoContext(ctx, "localstack: waiting for another npm install to finish", "lock", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("localstack: waiting for %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// tailBuffer keeps the last bytes written to it; it is safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailMax {
		b.buf = append(b.buf[:0:0], b.buf[len(b.buf)-tailMax:]...)
	}
	return len(p), nil
}

// String returns everything kept.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Tail returns the last n lines kept.
func (b *tailBuffer) Tail(n int) string {
	s := bytes.TrimRight([]byte(b.String()), "\n")
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		j := bytes.LastIndexByte(s[:i], '\n')
		if j < 0 {
			i = 0
			break
		}
		i = j
	}
	if i > 0 {
		i++ // skip the newline
	}
	return string(s[i:])
}
