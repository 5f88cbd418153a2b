package api_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/testenv"
)

// checkSecurityHeaders holds an answer to the contract: nosniff on every
// answer, and no-store, which every answer of this service carries since
// most carry a token, a code or personal data (httpapi.Wrap).
func checkSecurityHeaders(t *testing.T, desc string, r *testenv.Resp) {
	t.Helper()
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: %d with X-Content-Type-Options %q", desc, r.Status, got)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: %d with Cache-Control %q", desc, r.Status, got)
	}
}

// TestResponseHeadersOnEveryRoute calls every route of template.yaml the
// ways that fail (TestAuthorizationMatrix checks the same headers on the
// answers of every caller, successes included), the answers that carry a
// token, and the local router's own answers.
func TestResponseHeadersOnEveryRoute(t *testing.T) {
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	staff := env.NewStaff(t, "headers-staff", false)
	nobody := uuid.NewString()
	for _, rt := range tpl.Routes {
		path := strings.ReplaceAll(rt.Path, "{uuid}", nobody)
		checkSecurityHeaders(t, rt.Key()+" anonymous", env.Do(t, rt.Method, path, nil))
		checkSecurityHeaders(t, rt.Key()+" anonymous, malformed JSON, trailing slash", env.Do(t, rt.Method, path+"/", "{"))
		checkSecurityHeaders(t, rt.Key()+" a bad token", env.Do(t, rt.Method, path, nil, "Authorization", "Token nope"))
		if strings.Contains(rt.Path, "{uuid}") {
			checkSecurityHeaders(t, rt.Key()+" staff, on nobody", env.Do(t, rt.Method, path, map[string]any{}, auth(staff)...))
		}
	}

	t.Run("case=every answer that carries a token or a code is no-store", func(t *testing.T) {
		u := quickUser(t, "headers")
		login := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password})
		me := env.Do(t, "GET", "/api/users/me", nil, auth(u)...)
		tok := env.Do(t, "GET", "/api/users/"+u.UUID+"/token", nil, auth(u)...)
		staffTok := env.Do(t, "GET", "/api/users/"+u.UUID+"/token", nil, auth(staff)...)
		refresh := env.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", map[string]any{}, auth(staff)...)
		email := testenv.Email("headers-admin")
		create := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "username": strings.ToLower(email)}, auth(staff)...)
		for _, c := range []struct {
			desc   string
			r      *testenv.Resp
			status int
		}{
			{"POST /api/auth/login", login, 200}, {"GET /api/users/me", me, 200},
			{"GET /api/users/{uuid}/token by self", tok, 200}, {"GET /api/users/{uuid}/token by staff", staffTok, 200},
			{"POST /api/users/{uuid}/refresh_token", refresh, 200}, {"POST /api/users by staff", create, 201},
		} {
			if c.r.Status != c.status {
				t.Errorf("%s: got %d %s", c.desc, c.r.Status, c.r.Body)
			}
			checkSecurityHeaders(t, c.desc, c.r)
		}
		if login.Str("token") == "" || me.Str("token") == "" || tok.Str("token") == "" || refresh.Str("token") == "" {
			t.Errorf("a token answer without its token")
		}
	})

	t.Run("case=the local router's own answers carry them too", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			status       int
		}{
			{"GET", "/nowhere", http.StatusNotFound},
			{"GET", "/api/users/" + nobody + "/token/extra", http.StatusNotFound},
			{"PATCH", "/api/auth/login", http.StatusMethodNotAllowed},
		} {
			r := env.Do(t, c.method, c.path, nil, auth(staff)...)
			if r.Status != c.status {
				t.Errorf("%s %s: got %d %s", c.method, c.path, r.Status, r.Body)
			}
			checkSecurityHeaders(t, c.method+" "+c.path, r)
		}
	})
}
