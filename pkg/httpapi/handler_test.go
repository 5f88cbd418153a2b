package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/example/accounts/pkg/httpapi"
)

// TestWrapAnswersEveryFailureWithTheEnvelope holds Wrap to its promise: an
// endpoint that fails in any way gets the contract's envelope, never a Go
// error or a crash, and the internal cause reaches the log only.
func TestWrapAnswersEveryFailureWithTheEnvelope(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		fn     httpapi.Func
		status int
		code   string
	}{
		{"a plain error is a 500", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return nil, errors.New("dial tcp 10.0.0.1:443: secret internal detail")
		}, http.StatusInternalServerError, "internal_error"},
		{"a wrapped *Error keeps its status", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return nil, errors.Join(errors.New("context"), httpapi.NotFound(""))
		}, http.StatusNotFound, "not_found"},
		{"a panic is a 500", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			panic("secret internal detail")
		}, http.StatusInternalServerError, "internal_error"},
		{"a 503 carries Retry-After", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return nil, httpapi.Unavailable(errors.New("secret internal detail"))
		}, http.StatusServiceUnavailable, "service_unavailable"},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			var logs bytes.Buffer
			h := httpapi.Wrap("Test", slog.New(slog.NewJSONHandler(&logs, nil)), tc.fn)
			out, err := h(context.Background(), events.APIGatewayV2HTTPRequest{})
			if err != nil {
				t.Fatalf("Go error %v", err)
			}
			var body map[string]any
			if json.Unmarshal([]byte(out.Body), &body) != nil || out.StatusCode != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %s", out.StatusCode, out.Body)
			}
			if strings.Contains(out.Body, "secret internal detail") {
				t.Fatalf("the body leaks the cause: %s", out.Body)
			}
			if tc.status == http.StatusServiceUnavailable && out.Headers["Retry-After"] == "" {
				t.Fatal("no Retry-After")
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q", logs.String())
			}
			if line["error"] != tc.code || line["status"] != float64(tc.status) {
				t.Fatalf("log line %v", line)
			}
			if tc.status >= 500 && !strings.Contains(line["cause"].(string), "secret internal detail") {
				t.Fatalf("the log lacks the cause: %v", line)
			}
		})
	}
}

// TestWrapSetsSecurityHeaders: every answer Wrap makes, success or failure,
// is nosniff and, unless the endpoint says otherwise, no-store.
func TestWrapSetsSecurityHeaders(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		fn    httpapi.Func
		cache string
	}{
		{"a 200 with a token", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return httpapi.JSON(http.StatusOK, map[string]string{"token": "t"}), nil
		}, "no-store"},
		{"a 204", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return httpapi.NoContent(), nil
		}, "no-store"},
		{"a 400", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return nil, httpapi.Invalid(map[string][]string{"image": {"bad"}})
		}, "no-store"},
		{"a 401", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return nil, httpapi.Unauthorized("")
		}, "no-store"},
		{"a plain error's 500", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return nil, errors.New("boom")
		}, "no-store"},
		{"a panic's 500", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			panic("boom")
		}, "no-store"},
		{"a body that does not marshal", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return httpapi.JSON(http.StatusOK, map[string]any{"f": func() {}}), nil
		}, "no-store"},
		{"an endpoint that sets its own headers keeps nosniff", func(context.Context, *httpapi.Request) (*httpapi.Response, error) {
			return httpapi.JSON(http.StatusOK, map[string]string{}).WithHeader("X-Content-Type-Options", "sniff").WithHeader("Cache-Control", "max-age=60"), nil
		}, "max-age=60"},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			h := httpapi.Wrap("Test", slog.New(slog.DiscardHandler), tc.fn)
			out, _ := h(context.Background(), events.APIGatewayV2HTTPRequest{})
			if got := out.Headers["X-Content-Type-Options"]; got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q on %d", got, out.StatusCode)
			}
			if got := out.Headers["Cache-Control"]; got != tc.cache {
				t.Errorf("Cache-Control %q on %d, want %q", got, out.StatusCode, tc.cache)
			}
		})
	}
}
