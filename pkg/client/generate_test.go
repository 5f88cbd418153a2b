package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedClientIsCurrent regenerates the client with the go:generate
// line of generate.go into a temporary file and compares it with the
// committed client.gen.go, so the client cannot drift from api/openapi.yaml.
func TestGeneratedClientIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs oapi-codegen")
	}
	src, err := os.ReadFile("generate.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate "); ok {
			args = strings.Fields(rest)
		}
	}
	if len(args) == 0 || args[0] != "go" {
		t.Fatalf("generate.go has no //go:generate go ... line")
	}
	cfg, err := os.ReadFile("cfg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "client.gen.go")
	tmpCfg := filepath.Join(t.TempDir(), "cfg.yaml")
	cfg = bytes.Replace(cfg, []byte("output: client.gen.go"), []byte("output: "+out), 1)
	if !bytes.Contains(cfg, []byte(out)) {
		t.Fatal("cfg.yaml has no `output: client.gen.go` line")
	}
	if err := os.WriteFile(tmpCfg, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "cfg.yaml" {
			args[i] = tmpCfg
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("pkg/client/client.gen.go is not what `go generate ./pkg/client` makes of api/openapi.yaml; run it and commit the result")
	}
}
