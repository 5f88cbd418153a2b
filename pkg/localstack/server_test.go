package localstack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// recorder is a handler that keeps the events it was given.
type recorder struct {
	mu     sync.Mutex
	events []events.APIGatewayV2HTTPRequest
	fn     string
	resp   func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
}

func (r *recorder) handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	if lc, ok := lambdacontext.FromContext(ctx); !ok || lc.AwsRequestID == "" || !strings.HasSuffix(lc.InvokedFunctionArn, ":function:"+r.fn) {
		return events.APIGatewayV2HTTPResponse{}, errors.New("no Lambda context")
	}
	if r.resp != nil {
		return r.resp(ev)
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"X-Function": r.fn}, Body: r.fn}, nil
}

func (r *recorder) last() (events.APIGatewayV2HTTPRequest, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return events.APIGatewayV2HTTPRequest{}, false
	}
	return r.events[len(r.events)-1], true
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// templateServer serves testdata/template.yaml's routes with recorders.
func templateServer(t *testing.T) (*httptest.Server, map[string]*recorder) {
	t.Helper()
	tpl, err := ParseTemplate("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string]*recorder{}
	handlers := map[string]Handler{}
	for _, id := range []string{"ThingsFunction", "SpecialFunction"} {
		recs[id] = &recorder{fn: id}
		handlers[id] = recs[id].handle
	}
	h, err := NewServer(tpl.Routes, handlers, ServerOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, recs
}

func TestServerRouting(t *testing.T) {
	srv, recs := templateServer(t)
	type input struct {
		method  string
		target  string // path and query
		headers [][2]string
		body    string
	}
	type want struct {
		status         int
		function       string // "" when no handler may run
		routeKey       string
		rawPath        string
		rawQuery       string
		pathParams     map[string]string
		query          map[string]string
		headers        map[string]string // subset of the event's headers
		absentHeaders  []string
		cookies        []string
		body           string
		base64         bool
		errorCode      string // the envelope's "error" for 404/405
		allow          string
		responseHeader [2]string
	}
	tests := []struct {
		desc  string
		input input
		want  want
	}{
		{
			desc:  "literal route",
			input: input{method: "GET", target: "/things"},
			want:  want{status: 200, function: "ThingsFunction", routeKey: "GET /things", rawPath: "/things", responseHeader: [2]string{"X-Function", "ThingsFunction"}},
		},
		{
			desc:  "trailing slash is optional",
			input: input{method: "GET", target: "/things/"},
			want:  want{status: 200, function: "ThingsFunction", routeKey: "GET /things", rawPath: "/things/"},
		},
		{
			desc:  "path parameter",
			input: input{method: "GET", target: "/things/abc-123"},
			want: want{status: 200, function: "ThingsFunction", routeKey: "GET /things/{id}", rawPath: "/things/abc-123",
				pathParams: map[string]string{"id": "abc-123"}},
		},
		{
			desc:  "path parameter with trailing slash and escapes",
			input: input{method: "GET", target: "/things/a%20b%2Fc/"},
			want: want{status: 200, function: "ThingsFunction", routeKey: "GET /things/{id}", rawPath: "/things/a%20b%2Fc/",
				pathParams: map[string]string{"id": "a b/c"}},
		},
		{
			desc:  "literal segment beats parameter",
			input: input{method: "GET", target: "/things/special"},
			want:  want{status: 200, function: "SpecialFunction", routeKey: "GET /things/special", rawPath: "/things/special"},
		},
		{
			desc:  "parameter route still serves other methods of a literal path",
			input: input{method: "PUT", target: "/things/special", headers: [][2]string{{"Content-Type", "application/json"}}, body: `{"name":"x"}`},
			want: want{status: 200, function: "ThingsFunction", routeKey: "PUT /things/{id}",
				pathParams: map[string]string{"id": "special"}, body: `{"name":"x"}`},
		},
		{
			desc:  "greedy parameter with ANY",
			input: input{method: "DELETE", target: "/special/a/b/c"},
			want: want{status: 200, function: "SpecialFunction", routeKey: "ANY /special/{proxy+}",
				pathParams: map[string]string{"proxy": "a/b/c"}},
		},
		{
			desc:  "greedy parameter needs a segment",
			input: input{method: "GET", target: "/special/"},
			want:  want{status: 404, errorCode: "not_found"},
		},
		{
			desc:  "query string, repeated keys joined with commas",
			input: input{method: "GET", target: "/things?b=x%20y&a=1&a=2&flag"},
			want: want{status: 200, function: "ThingsFunction", routeKey: "GET /things", rawQuery: "b=x%20y&a=1&a=2&flag",
				query: map[string]string{"a": "1,2", "b": "x y", "flag": ""}},
		},
		{
			desc: "headers lower-cased and joined, cookies split out",
			input: input{method: "GET", target: "/things", headers: [][2]string{
				{"X-Custom-Thing", "v1"}, {"x-custom-thing", "v2"}, {"Authorization", "Token abc"},
				{"Cookie", "a=1; b=2"}, {"Cookie", "c=3"}, {"User-Agent", "test-agent/1.0"},
			}},
			want: want{status: 200, function: "ThingsFunction", routeKey: "GET /things",
				headers: map[string]string{
					"x-custom-thing": "v1,v2", "authorization": "Token abc", "user-agent": "test-agent/1.0",
					"x-forwarded-proto": "http", "x-forwarded-for": "127.0.0.1",
				},
				absentHeaders: []string{"cookie", "Authorization", "X-Custom-Thing"},
				cookies:       []string{"a=1", "b=2", "c=3"}},
		},
		{
			desc:  "x-forwarded-proto kept when sent",
			input: input{method: "GET", target: "/things", headers: [][2]string{{"X-Forwarded-Proto", "https"}}},
			want:  want{status: 200, function: "ThingsFunction", headers: map[string]string{"x-forwarded-proto": "https"}},
		},
		{
			desc:  "binary body is base64",
			input: input{method: "PUT", target: "/things/1", headers: [][2]string{{"Content-Type", "application/octet-stream"}}, body: "\x00\x01bin"},
			want: want{status: 200, function: "ThingsFunction", routeKey: "PUT /things/{id}", pathParams: map[string]string{"id": "1"},
				body: base64.StdEncoding.EncodeToString([]byte("\x00\x01bin")), base64: true},
		},
		{
			desc:  "form body is base64, as API Gateway does",
			input: input{method: "PUT", target: "/things/1", headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, body: "a=1"},
			want: want{status: 200, function: "ThingsFunction", pathParams: map[string]string{"id": "1"},
				body: base64.StdEncoding.EncodeToString([]byte("a=1")), base64: true},
		},
		{
			desc:  "JSON body with charset stays text",
			input: input{method: "PUT", target: "/things/1", headers: [][2]string{{"Content-Type", "application/json; charset=utf-8"}}, body: `{"a":"é"}`},
			want:  want{status: 200, function: "ThingsFunction", pathParams: map[string]string{"id": "1"}, body: `{"a":"é"}`},
		},
		{
			desc:  "unknown path is 404",
			input: input{method: "GET", target: "/nope"},
			want:  want{status: 404, errorCode: "not_found"},
		},
		{
			desc:  "too deep for the parameter route is 404",
			input: input{method: "GET", target: "/things/1/2"},
			want:  want{status: 404, errorCode: "not_found"},
		},
		{
			desc:  "known path with another method is 405",
			input: input{method: "DELETE", target: "/things/1"},
			want:  want{status: 405, errorCode: "method_not_allowed", allow: "GET, PUT"},
		},
		{
			desc:  "method is case-sensitive like HTTP",
			input: input{method: "POST", target: "/things"},
			want:  want{status: 405, errorCode: "method_not_allowed", allow: "GET"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			for _, r := range recs {
				r.mu.Lock()
				r.events = nil
				r.mu.Unlock()
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.input.method, srv.URL+tc.input.target, strings.NewReader(tc.input.body))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.input.headers {
				req.Header.Add(h[0], h[1])
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tc.want.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.want.status, respBody)
			}
			if resp.Header.Get("Apigw-Requestid") == "" {
				t.Error("no Apigw-Requestid response header")
			}

			if tc.want.errorCode != "" {
				var env map[string]string
				if err := json.Unmarshal(respBody, &env); err != nil {
					t.Fatalf("envelope %s: %v", respBody, err)
				}
				if env["error"] != tc.want.errorCode || env["error_description"] == "" || len(env) != 2 {
					t.Errorf("envelope %v, want error %q with a description", env, tc.want.errorCode)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if resp.Header.Get("Request-Id") == "" {
					t.Error("no Request-Id header on the envelope")
				}
				if got := resp.Header.Get("Allow"); got != tc.want.allow {
					t.Errorf("Allow %q, want %q", got, tc.want.allow)
				}
				for id, r := range recs {
					if _, ran := r.last(); ran {
						t.Errorf("%s ran for a %d", id, tc.want.status)
					}
				}
				return
			}

			rec := recs[tc.want.function]
			ev, ok := rec.last()
			if !ok {
				t.Fatalf("%s did not run; response %s", tc.want.function, respBody)
			}
			if string(respBody) != tc.want.function {
				t.Errorf("response body %q, want %q", respBody, tc.want.function)
			}
			if h := tc.want.responseHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
				t.Errorf("response header %s = %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
			}
			if tc.want.routeKey != "" && (ev.RouteKey != tc.want.routeKey || ev.RequestContext.RouteKey != tc.want.routeKey) {
				t.Errorf("route key %q / %q, want %q", ev.RouteKey, ev.RequestContext.RouteKey, tc.want.routeKey)
			}
			if tc.want.rawPath != "" && (ev.RawPath != tc.want.rawPath || ev.RequestContext.HTTP.Path != tc.want.rawPath) {
				t.Errorf("raw path %q / %q, want %q", ev.RawPath, ev.RequestContext.HTTP.Path, tc.want.rawPath)
			}
			if ev.RawQueryString != tc.want.rawQuery {
				t.Errorf("raw query %q, want %q", ev.RawQueryString, tc.want.rawQuery)
			}
			if !reflect.DeepEqual(ev.PathParameters, tc.want.pathParams) {
				t.Errorf("path parameters %v, want %v", ev.PathParameters, tc.want.pathParams)
			}
			if !reflect.DeepEqual(ev.QueryStringParameters, tc.want.query) {
				t.Errorf("query parameters %v, want %v", ev.QueryStringParameters, tc.want.query)
			}
			for k, v := range tc.want.headers {
				if ev.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, ev.Headers[k], v)
				}
			}
			for _, k := range tc.want.absentHeaders {
				if _, ok := ev.Headers[k]; ok {
					t.Errorf("header %s present", k)
				}
			}
			for k := range ev.Headers {
				if k != strings.ToLower(k) {
					t.Errorf("header %q not lower-cased", k)
				}
			}
			if !reflect.DeepEqual(ev.Cookies, tc.want.cookies) {
				t.Errorf("cookies %q, want %q", ev.Cookies, tc.want.cookies)
			}
			if ev.Body != tc.want.body || ev.IsBase64Encoded != tc.want.base64 {
				t.Errorf("body %q base64=%v, want %q base64=%v", ev.Body, ev.IsBase64Encoded, tc.want.body, tc.want.base64)
			}

			// What every event carries.
			rc := ev.RequestContext
			host := strings.TrimPrefix(srv.URL, "http://")
			switch {
			case ev.Version != "2.0":
				t.Errorf("version %q", ev.Version)
			case rc.Stage != "$default" || rc.APIID != "local" || rc.AccountID != DefaultAccountID:
				t.Errorf("stage %q api %q account %q", rc.Stage, rc.APIID, rc.AccountID)
			case rc.DomainName != host || ev.Headers["host"] != host || rc.DomainPrefix != "127.0.0.1":
				t.Errorf("domain %q prefix %q host header %q", rc.DomainName, rc.DomainPrefix, ev.Headers["host"])
			case rc.RequestID == "" || resp.Header.Get("Apigw-Requestid") != rc.RequestID:
				t.Errorf("request id %q, response header %q", rc.RequestID, resp.Header.Get("Apigw-Requestid"))
			case rc.HTTP.Method != tc.input.method || rc.HTTP.Protocol != "HTTP/1.1" || rc.HTTP.SourceIP != "127.0.0.1":
				t.Errorf("http %+v", rc.HTTP)
			case rc.HTTP.UserAgent != ev.Headers["user-agent"] || rc.HTTP.UserAgent == "":
				t.Errorf("user agent %q, header %q", rc.HTTP.UserAgent, ev.Headers["user-agent"])
			case time.Since(time.UnixMilli(rc.TimeEpoch)) > time.Minute || rc.Time == "":
				t.Errorf("time %q epoch %d", rc.Time, rc.TimeEpoch)
			}
			if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time); err != nil {
				t.Errorf("time %q: %v", rc.Time, err)
			}
		})
	}
}

func TestServerResponses(t *testing.T) {
	tests := []struct {
		desc  string
		input func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
		want  struct {
			status  int
			body    string
			headers map[string][]string
		}
	}{
		{
			desc: "headers, multi-value headers and cookies",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{
					StatusCode:        201,
					Headers:           map[string]string{"Content-Type": "application/json", "Request-Id": "rid-1"},
					MultiValueHeaders: map[string][]string{"Vary": {"Origin", "Accept"}},
					Cookies:           []string{"session=abc; HttpOnly", "theme=dark"},
					Body:              `{"ok":true}`,
				}, nil
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{201, `{"ok":true}`, map[string][]string{
				"Content-Type": {"application/json"}, "Request-Id": {"rid-1"},
				"Vary": {"Origin", "Accept"}, "Set-Cookie": {"session=abc; HttpOnly", "theme=dark"},
			}},
		},
		{
			desc: "base64 body is decoded",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 200, IsBase64Encoded: true,
					Headers: map[string]string{"Content-Type": "image/png"},
					Body:    base64.StdEncoding.EncodeToString([]byte("\x89PNG"))}, nil
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{200, "\x89PNG", map[string][]string{"Content-Type": {"image/png"}}},
		},
		{
			desc: "no content type is not sniffed",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "<html><body>hi</body></html>"}, nil
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{200, "<html><body>hi</body></html>", map[string][]string{"Content-Type": nil}},
		},
		{
			desc: "a Go error is API Gateway's 502",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"X-Leak": "1"}}, errors.New("boom")
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{502, `{"message":"Internal Server Error"}`, map[string][]string{"Content-Type": {"application/json"}, "X-Leak": nil}},
		},
		{
			desc: "a panic is a 502 too",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				panic("bad")
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{502, `{"message":"Internal Server Error"}`, nil},
		},
		{
			desc: "a zero status code is a 502",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{Body: "x"}, nil
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{502, `{"message":"Internal Server Error"}`, nil},
		},
		{
			desc: "bad base64 is a 502",
			input: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{StatusCode: 200, IsBase64Encoded: true, Body: "!!"}, nil
			},
			want: struct {
				status  int
				body    string
				headers map[string][]string
			}{502, `{"message":"Internal Server Error"}`, nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			rec := &recorder{fn: "Fn", resp: tc.input}
			h, err := NewServer([]Route{{Method: "GET", Path: "/x", FunctionID: "Fn"}}, map[string]Handler{"Fn": rec.handle},
				ServerOptions{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
			if w.Code != tc.want.status || w.Body.String() != tc.want.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.want.status, tc.want.body)
			}
			for k, v := range tc.want.headers {
				if got := w.Result().Header.Values(k); !reflect.DeepEqual(got, v) && !(len(got) == 0 && len(v) == 0) {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestServerBodyLimit(t *testing.T) {
	rec := &recorder{fn: "Fn"}
	h, err := NewServer([]Route{{Method: "POST", Path: "/x", FunctionID: "Fn"}}, map[string]Handler{"Fn": rec.handle},
		ServerOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc  string
		input int
		want  int
	}{
		{"at the limit", MaxRequestBodyBytes, 200},
		{"over the limit", MaxRequestBodyBytes + 1, 413},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			w := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/x", strings.NewReader(strings.Repeat("a", tc.input)))
			req.Header.Set("Content-Type", "text/plain")
			h.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
		})
	}
}

func TestServerSetup(t *testing.T) {
	ok := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
	}
	tests := []struct {
		desc  string
		input []Route
		want  string // error substring; empty = no error
	}{
		{"fine", []Route{{"GET", "/a/{id}", "F"}, {"GET", "/a/me", "F"}, {"ANY", "$default", "F"}}, ""},
		{"no handler", []Route{{"GET", "/a", "Missing"}}, "no handler for function Missing"},
		{"duplicate", []Route{{"GET", "/a/{id}", "F"}, {"GET", "/a/{uuid}/", "F"}}, "duplicates"},
		{"greedy not last", []Route{{"GET", "/a/{p+}/b", "F"}}, "greedy"},
		{"no leading slash", []Route{{"GET", "a", "F"}}, "does not start with /"},
		{"empty parameter", []Route{{"GET", "/a/{}", "F"}}, "bad path parameter"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := NewServer(tc.input, map[string]Handler{"F": ok}, ServerOptions{})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("NewServer = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestServerPrecedence(t *testing.T) {
	routes := []Route{
		{"GET", "/api/users/{uuid}", "ByID"},
		{"GET", "/api/users/me", "Me"},
		{"ANY", "/api/users/me", "AnyMe"},
		{"GET", "/api/users", "List"},
		{"POST", "/api/{proxy+}", "Proxy"},
		{"ANY", "$default", "Default"},
	}
	handlers := map[string]Handler{}
	for _, r := range routes {
		id := r.FunctionID
		handlers[id] = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: id}, nil
		}
	}
	h, err := NewServer(routes, handlers, ServerOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc  string
		input string // "METHOD /path"
		want  string // function id
	}{
		{"literal beats parameter", "GET /api/users/me", "Me"},
		{"exact method beats ANY", "GET /api/users/me/", "Me"},
		{"ANY takes other methods", "DELETE /api/users/me", "AnyMe"},
		{"parameter", "GET /api/users/0b6f", "ByID"},
		{"list with trailing slash", "GET /api/users/", "List"},
		{"parameter beats greedy", "POST /api/users/me", "AnyMe"},
		{"greedy", "POST /api/users/0b6f", "Proxy"},
		{"wrong method falls to $default", "PATCH /api/users/0b6f", "Default"},
		{"unknown path falls to $default", "GET /elsewhere", "Default"},
		{"root falls to $default", "GET /", "Default"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			method, path, _ := strings.Cut(tc.input, " ")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
			if w.Code != 200 || w.Body.String() != tc.want {
				t.Fatalf("%s: %d %q, want %q", tc.input, w.Code, w.Body.String(), tc.want)
			}
		})
	}
}

// TestServerOwnAnswersCarrySecurityHeaders: the answers the server makes
// itself (no route, wrong method, too large, a failed function) are nosniff
// and no-store, as the service's own answers are.
func TestServerOwnAnswersCarrySecurityHeaders(t *testing.T) {
	rec := &recorder{fn: "Fn", resp: func(events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{}, errors.New("boom")
	}}
	h, err := NewServer([]Route{{Method: "POST", Path: "/x", FunctionID: "Fn"}}, map[string]Handler{"Fn": rec.handle},
		ServerOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, method, path string
		body               string
		want               int
	}{
		{"no route", "GET", "/nowhere", "", 404},
		{"another method", "GET", "/x", "", 405},
		{"a body over the limit", "POST", "/x", strings.Repeat("a", MaxRequestBodyBytes+1), 413},
		{"a failed function", "POST", "/x", "{}", 502},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if w.Code != tc.want || w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("got %d %v", w.Code, w.Header())
			}
		})
	}
}
