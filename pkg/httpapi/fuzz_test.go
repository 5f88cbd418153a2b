package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/example/accounts/pkg/httpapi"
)

// profile mirrors users.ProfileInput: optional strings, booleans, a number
// and a raw JSON object, so the decoder meets every kind it meets in service.
type profile struct {
	Username             *string         `json:"username"`
	Email                *string         `json:"email"`
	Password             *string         `json:"password"`
	FirstName            *string         `json:"first_name"`
	Name                 *string         `json:"name"`
	NotificationsEnabled *bool           `json:"notifications_enabled"`
	TokenLifetime        *int            `json:"token_lifetime"`
	CustomData           json.RawMessage `json:"custom_data"`
	IsStaff              *bool           `json:"is_staff"`
}

// readOnly stands for users.ReadOnlyFields: sent back, ignored.
var readOnly = map[string]bool{"uuid": true, "url": true, "status": true, "token": true}

// checkDecodeError holds an error from decoding to the contract: nil, or an
// *httpapi.Error that is a 400 or a 413 with a sentence.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	e, ok := err.(*httpapi.Error)
	if !ok {
		t.Fatalf("error %T %v is not an *httpapi.Error", err, err)
	}
	if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%s), want 400 or 413", e.Status, e.Message)
	}
	if e.Message == "" || e.Code == "" {
		t.Fatalf("error without code or sentence: %#v", e)
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `[]`, `"x"`, `1`, ``, ` `, `{`, `{"email":`,
		`{"email":"a@example.com","password":"violet-Tractor-93"}`,
		`{"uuid":"x","status":"ENABLED","first_name":"Ada"}`,
		`{"favourite_colour":"blue","EMAIL":"a"}`,
		`{"token_lifetime":1e400}`, `{"token_lifetime":"3600"}`, `{"token_lifetime":-1}`,
		`{"custom_data":{"a":[1,2,{"b":null}]}}`, `{"custom_data":[1]}`,
		`{"is_staff":"yes"}`, `{"email":null}`, `{"email":"a","email":"b"}`,
		"{\"first_name\":\"\xff\xfe\"}", `{"first_name":"\ud800"}`,
		"{\n  \"email\": \"a\",\n  \"password\" 1\n}",
		`{"a":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var dst profile
		err := httpapi.DecodeObject(body, &dst, readOnly)
		checkDecodeError(t, err)
		if err == nil {
			// Accepted means a JSON object whose fields are all known or ignored.
			var raw map[string]json.RawMessage
			if json.Unmarshal(body, &raw) != nil || raw == nil {
				t.Fatalf("accepted a body that is not a JSON object: %q", body)
			}
			for k := range raw {
				if !readOnly[k] && !knownField(k) {
					t.Fatalf("accepted unknown field %q", k)
				}
			}
		}
		if e, ok := err.(*httpapi.Error); ok && strings.HasPrefix(e.Message, "Unknown field") && len(e.Fields) == 0 {
			t.Fatalf("unknown-field error names no field: %#v", e)
		}
	})
}

func knownField(k string) bool {
	switch k {
	case "username", "email", "password", "first_name", "name", "notifications_enabled", "token_lifetime", "custom_data", "is_staff":
		return true
	}
	return false
}

// echo is a decoding endpoint, as SignUp and UpdateUser are.
func echo(_ context.Context, r *httpapi.Request) (*httpapi.Response, error) {
	var in profile
	if err := r.DecodeJSON(&in, readOnly); err != nil {
		return nil, err
	}
	return httpapi.JSON(http.StatusOK, in), nil
}

func FuzzRequestBody(f *testing.F) {
	// pad > 0 puts the body after about 64 KiB of JSON whitespace, so the
	// size limit is fuzzed around its edge without the engine handling
	// 64 KiB inputs (minimising those stalls it).
	type seed struct {
		method, ctype, body, query string
		b64                        bool
		pad                        uint16
	}
	for _, s := range []seed{
		{"POST", "application/json", `{"email":"a@example.com"}`, "", false, 0},
		{"POST", "application/json; charset=utf-8", `{"email":"a@example.com"}`, "field=email", false, 0},
		{"PUT", "application/merge-patch+json", `{"first_name":"Ada","uuid":"x"}`, "", false, 0},
		{"POST", "", `{"email":"a"}`, "", false, 0},
		{"POST", "text/plain", `email=a`, "", false, 0},
		{"POST", "application/x-www-form-urlencoded", `email=a`, "a=%zz", false, 0},
		{"POST", "application/json", "eyJlbWFpbCI6ImFAZXhhbXBsZS5jb20ifQ==", "", true, 0},
		{"POST", "application/json", "not base64!", "", true, 0},
		{"POST", "application/json", "eyJlbWFpbCI6ImF9", "", true, 0},
		{"POST", "application/json", `{"email":`, "", false, 0},
		{"POST", "application/json", `   `, "", false, 0},
		{"POST", "application/json;;", `{}`, "", false, 0},
		{"POST", "application/json", `{"email":"a@example.com"}`, "", false, 1000},
		{"POST", "application/json", `{}`, "", false, 1023},
		{"POST", "application/json", `{}`, "", false, 1024},
		{"POST", "application/json", "e30=", "", true, 500},
	} {
		f.Add(s.method, s.ctype, s.body, s.query, s.b64, s.pad)
	}
	var logs bytes.Buffer
	h := httpapi.Wrap("Fuzz", slog.New(slog.NewJSONHandler(&logs, nil)), echo)
	f.Fuzz(func(t *testing.T, method, ctype, body, query string, b64 bool, pad uint16) {
		logs.Reset()
		if pad > 0 {
			body = strings.Repeat(" ", httpapi.MaxBodyBytes-1024+int(pad%2048)) + body
		}
		ev := events.APIGatewayV2HTTPRequest{
			RawPath: "/api/users", RawQueryString: query, Body: body, IsBase64Encoded: b64,
			Headers: map[string]string{"content-type": ctype},
		}
		ev.RequestContext.HTTP.Method = method
		out, err := h(context.Background(), ev)
		if err != nil {
			t.Fatalf("Wrap returned a Go error: %v", err)
		}
		if out.StatusCode >= 500 {
			t.Fatalf("status %d: %s", out.StatusCode, out.Body)
		}
		if !b64 && len(body) > httpapi.MaxBodyBytes && out.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("a %d-byte body got %d, want 413", len(body), out.StatusCode)
		}
		switch out.StatusCode {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("unexpected status %d: %s", out.StatusCode, out.Body)
		}
		if out.Headers["Request-Id"] == "" || out.Headers["Content-Type"] != "application/json" {
			t.Fatalf("headers %v", out.Headers)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out.Body), &m); err != nil {
			t.Fatalf("body is not JSON: %q", out.Body)
		}
		if out.StatusCode != http.StatusOK {
			if s, _ := m["error"].(string); s == "" {
				t.Fatalf("no error code in %s", out.Body)
			}
			if s, _ := m["error_description"].(string); s == "" {
				t.Fatalf("no error_description in %s", out.Body)
			}
		}
		if out.StatusCode == http.StatusBadRequest && m["payload"] != m["error_description"] {
			t.Fatalf("payload does not repeat the sentence: %s", out.Body)
		}
		var line map[string]any
		if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
			t.Fatalf("log is not one JSON line: %q", logs.String())
		}
		if line["request_id"] != out.Headers["Request-Id"] || line["status"] != float64(out.StatusCode) || line["route"] != "Fuzz" {
			t.Fatalf("log line %v does not match the answer", line)
		}
	})
}
