package openapitest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

func exchange(method, target string, status int, body string, hdr ...string) testenv.Exchange {
	u, _ := url.Parse(target)
	h := http.Header{"Request-Id": {"r1"}, "X-Content-Type-Options": {"nosniff"}, "Cache-Control": {"no-store"}}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return testenv.Exchange{Method: method, URL: u, RequestHeader: http.Header{"Authorization": {"Token t"}},
		Status: status, ResponseHeader: h, ResponseBody: []byte(body)}
}

// TestCheckerReportsWhatIsNotDescribed: each undeclared thing is reported,
// and a described exchange is not.
func TestCheckerReportsWhatIsNotDescribed(t *testing.T) {
	ctx := context.Background()
	c, err := NewChecker(ctx, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	const me = `{"uuid":"6b0e8b5e-3c1f-4a57-9a52-4f7f0d1f4c6e","username":"ada","status":"ENABLED"}`
	for _, tc := range []struct {
		desc string
		ex   testenv.Exchange
		want string // "" for no problem
	}{
		{"described answer passes", exchange("GET", "/api/users/me", 200, me, "ETag", `"1"`), ""},
		{"trailing slash is the same route", exchange("GET", "/api/users/me/", 200, me, "ETag", `"1"`), ""},
		{"an undeclared field fails", exchange("GET", "/api/users/me", 200, `{"uuid":"6b0e8b5e-3c1f-4a57-9a52-4f7f0d1f4c6e","password_hash":"x"}`, "ETag", `"1"`), "password_hash"},
		{"a field of the wrong type fails", exchange("GET", "/api/users/me", 200, `{"is_staff":"yes"}`, "ETag", `"1"`), "is_staff"},
		{"an undeclared status fails", exchange("GET", "/api/users/me", 418, `{"error":"teapot","error_description":"x"}`), "status not declared"},
		{"an undeclared header fails", exchange("GET", "/api/users/me", 200, me, "ETag", `"1"`, "X-Debug", "1"), "header X-Debug not declared"},
		{"a missing required header fails", exchange("GET", "/api/users/me", 200, me), "ETag"},
		{"an undeclared route fails", exchange("GET", "/api/secret", 200, `{}`), "no such operation"},
		{"the router's own 404 is no route", exchange("GET", "/api/secret", 404, `{"error":"not_found","error_description":"No route."}`), ""},
		{"an error outside the envelope fails", exchange("GET", "/api/users/me", 401, `{"message":"no"}`, "WWW-Authenticate", "Token"), "error_description"},
		{"a 429 needs Retry-After", exchange("GET", "/api/users/me", 429, `{"error":"too_many_requests","error_description":"x"}`), "Retry-After"},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			got := strings.Join(c.Check(ctx, []testenv.Exchange{tc.ex}), "\n")
			if tc.want == "" && got != "" {
				t.Errorf("reported %s", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("want a problem naming %q, got %q", tc.want, got)
			}
		})
	}
}
