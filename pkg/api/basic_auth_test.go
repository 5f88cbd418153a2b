package api_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/testenv"
)

// TestBasicAuthOnEveryRoute checks the contract's Basic form on every route
// that takes credentials: the right password is accepted like a token, a
// wrong one is refused with 401 (and counts toward the lockout).
func TestBasicAuthOnEveryRoute(t *testing.T) {
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	anonymous := map[string]bool{
		"POST /api/auth/activate": true, "GET /api/auth/activate": true, "POST /api/auth/activation/resend": true,
		"POST /api/auth/login": true, "POST /api/auth/password_reset": true, "POST /api/auth/password_reset/confirm": true,
		// UbiOps' sign-up ignores the Authorization its client always sends.
		"POST /user": true, "POST /v2.1/user": true,
		// Waldur's login takes its credentials in the body; images are public.
		"POST /api-auth/password": true, "GET /api/images/{name}": true,
		// The OpenAPI description is public, as Waldur's is.
		"GET /api/schema": true,
	}
	for _, rt := range apiRoutes(tpl.Routes) {
		if anonymous[rt.Key()] {
			continue
		}
		t.Run("case="+rt.Key()+" refuses a wrong Basic password", func(t *testing.T) {
			u := quickUser(t, "basic")
			path := strings.ReplaceAll(rt.Path, "{uuid}", u.UUID)
			r := env.Do(t, rt.Method, path, map[string]any{}, "Authorization", testenv.Basic(u.Email, "not-"+u.Password))
			// A HEAD answer has no body: its status says it.
			if r.Status != http.StatusUnauthorized || (rt.Method != "HEAD" && r.Str("error") != "unauthorized_access") {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
	t.Run("case=the right Basic password reads like a token", func(t *testing.T) {
		u := quickUser(t, "basicok")
		for _, path := range []string{"/api/users/me", "/api/users/" + u.UUID, "/api/users", "/api/users/" + u.UUID + "/token"} {
			r := env.Do(t, "GET", path, nil, "Authorization", testenv.Basic(u.Email, u.Password))
			if r.Status != http.StatusOK {
				t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
			}
		}
	})
}
