package main

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// function is one entry of the Makefile's FUNCTIONS: a template logical id
// and its directory under functions/.
type function struct {
	ID, Dir string
}

// BuildInfo says how the binaries were built.
type BuildInfo struct {
	LambdaEnv   string `json:"lambda_env"`
	LambdaFlags string `json:"lambda_flags"`
	HostEnv     string `json:"host_env"`
}

// Binary is one function's bootstrap: bytes as SAM builds it (linux/arm64,
// stripped) and host_bytes as built for the cold-start runs here.
type Binary struct {
	Function  string `json:"function"`
	Dir       string `json:"dir"`
	Bytes     int64  `json:"bytes"`
	HostBytes int64  `json:"host_bytes"`
}

type builtFunction struct {
	Binary
	host string // path of the host build
}

type builds struct {
	info     BuildInfo
	binaries []builtFunction
}

// makeVars evaluates Makefile variables with make itself, so that the list
// of functions and the build flags are exactly what `make build` uses.
func makeVars(ctx context.Context, root string, names ...string) (map[string]string, error) {
	var rule strings.Builder
	rule.WriteString(".PHONY: bench-print-vars\nbench-print-vars:\n")
	for _, n := range names {
		fmt.Fprintf(&rule, "\t@echo '%s=$(%s)'\n", n, n)
	}
	cmd := exec.CommandContext(ctx, "make", "-s", "--no-print-directory", "-C", root, "-f", "Makefile", "-f", "-", "bench-print-vars")
	cmd.Stdin = strings.NewReader(rule.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("reading %v from the Makefile: %v: %s", names, err, stderr.String())
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = strings.TrimSpace(v)
		}
	}
	return vars, nil
}

// makeFunctions lists the Makefile's FUNCTIONS.
func makeFunctions(ctx context.Context, root string) ([]function, error) {
	vars, err := makeVars(ctx, root, "FUNCTIONS")
	if err != nil {
		return nil, err
	}
	var fns []function
	for _, f := range strings.Fields(vars["FUNCTIONS"]) {
		id, dir, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("the Makefile's FUNCTIONS entry %q is not LogicalId:dir", f)
		}
		fns = append(fns, function{ID: id, Dir: dir})
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("the Makefile lists no FUNCTIONS")
	}
	return fns, nil
}

// buildAll runs each function's build-<LogicalId> target twice: as SAM runs
// it (linux/arm64) into bench/out/arm64, and with GOARCH set to this host's
// architecture, the same flags otherwise, into bench/out/host.
func buildAll(ctx context.Context, root string, fns []function) (*builds, error) {
	vars, err := makeVars(ctx, root, "LAMBDA_GOENV", "LAMBDA_GOFLAGS")
	if err != nil {
		return nil, err
	}
	lambdaEnv := vars["LAMBDA_GOENV"]
	if !strings.Contains(lambdaEnv, "GOARCH=arm64") {
		return nil, fmt.Errorf("the Makefile's LAMBDA_GOENV %q does not set GOARCH=arm64", lambdaEnv)
	}
	hostEnv := strings.Replace(lambdaEnv, "GOARCH=arm64", "GOARCH="+runtime.GOARCH, 1)
	b := &builds{
		info:     BuildInfo{LambdaEnv: lambdaEnv, LambdaFlags: vars["LAMBDA_GOFLAGS"], HostEnv: hostEnv},
		binaries: make([]builtFunction, len(fns)),
	}
	type job struct {
		i      int
		arch   string
		goenv  string
		target elf.Machine
	}
	jobs := make(chan job)
	errs := make(chan error, 2*len(fns))
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				fn := fns[j.i]
				dir := filepath.Join(root, "bench", "out", j.arch, fn.ID)
				args := []string{"-s", "--no-print-directory", "-C", root, "build-" + fn.ID, "ARTIFACTS_DIR=" + dir}
				if j.goenv != "" {
					args = append(args, "LAMBDA_GOENV="+j.goenv)
				}
				cmd := exec.CommandContext(ctx, "make", args...)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("make build-%s (%s): %v\n%s", fn.ID, j.arch, err, out)
					continue
				}
				path := filepath.Join(dir, "bootstrap")
				size, err := checkELF(path, j.target)
				if err != nil {
					errs <- fmt.Errorf("%s (%s): %w", fn.ID, j.arch, err)
					continue
				}
				bf := &b.binaries[j.i]
				if j.arch == "arm64" {
					bf.Bytes = size
				} else {
					bf.HostBytes, bf.host = size, path
				}
			}
		}()
	}
	hostMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	for i, fn := range fns {
		b.binaries[i].Function, b.binaries[i].Dir = fn.ID, fn.Dir
		jobs <- job{i: i, arch: "arm64", target: elf.EM_AARCH64}
		jobs <- job{i: i, arch: "host", goenv: hostEnv, target: hostMachine}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, err
	}
	return b, nil
}

// checkELF makes sure the file is a stripped executable for the machine
// and returns its size.
func checkELF(path string, want elf.Machine) (int64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if want != elf.EM_NONE && f.Machine != want {
		return 0, fmt.Errorf("%s is built for %v, not %v", path, f.Machine, want)
	}
	if f.Section(".symtab") != nil {
		return 0, fmt.Errorf("%s is not stripped", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
