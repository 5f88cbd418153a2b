// Package functions_test checks the Lambda functions as deployed units: that
// each function of template.yaml is wired through the Makefile, its
// functions/<dir>/main.go, its sample event and pkg/api's Handlers(), and
// that each sample event gets a well-formed answer both from the in-process
// handler and from the function's own binary run under the Lambda Runtime
// API (pkg/lambdatest).
//
// The function list is read from template.yaml and the Makefile at test
// time, so a new function is covered as soon as it is declared there.
package functions_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"gopkg.in/yaml.v3"

	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/lambdatest"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

var (
	// env is the service under test, on DynamoDB Local and the local SES.
	env *testenv.Env
	// root is the module root (template.yaml, Makefile, events/, functions/).
	root string
)

func TestMain(m *testing.M) {
	var err error
	if root, err = localstack.Root(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	env, err = testenv.Start(ctx, testenv.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	os.Exit(code)
}

// wantStatus pins the answer of the sample events whose outcome on a fresh
// table is known; any other sample event only has to get a well-formed,
// non-5xx answer (most carry tokens and codes the table does not hold).
var wantStatus = map[string]int{
	"signup": http.StatusCreated,
	"pages":  http.StatusOK,
}

// function is one Makefile FUNCTIONS entry with its template routes, or,
// for a trigger, the type of its event source (DynamoDB, SNS, Schedule).
type function struct {
	ID, Dir string
	Routes  []localstack.Route
	Trigger string
}

// triggers are the handlers of the trigger functions, by logical id: they
// take the event of their source, not an HTTP request, and are built by
// app.NewStream and app.NewFeedback rather than app.Handlers.
func triggers(t *testing.T) map[string]func(ctx context.Context, raw []byte) ([]byte, error) {
	t.Helper()
	stream, err := app.NewStream(context.Background(), env.Config, app.Options{LogOutput: &testenv.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	feedback, err := app.NewFeedback(context.Background(), env.Config, app.Options{LogOutput: &testenv.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func(ctx context.Context, raw []byte) ([]byte, error){
		"StreamFunction": func(ctx context.Context, raw []byte) ([]byte, error) {
			var ev events.DynamoDBEvent
			if err := strictJSON(raw, &ev); err != nil {
				return nil, err
			}
			res, err := stream.Handle(ctx, ev)
			if err != nil {
				return nil, err
			}
			return json.Marshal(res)
		},
		"MailFeedbackFunction": func(ctx context.Context, raw []byte) ([]byte, error) {
			var ev events.SNSEvent
			if err := strictJSON(raw, &ev); err != nil {
				return nil, err
			}
			return []byte("null"), feedback.Handle(ctx, ev)
		},
	}
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// checkTriggerAnswer checks a trigger's answer to its sample: a stream
// batch with no failed record, an SNS delivery without error.
func checkTriggerAnswer(t *testing.T, f function, payload []byte) {
	t.Helper()
	if f.Trigger != "DynamoDB" {
		return
	}
	var res events.DynamoDBEventResponse
	if err := json.Unmarshal(payload, &res); err != nil {
		t.Fatalf("%s: the answer is not a batch response: %v: %s", f.ID, err, payload)
	}
	if len(res.BatchItemFailures) != 0 {
		t.Errorf("%s: the sample batch reports failed records: %s", f.ID, payload)
	}
}

// makeEntry is one "LogicalId:dir" word of the Makefile's FUNCTIONS.
type makeEntry struct{ ID, Dir string }

var functionsVar = regexp.MustCompile(`^FUNCTIONS[ \t]*(?:\+|:|::|\?)?=(.*)$`)

// makefileFunctions reads the FUNCTIONS list (with its continuation lines
// and any += additions) from the Makefile.
func makefileFunctions(path string) ([]makeEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var out []makeEntry
	found := false
	for _, line := range strings.Split(text, "\n") {
		sm := functionsVar.FindStringSubmatch(line)
		if sm == nil {
			continue
		}
		found = true
		value, _, _ := strings.Cut(sm[1], "#")
		for _, word := range strings.Fields(value) {
			id, dir, ok := strings.Cut(word, ":")
			if !ok || id == "" || dir == "" || strings.Contains(dir, ":") {
				return nil, fmt.Errorf("%s: FUNCTIONS entry %q is not LogicalId:dir", path, word)
			}
			out = append(out, makeEntry{ID: id, Dir: dir})
		}
	}
	if !found {
		return nil, fmt.Errorf("%s: no FUNCTIONS variable", path)
	}
	return out, nil
}

// templateFunctionIDs lists the AWS::Serverless::Function resources,
// including any without an HttpApi route (which ParseTemplate cannot show).
func templateFunctionIDs(path string) ([]string, error) {
	fns, err := templateFunctions(path)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id := range fns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// templateFunctions maps each AWS::Serverless::Function to the type of its
// first non-HttpApi event ("" for an HTTP function).
func templateFunctions(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Events map[string]struct {
					Type string `yaml:"Type"`
				} `yaml:"Events"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]string{}
	for id, r := range doc.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		out[id] = ""
		for _, ev := range r.Properties.Events {
			if ev.Type != "HttpApi" {
				out[id] = ev.Type
			}
		}
	}
	return out, nil
}

// loadFunctions returns the Makefile's functions in Makefile order, each
// with its routes from template.yaml.
func loadFunctions(t *testing.T) []function {
	t.Helper()
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := makefileFunctions(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := templateFunctions(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fns := make([]function, 0, len(entries))
	for _, e := range entries {
		f := function{ID: e.ID, Dir: e.Dir, Trigger: kinds[e.ID]}
		for _, r := range tpl.Routes {
			if r.FunctionID == e.ID {
				f.Routes = append(f.Routes, r)
			}
		}
		fns = append(fns, f)
	}
	return fns
}

func TestEveryFunctionIsWired(t *testing.T) {
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := makefileFunctions(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	tplIDs, err := templateFunctionIDs(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tplIDs) == 0 || len(entries) == 0 {
		t.Fatalf("found %d template functions and %d Makefile entries; the parsing is broken", len(tplIDs), len(entries))
	}
	kinds, err := templateFunctions(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]bool{}
	for _, r := range tpl.Routes {
		routed[r.FunctionID] = true
	}
	trig := triggers(t)
	for _, id := range tplIDs {
		switch {
		case kinds[id] != "" && trig[id] == nil:
			t.Errorf("template.yaml: %s is triggered by %s, but this test has no handler for it (triggers)", id, kinds[id])
		case kinds[id] != "" && routed[id]:
			t.Errorf("template.yaml: %s is both a trigger and an HTTP route", id)
		case kinds[id] == "" && !routed[id]:
			t.Errorf("template.yaml: %s has no HttpApi route", id)
		}
	}

	byID := map[string]string{}
	byDir := map[string]string{}
	for _, e := range entries {
		if prev, dup := byID[e.ID]; dup {
			t.Errorf("Makefile: %s is listed twice in FUNCTIONS (dirs %s and %s)", e.ID, prev, e.Dir)
		}
		if prev, dup := byDir[e.Dir]; dup {
			t.Errorf("Makefile: functions/%s is listed twice in FUNCTIONS (%s and %s)", e.Dir, prev, e.ID)
		}
		byID[e.ID], byDir[e.Dir] = e.Dir, e.ID
	}
	for _, id := range tplIDs {
		if _, ok := byID[id]; !ok {
			t.Errorf("template.yaml function %s has no LogicalId:dir entry in the Makefile's FUNCTIONS", id)
		}
	}

	handlers := app.Handlers(&api.API{})
	for _, e := range entries {
		if !slices.Contains(tplIDs, e.ID) {
			t.Errorf("Makefile FUNCTIONS entry %s:%s: template.yaml has no AWS::Serverless::Function %s", e.ID, e.Dir, e.ID)
		}
		if _, err := os.Stat(filepath.Join(root, "functions", e.Dir, "main.go")); err != nil {
			t.Errorf("%s: functions/%s/main.go: %v", e.ID, e.Dir, err)
		}
		if _, err := os.Stat(filepath.Join(root, "events", e.Dir+".json")); err != nil {
			t.Errorf("%s: no sample event events/%s.json: %v", e.ID, e.Dir, err)
		}
		if h, ok := handlers[e.ID]; kinds[e.ID] == "" && (!ok || h == nil) {
			t.Errorf("%s: app.Handlers (pkg/api and pkg/pages) has no handler for it", e.ID)
		}
	}
	for id := range handlers {
		if _, ok := byID[id]; !ok {
			t.Errorf("app.Handlers has %s, which is not in the Makefile's FUNCTIONS", id)
		}
	}

	dirs, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		name := d.Name()
		if !d.IsDir() || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		if _, ok := byDir[name]; !ok {
			t.Errorf("functions/%s is not in the Makefile's FUNCTIONS, so nothing builds or deploys it", name)
		}
	}
	samples, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range samples {
		if _, ok := byDir[strings.TrimSuffix(filepath.Base(p), ".json")]; !ok {
			t.Errorf("events/%s belongs to no function in the Makefile's FUNCTIONS", filepath.Base(p))
		}
	}
}

// sample is a function's sample event, raw and decoded.
type sample struct {
	Raw   []byte
	Event events.APIGatewayV2HTTPRequest
}

// loadSample reads events/<dir>.json; it skips the test when there is none
// (TestEveryFunctionIsWired reports that).
func loadSample(t *testing.T, f function) sample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "events", f.Dir+".json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no events/%s.json (reported by TestEveryFunctionIsWired)", f.Dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var s sample
	s.Raw = raw
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.Event); err != nil {
		t.Fatalf("events/%s.json is not an HTTP API payload 2.0 event: %v", f.Dir, err)
	}
	return s
}

// checkSample checks that a sample event is one API Gateway could send to
// f: one of f's routes, a path that route matches, and the service's real
// token and code formats.
func checkSample(t *testing.T, f function, s sample) {
	t.Helper()
	ev := s.Event
	name := "events/" + f.Dir + ".json"
	if ev.Version != "2.0" {
		t.Errorf("%s: version %q, want 2.0", name, ev.Version)
	}
	var route *localstack.Route
	var keys []string
	for i, r := range f.Routes {
		keys = append(keys, r.Key())
		if r.Key() == ev.RouteKey {
			route = &f.Routes[i]
		}
	}
	if route == nil {
		t.Fatalf("%s: routeKey %q is not a route of %s in template.yaml %q", name, ev.RouteKey, f.ID, keys)
	}
	if ev.RequestContext.RouteKey != ev.RouteKey {
		t.Errorf("%s: requestContext.routeKey %q differs from routeKey %q", name, ev.RequestContext.RouteKey, ev.RouteKey)
	}
	if m := ev.RequestContext.HTTP.Method; route.Method != "ANY" && m != route.Method {
		t.Errorf("%s: requestContext.http.method %q, route wants %s", name, m, route.Method)
	}
	if ev.RequestContext.HTTP.Path != ev.RawPath {
		t.Errorf("%s: requestContext.http.path %q differs from rawPath %q", name, ev.RequestContext.HTTP.Path, ev.RawPath)
	}
	if ev.RequestContext.RequestID == "" {
		t.Errorf("%s: requestContext.requestId is empty", name)
	}
	if route.Path != localstack.DefaultRoute {
		params, ok := matchPath(route.Path, ev.RawPath)
		if !ok {
			t.Errorf("%s: rawPath %q does not match the route path %s", name, ev.RawPath, route.Path)
		} else if !mapsEqual(params, ev.PathParameters) {
			t.Errorf("%s: pathParameters %v, the rawPath gives %v", name, ev.PathParameters, params)
		}
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("%s: header %q is not lower case (HTTP API lower-cases them)", name, k)
		}
	}
	if a := ev.Headers["authorization"]; strings.HasPrefix(a, "Token ") {
		if _, err := secret.ParseToken(strings.TrimPrefix(a, "Token ")); err != nil {
			t.Errorf("%s: the authorization token is not in the service's format: %v", name, err)
		}
	}
	if ev.Body != "" && !ev.IsBase64Encoded {
		if cl := ev.Headers["content-length"]; cl != "" && cl != fmt.Sprint(len(ev.Body)) {
			t.Errorf("%s: content-length %s, the body has %d bytes", name, cl, len(ev.Body))
		}
		if strings.HasPrefix(ev.Headers["content-type"], "application/json") {
			var body map[string]any
			if err := json.Unmarshal([]byte(ev.Body), &body); err != nil {
				t.Errorf("%s: the body is not a JSON object: %v", name, err)
			}
			if c, ok := body["code"].(string); ok {
				if _, err := secret.ParseCode(c); err != nil {
					t.Errorf("%s: the body's code is not in the service's format: %v", name, err)
				}
			}
		}
	}
}

// matchPath matches an HTTP API route path ({name} is one segment, {name+}
// the rest) against a raw path and returns the path parameters. As in the
// local server (pkg/localstack), a trailing slash is optional.
func matchPath(pattern, rawPath string) (map[string]string, bool) {
	pat, parts := splitPath(pattern), splitPath(rawPath)
	params := map[string]string{}
	for i, seg := range pat {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}") {
			if i >= len(parts) || slices.Contains(parts[i:], "") {
				return nil, false
			}
			params[seg[1:len(seg)-2]] = unescape(strings.Join(parts[i:], "/"))
			return params, true
		}
		if i >= len(parts) || parts[i] == "" {
			return nil, false
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			params[seg[1:len(seg)-1]] = unescape(parts[i])
		} else if seg != unescape(parts[i]) {
			return nil, false
		}
	}
	return params, len(pat) == len(parts)
}

// splitPath splits /a/b/ into [a b].
func splitPath(p string) []string {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// header looks a response header up case-insensitively.
func header(h map[string]string, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// checkAnswer checks an answer against the contract: no 5xx, a Request-Id
// (the event's request id), a JSON body, and the error envelope on errors.
func checkAnswer(t *testing.T, f function, ev events.APIGatewayV2HTTPRequest, res events.APIGatewayV2HTTPResponse) {
	t.Helper()
	body := []byte(res.Body)
	if res.IsBase64Encoded {
		t.Errorf("%s: the answer is base64-encoded; the service answers JSON as text", f.ID)
	}
	t.Logf("%s %s -> %d %s", ev.RequestContext.HTTP.Method, ev.RawPath, res.StatusCode, body)
	if res.StatusCode < 100 || res.StatusCode >= 500 {
		t.Errorf("%s: sample event answered %d (server error): %s", f.ID, res.StatusCode, body)
	}
	if want, ok := wantStatus[f.Dir]; ok && res.StatusCode != want {
		t.Errorf("%s: sample event answered %d, want %d: %s", f.ID, res.StatusCode, want, body)
	}
	if id, ok := header(res.Headers, "Request-Id"); !ok || id == "" {
		t.Errorf("%s: no Request-Id header in %v", f.ID, res.Headers)
	} else if want := ev.RequestContext.RequestID; want != "" && id != want {
		t.Errorf("%s: Request-Id %q, want the event's request id %q", f.ID, id, want)
	}
	if ct, _ := header(res.Headers, "Content-Type"); strings.HasPrefix(ct, "text/html") {
		// A page for people (pkg/pages): a whole HTML document, never cached.
		if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("<!doctype html>")) {
			t.Errorf("%s: a text/html answer that is not an HTML document: %.200q", f.ID, body)
		}
		if cc, _ := header(res.Headers, "Cache-Control"); cc != "no-store" {
			t.Errorf("%s: page with Cache-Control %q, want no-store", f.ID, cc)
		}
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if !json.Valid(body) {
			t.Errorf("%s: the body is not JSON: %q", f.ID, body)
		}
		if ct, _ := header(res.Headers, "Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q for a JSON body", f.ID, ct)
		}
	}
	if res.StatusCode >= 400 {
		var envelope map[string]any
		_ = json.Unmarshal(body, &envelope)
		code, _ := envelope["error"].(string)
		desc, _ := envelope["error_description"].(string)
		if code == "" || desc == "" {
			t.Errorf("%s: error answer %d lacks the envelope (error, error_description): %s", f.ID, res.StatusCode, body)
		}
		if res.StatusCode == http.StatusUnauthorized {
			if _, ok := header(res.Headers, "WWW-Authenticate"); !ok {
				t.Errorf("%s: 401 without WWW-Authenticate", f.ID)
			}
		}
	}
}

func TestSampleEventsThroughHandlers(t *testing.T) {
	handlers := app.Handlers(env.API)
	trig := triggers(t)
	for _, f := range loadFunctions(t) {
		t.Run(f.Dir, func(t *testing.T) {
			if f.Trigger != "" {
				raw, err := os.ReadFile(filepath.Join(root, "events", f.Dir+".json"))
				if err != nil {
					t.Fatal(err)
				}
				out, err := trig[f.ID](context.Background(), raw)
				if err != nil {
					t.Fatalf("%s on events/%s.json: %v", f.ID, f.Dir, err)
				}
				checkTriggerAnswer(t, f, out)
				return
			}
			s := loadSample(t, f)
			checkSample(t, f, s)
			h, ok := handlers[f.ID]
			if !ok {
				t.Skipf("no handler for %s (reported by TestEveryFunctionIsWired)", f.ID)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := h(ctx, s.Event)
			if err != nil {
				t.Fatalf("%s returned an error instead of an HTTP answer: %v", f.ID, err)
			}
			checkAnswer(t, f, s.Event, res)
		})
	}
}

// build is the outcome of building one function.
type build struct {
	Binary string
	Err    error
}

// buildAll builds every function for the host into dir, in order: the first
// alone (so a cold build cache is filled once, not by two builds at a time),
// then the rest at most two at a time. Each result arrives on its channel;
// wait returns once every build has finished (cancel ctx first to stop them).
func buildAll(ctx context.Context, fns []function, dir string) (results []chan build, wait func()) {
	out := make([]chan build, len(fns))
	for i := range out {
		out[i] = make(chan build, 1)
	}
	one := func(i int) {
		bin := filepath.Join(dir, fns[i].Dir)
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./functions/"+fns[i].Dir)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
		// On cancellation let go build stop its compilers itself.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		if b, err := cmd.CombinedOutput(); err != nil {
			out[i] <- build{Err: fmt.Errorf("go build ./functions/%s: %v\n%s", fns[i].Dir, err, b)}
			return
		}
		out[i] <- build{Binary: bin}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(fns) == 0 {
			return
		}
		one(0)
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for i := range jobs {
					one(i)
				}
			})
		}
		for i := 1; i < len(fns); i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}()
	return out, func() { <-done }
}

// freshTable creates an empty copy of the template's UsersTable.
func freshTable(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if err := localstack.EnsureTable(ctx, env.DB, tpl, "UsersTable", name); err != nil {
		t.Fatal(err)
	}
	return name
}

// requestLogRoute finds the service's request log line for a request id
// among JSON log lines and returns its route.
func requestLogRoute(logs, requestID string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Route     string `json:"route"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "request" && line.RequestID == requestID {
			return line.Route, true
		}
	}
	return "", false
}

func TestFunctionBinariesUnderRuntimeAPI(t *testing.T) {
	fns := loadFunctions(t)
	if len(fns) == 0 {
		t.Fatal("no functions in the Makefile")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	binDir := t.TempDir()
	builds, waitBuilds := buildAll(ctx, fns, binDir)
	t.Cleanup(func() { cancel(); waitBuilds() }) // before binDir is removed

	// The binaries run on a table of their own; the same events go, in the
	// same order, to the in-process handlers on another fresh table, so
	// each binary must answer as its Handlers() entry does (which also
	// proves its main.go starts the right handler).
	binTable := freshTable(t, ctx, "functions-binaries")
	refCfg := env.Config
	refCfg.TableName = freshTable(t, ctx, "functions-reference")
	refLogs := &testenv.Buffer{}
	ref, err := app.New(ctx, refCfg, app.Options{LogOutput: refLogs})
	if err != nil {
		t.Fatal(err)
	}
	refHandlers := app.Handlers(ref)

	baseEnv := []string{
		"MAIL_FROM=" + env.Config.MailFrom,
		"TOKEN_KEY=" + env.Config.TokenKey,
		"AWS_REGION=" + env.Config.Region,
		"DYNAMODB_ENDPOINT=" + env.Dynamo.Endpoint(),
		"SES_ENDPOINT=" + env.SES.Endpoint(),
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
	}
	fnEnv := append([]string{"TABLE_NAME=" + binTable}, baseEnv...)

	for i, f := range fns {
		t.Run(f.Dir, func(t *testing.T) {
			if f.Trigger != "" {
				triggerBinary(ctx, t, f, builds[i], fnEnv)
				return
			}
			s := loadSample(t, f)
			var b build
			select {
			case b = <-builds[i]:
				builds[i] <- b // for the cold-start case below
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			if b.Err != nil {
				t.Fatal(b.Err)
			}

			srv := lambdatest.New()
			defer srv.Close()
			fn, err := srv.Start(ctx, lambdatest.Config{Binary: b.Binary, Name: f.ID, Env: fnEnv})
			if err != nil {
				t.Fatal(err)
			}
			defer fn.Stop()
			pollCtx, pollCancel := context.WithTimeout(ctx, 20*time.Second)
			defer pollCancel()
			coldStart, err := fn.WaitFirstPoll(pollCtx)
			if err != nil {
				t.Fatalf("cold start: %v\noutput:\n%s", err, fn.Output())
			}
			r, err := fn.Invoke(ctx, s.Raw)
			if err != nil {
				t.Fatalf("invoke: %v\noutput:\n%s", err, fn.Output())
			}
			if r.Error != nil {
				t.Fatalf("the function reported an error instead of an HTTP answer: %v\noutput:\n%s", r.Error, fn.Output())
			}
			var res events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(r.Payload, &res); err != nil {
				t.Fatalf("payload is not an HTTP API response: %v: %s", err, r.Payload)
			}
			t.Logf("cold start %v, invocation %v", coldStart.Round(time.Millisecond), r.Duration.Round(time.Millisecond))
			checkAnswer(t, f, s.Event, res)

			h, ok := refHandlers[f.ID]
			if !ok {
				return // reported by TestEveryFunctionIsWired
			}
			logged := len(refLogs.String())
			want, err := h(ctx, s.Event)
			if err != nil {
				t.Fatalf("in-process %s: %v", f.ID, err)
			}
			if res.StatusCode != want.StatusCode {
				t.Errorf("the binary answered %d, the in-process %s handler %d (%s)", res.StatusCode, f.ID, want.StatusCode, want.Body)
			}
			id := s.Event.RequestContext.RequestID
			// The binary's output reaches us through a pipe: give its log
			// line a moment to arrive after the answer did.
			gotRoute, ok1 := requestLogRoute(fn.Output(), id)
			for wait := 0; !ok1 && wait < 40; wait++ {
				time.Sleep(50 * time.Millisecond)
				gotRoute, ok1 = requestLogRoute(fn.Output(), id)
			}
			wantRoute, ok2 := requestLogRoute(refLogs.String()[logged:], id) // request ids may repeat across samples
			switch {
			case !ok1:
				t.Errorf("the binary wrote no request log line for %s; output:\n%s", id, fn.Output())
			case ok2 && gotRoute != wantRoute:
				t.Errorf("functions/%s/main.go serves route %q, but Handlers()[%q] is %q", f.Dir, gotRoute, f.ID, wantRoute)
			}
		})
	}

	t.Run("ColdStartWithoutTABLE_NAME", func(t *testing.T) {
		if fns[0].Trigger != "" {
			t.Skip("the first function is a trigger")
		}
		var b build
		select {
		case b = <-builds[0]:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		if b.Err != nil {
			t.Skip("no binary:", b.Err)
		}
		srv := lambdatest.New()
		defer srv.Close()
		fn, err := srv.Start(ctx, lambdatest.Config{Binary: b.Binary, Name: fns[0].ID, Env: baseEnv})
		if err != nil {
			t.Fatal(err)
		}
		defer fn.Stop()
		pollCtx, pollCancel := context.WithTimeout(ctx, 20*time.Second)
		defer pollCancel()
		_, err = fn.WaitFirstPoll(pollCtx)
		var initErr *lambdatest.InitError
		switch {
		case err == nil:
			t.Fatalf("%s started without TABLE_NAME; output:\n%s", fns[0].Dir, fn.Output())
		case !errors.As(err, &initErr) && !errors.Is(err, lambdatest.ErrExited):
			t.Fatalf("want an init error or an exit, got %v", err)
		}
		if msg := err.Error() + "\n" + fn.Output(); !strings.Contains(msg, "TABLE_NAME") {
			t.Errorf("the failed cold start does not name TABLE_NAME: %s", msg)
		}
		t.Logf("cold start failed as it should: %v", err)
	})
}

// triggerBinary runs a trigger function's binary under the Runtime API on
// its sample event.
func triggerBinary(ctx context.Context, t *testing.T, f function, builds chan build, fnEnv []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "events", f.Dir+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var b build
	select {
	case b = <-builds:
		builds <- b
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if b.Err != nil {
		t.Fatal(b.Err)
	}
	srv := lambdatest.New()
	defer srv.Close()
	fn, err := srv.Start(ctx, lambdatest.Config{Binary: b.Binary, Name: f.ID, Env: fnEnv})
	if err != nil {
		t.Fatal(err)
	}
	defer fn.Stop()
	pollCtx, pollCancel := context.WithTimeout(ctx, 20*time.Second)
	defer pollCancel()
	if _, err := fn.WaitFirstPoll(pollCtx); err != nil {
		t.Fatalf("cold start: %v\noutput:\n%s", err, fn.Output())
	}
	r, err := fn.Invoke(ctx, raw)
	if err != nil {
		t.Fatalf("invoke: %v\noutput:\n%s", err, fn.Output())
	}
	if r.Error != nil {
		t.Fatalf("%s failed on its sample: %v\noutput:\n%s", f.ID, r.Error, fn.Output())
	}
	checkTriggerAnswer(t, f, r.Payload)
}
