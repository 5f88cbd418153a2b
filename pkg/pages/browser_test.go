package pages_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/example/accounts/pkg/localstack"
)

// chromium is the browser the tests drive: CHROMIUM, or Debian's package
// (`apt-get install chromium`, which .ci/run does).
func chromium() string {
	if c := os.Getenv("CHROMIUM"); c != "" {
		return c
	}
	return "/usr/bin/chromium"
}

// TestPagesInABrowser runs tools/e2e/pages.test.mjs in headless Chromium
// (playwright-core, pinned in tools/package.json) against this suite's
// stack: a person signs up, activates from the mail, logs in, edits the
// profile, changes the email and confirms it from the second mail, logs
// out, resets the password from the mail, logs in again and deletes the
// account; every mailed link is also prefetched, a post without its form
// token is refused, and no page logs a console error. It writes each
// page's screenshot, at desktop and phone width, into docs/pages/.
func TestPagesInABrowser(t *testing.T) {
	bin := chromium()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must run the browser tests, but there is no Chromium at %s (.ci/run installs it with apt-get install -y chromium)", bin)
		}
		t.Skipf("no Chromium at %s: install it (apt-get install -y chromium) or set CHROMIUM to run the pages' browser tests", bin)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH")
	}
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", filepath.Join(root, "tools", "e2e", "pages.test.mjs"))
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Env = append(os.Environ(),
		"BASE_URL="+env.URL,
		"INBOX_URL="+env.SES.Endpoint(),
		"CHROMIUM="+bin,
		"SCREENSHOTS="+filepath.Join(root, "docs", "pages"),
	)
	// Its own process group, so a timeout ends Chromium too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("node --test tools/e2e/pages.test.mjs (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("the browser tests failed: %v", err)
	}
}
