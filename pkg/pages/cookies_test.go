package pages_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/testenv"
)

// On https (every deployed stack) the cookies are __Host- prefixed and
// Secure: the pages' handler, on this suite's table, behind a public URL
// that is https.
func TestCookiesOnHTTPSAreSecureAndHostOnly(t *testing.T) {
	ctx := context.Background()
	email := testenv.Email("https")
	env.SignUp(t, email)
	env.Activate(t, email)

	cfg := env.Config
	cfg.PublicURL = "https://accounts.example.com"
	a, err := app.New(ctx, cfg, app.Options{LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	h := app.Pages(a).Handler()
	call := func(method, path, body string, cookies []string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path, Cookies: cookies, Body: body,
			Headers: map[string]string{"content-type": "application/x-www-form-urlencoded", "accept-language": "en"}}
		ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.SourceIP = method, path, "192.0.2.7"
		res, err := h(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	form := call("GET", "/account/login", "", nil)
	if len(form.Cookies) != 1 || !regexp.MustCompile(`^__Host-csrf=[A-Za-z0-9_-]+; Path=/; HttpOnly; SameSite=Lax; Secure$`).MatchString(form.Cookies[0]) {
		t.Fatalf("the nonce cookie on https: %q", form.Cookies)
	}
	nonce, _, _ := strings.Cut(form.Cookies[0], ";")
	token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(form.Body)
	if token == nil {
		t.Fatalf("no form token: %s", form.Body)
	}
	body := url.Values{"csrf": {token[1]}, "login": {email}, "password": {testenv.DefaultPassword}}.Encode()
	res := call("POST", "/account/login", body, []string{nonce})
	if res.StatusCode != http.StatusSeeOther || res.Headers["Location"] != "/account/me" {
		t.Fatalf("login: %d %v %s", res.StatusCode, res.Headers, res.Body)
	}
	if len(res.Cookies) != 1 || !regexp.MustCompile(`^__Host-session=[A-Za-z0-9_-]+; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=[0-9]+$`).MatchString(res.Cookies[0]) {
		t.Fatalf("the session cookie on https: %q", res.Cookies)
	}
	session, _, _ := strings.Cut(res.Cookies[0], ";")
	me := call("GET", "/account/me", "", []string{nonce, session})
	if me.StatusCode != http.StatusOK || !strings.Contains(me.Body, email) {
		t.Fatalf("my account with the https cookies: %d %s", me.StatusCode, me.Body)
	}
	// A cookie without the prefix (planted over plain http, or by a sibling
	// domain) is not the session.
	plain := call("GET", "/account/me", "", []string{nonce, strings.TrimPrefix(session, "__Host-")})
	if plain.StatusCode != http.StatusSeeOther || !strings.Contains(plain.Headers["Location"], "login") {
		t.Fatalf("an unprefixed session cookie was accepted: %d %v", plain.StatusCode, plain.Headers)
	}
}
