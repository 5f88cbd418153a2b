package localstack

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRoot(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("Root() = %s without go.mod: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "tools", "package.json")); err != nil {
		t.Fatalf("Root() = %s without tools/package.json: %v", root, err)
	}
}

func TestEnsureToolsInstalled(t *testing.T) {
	root := needTools(t)
	stale, err := toolsStale(root)
	if err != nil || stale {
		t.Fatalf("toolsStale after EnsureTools = %v, %v", stale, err)
	}
	start := time.Now()
	if err := EnsureTools(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("EnsureTools on fresh tools took %s; want a no-op", d)
	}
}

// fakeRoot makes a module root whose tools/ is installed by a fake npm that
// counts its runs; it returns the root and the count file.
func fakeRoot(t *testing.T) (root, count string) {
	t.Helper()
	root = t.TempDir()
	tools := filepath.Join(root, "tools")
	if err := os.MkdirAll(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tools, "package-lock.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	count = filepath.Join(bin, "count")
	script := `#!/bin/sh
set -e
[ "$1" = ci ] || { echo "unexpected args: $*" >&2; exit 2; }
echo run >> ` + count + `
sleep 0.5
mkdir -p node_modules/amplify-dynamodb-simulator/emulator node_modules/aws-ses-v2-local/dist
touch node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal.jar node_modules/aws-ses-v2-local/dist/cli.js
echo '{}' > node_modules/.package-lock.json
`
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return root, count
}

func runs(t *testing.T, count string) int {
	t.Helper()
	b, err := os.ReadFile(count)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run")
}

func TestEnsureToolsInstallsOnceUnderConcurrency(t *testing.T) {
	root, count := fakeRoot(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = EnsureTools(t.Context(), root) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("EnsureTools #%d: %v", i, err)
		}
	}
	if n := runs(t, count); n != 1 {
		t.Fatalf("npm ci ran %d times, want 1", n)
	}

	// Fresh: nothing to do.
	if err := EnsureTools(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if n := runs(t, count); n != 1 {
		t.Fatalf("npm ci ran %d times after a no-op call, want 1", n)
	}

	// A newer package-lock.json makes the install stale again.
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "tools", "package-lock.json"), future, future); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTools(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if n := runs(t, count); n != 2 {
		t.Fatalf("npm ci ran %d times after package-lock.json changed, want 2", n)
	}

	// An install killed half-way leaves no stamp: install again.
	if err := os.Remove(filepath.Join(root, "tools", stampRel)); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTools(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	if n := runs(t, count); n != 3 {
		t.Fatalf("npm ci ran %d times after the stamp went, want 3", n)
	}
}

func TestEnsureToolsReportsNpmFailure(t *testing.T) {
	root, _ := fakeRoot(t)
	bin := t.TempDir()
	script := "#!/bin/sh\necho 'npm ERR! something broke' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	err := EnsureTools(t.Context(), root)
	if err == nil || !strings.Contains(err.Error(), "something broke") {
		t.Fatalf("EnsureTools = %v, want an error with npm's output", err)
	}
}

// While another process installs (holding the exclusive lock), even an
// installed-looking tree is not trusted: EnsureTools waits.
func TestEnsureToolsWaitsForAnInstallInProgress(t *testing.T) {
	root, _ := fakeRoot(t)
	if err := EnsureTools(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(t.Context(), filepath.Join(root, "tools", lockFileName), syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := EnsureTools(ctx, root); err == nil || ctx.Err() == nil {
		t.Fatalf("EnsureTools while locked = %v, want the context's error", err)
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	for i := range 5000 {
		_, _ = b.Write([]byte("line " + strconv.Itoa(i) + "\n"))
	}
	if len(b.String()) > tailMax {
		t.Fatalf("kept %d bytes, want at most %d", len(b.String()), tailMax)
	}
	if got, want := b.Tail(2), "line 4998\nline 4999"; got != want {
		t.Fatalf("Tail(2) = %q, want %q", got, want)
	}
}
