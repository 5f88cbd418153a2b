package api_test

import (
	"encoding/base64"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/testenv"
)

// The callers of the authorization matrix. "self" is the user the route is
// about (the {uuid}, or the caller on routes without one), "other" a plain
// user with no tie to them.
const (
	anon    = "anon"
	self    = "self"
	other   = "other"
	support = "support"
	staff   = "staff"
)

// roleOrder runs refusals before successes, so one target serves every
// caller of a route that changes it (self's refresh, then staff's).
var roleOrder = []string{anon, other, support, self, staff}

// authzCase is one route's policy: the status each caller gets, and how to
// call it about a target.
type authzCase struct {
	want map[string]int
	// prepare readies the target and returns the request for each role;
	// path's {uuid} is the target's.
	prepare func(t *testing.T, target testenv.User) func(role string) (path string, body any)
	// freshTarget: each role acts on a new target (the call deletes it).
	// freshCallers: each role is a new account (the call ends the caller's
	// token or account).
	freshTarget, freshCallers bool
}

func everyone(anonStatus, status int) map[string]int {
	return map[string]int{anon: anonStatus, self: status, other: status, support: status, staff: status}
}

// onUser is the policy of a {uuid} route: self and staff succeed with ok,
// support gets supportStatus, another user 404 (the user's existence is
// not theirs to know), anonymous 401.
func onUser(ok, supportStatus int) map[string]int {
	return map[string]int{anon: http.StatusUnauthorized, self: ok, other: http.StatusNotFound, support: supportStatus, staff: ok}
}

// fixed is a request that is the same for every role.
func fixed(path string, body func(target testenv.User) any) func(*testing.T, testenv.User) func(string) (string, any) {
	return func(_ *testing.T, target testenv.User) func(string) (string, any) {
		return func(string) (string, any) {
			if body == nil {
				return path, nil
			}
			return path, body(target)
		}
	}
}

// wrongCodeFor is a well-formed code, bound to the target, that was never issued.
func wrongCodeFor(target testenv.User) string {
	id := uuid.MustParse(target.UUID)
	return base64.RawURLEncoding.EncodeToString(append(id[:], make([]byte, 20)...))
}

func newAccountBody(testenv.User) any {
	email := testenv.Email("authz-new")
	return map[string]any{"email": email, "username": strings.ToLower(strings.Split(email, "@")[0]), "password": testenv.DefaultPassword}
}

// authzPolicy has an entry for every route key of template.yaml.
var authzPolicy = map[string]authzCase{
	// Sign-up is anonymous; with credentials it is the admin create.
	"POST /api/users": {want: map[string]int{anon: 201, self: 403, other: 403, support: 403, staff: 201}, prepare: fixed("/api/users", newAccountBody)},
	// Always the self sign-up, whatever Authorization UbiOps' client sends.
	"POST /user":      {want: everyone(201, 201), prepare: fixed("/user", newAccountBody)},
	"POST /v2.1/user": {want: everyone(201, 201), prepare: fixed("/v2.1/user", newAccountBody)},
	// Public routes: credentials change nothing.
	"POST /api/auth/activate": {want: everyone(400, 400), prepare: fixed("/api/auth/activate", func(u testenv.User) any {
		return map[string]any{"code": wrongCodeFor(u), "password": testenv.DefaultPassword}
	})},
	"GET /api/auth/activate": {want: everyone(200, 200), prepare: func(_ *testing.T, u testenv.User) func(string) (string, any) {
		return func(string) (string, any) { return "/api/auth/activate?code=" + wrongCodeFor(u), nil }
	}},
	"POST /api/auth/activation/resend": {want: everyone(202, 202), prepare: fixed("/api/auth/activation/resend", func(u testenv.User) any { return map[string]any{"email": u.Email} })},
	"POST /api/auth/login":             {want: everyone(200, 200), prepare: fixed("/api/auth/login", func(u testenv.User) any { return map[string]any{"login": u.Email, "password": u.Password} })},
	"POST /api-auth/password":          {want: everyone(200, 200), prepare: fixed("/api-auth/password/", func(u testenv.User) any { return map[string]any{"username": u.Email, "password": u.Password} })},
	"POST /api/auth/password_reset":    {want: everyone(202, 202), prepare: fixed("/api/auth/password_reset", func(u testenv.User) any { return map[string]any{"email": u.Email} })},
	"POST /api/auth/password_reset/confirm": {want: everyone(400, 400), prepare: fixed("/api/auth/password_reset/confirm", func(u testenv.User) any {
		return map[string]any{"code": wrongCodeFor(u), "new_password": "never-Issued-3318"}
	})},
	// The OpenAPI description is public, as Waldur's is.
	"GET /api/schema": {want: everyone(200, 200), prepare: fixed("/api/schema", nil)},
	// The caller's own account.
	"POST /api/auth/logout": {want: everyone(401, 204), prepare: fixed("/api/auth/logout", nil), freshCallers: true},
	"POST /api-auth/logout": {want: everyone(401, 204), prepare: fixed("/api-auth/logout/", nil), freshCallers: true},
	"GET /api/users/me":     {want: everyone(401, 200), prepare: fixed("/api/users/me", nil)},
	"DELETE /api/users":     {want: everyone(401, 200), prepare: fixed("/api/users", nil), freshCallers: true},
	"DELETE /user":          {want: everyone(401, 204), prepare: fixed("/user", nil), freshCallers: true},
	"DELETE /v2.1/user":     {want: everyone(401, 204), prepare: fixed("/v2.1/user", nil), freshCallers: true},
	"HEAD /api/users":       {want: everyone(401, 200), prepare: fixed("/api/users", nil)},
	"GET /api/users":        {want: everyone(401, 200), prepare: fixed("/api/users", nil)},
	// Only the user the code was sent for may confirm it, staff included.
	"POST /api/users/confirm_email": {want: map[string]int{anon: 401, self: 200, other: 400, support: 400, staff: 400},
		prepare: func(t *testing.T, u testenv.User) func(string) (string, any) {
			newEmail := testenv.Email("authz-confirm")
			if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...); r.Status != 200 {
				t.Fatalf("change_email: %d %s", r.Status, r.Body)
			}
			code := env.CodeFromMail(t, newEmail, "Confirm your new email")
			return func(string) (string, any) { return "/api/users/confirm_email", map[string]any{"code": code} }
		}},
	// A user's resource.
	"GET /api/users/{uuid}": {want: onUser(200, 200), prepare: fixed("/api/users/{uuid}", nil)},
	"PUT /api/users/{uuid}": {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}", func(u testenv.User) any {
		return map[string]any{"username": strings.ToLower(u.Email), "first_name": "Authz"}
	})},
	"PATCH /api/users/{uuid}":                    {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}", func(testenv.User) any { return map[string]any{"first_name": "Authz"} })},
	"DELETE /api/users/{uuid}":                   {want: onUser(204, 403), prepare: fixed("/api/users/{uuid}", nil), freshTarget: true},
	"GET /api/users/{uuid}/token":                {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}/token", nil)},
	"POST /api/users/{uuid}/refresh_token":       {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}/refresh_token", nil)},
	"POST /api/users/{uuid}/change_email":        {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}/change_email", func(testenv.User) any { return map[string]any{"email": testenv.Email("authz-ce")} })},
	"POST /api/users/{uuid}/cancel_change_email": {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}/cancel_change_email", nil)},
	"POST /api/users/{uuid}/change_password": {want: onUser(200, 403), prepare: fixed("/api/users/{uuid}/change_password", func(u testenv.User) any {
		return map[string]any{"current_password": u.Password, "new_password": "authz-Chosen-" + uuid.NewString()[:8]}
	})},
	// API keys: self, staff and support read; self and staff change.
	"GET /api/users/{uuid}/apikeys":  {want: onUser(200, 200), prepare: fixed("/api/users/{uuid}/apikeys", nil)},
	"POST /api/users/{uuid}/apikeys": {want: onUser(201, 403), prepare: fixed("/api/users/{uuid}/apikeys", func(testenv.User) any { return map[string]any{"name": "authz"} })},
	"DELETE /api/users/{uuid}/apikeys/{id}": {want: onUser(204, 403), freshTarget: true,
		prepare: func(t *testing.T, u testenv.User) func(string) (string, any) {
			id := newKey(t, u, "authz")["id"].(string)
			return func(string) (string, any) { return "/api/users/{uuid}/apikeys/" + id, nil }
		}},
	// Staff only; the fake identity source knows the target, so staff get
	// its answer (200) and nobody else reaches it.
	"POST /api/users/import": {want: map[string]int{anon: 401, self: 403, other: 403, support: 403, staff: 200},
		prepare: fixed("/api/users/import", func(testenv.User) any { return []map[string]any{{"email": testenv.Email("authz-import")}} })},
	// Public: an image's name is its only key; an unknown one is 404 to all.
	"GET /api/images/{name}": {want: everyone(404, 404), prepare: fixed("/api/images/0123456789abcdef0123456789abcdef.png", nil)},
	// Staff only: support read and change nothing.
	"POST /api/users/{uuid}/resend_mail": {want: map[string]int{anon: 401, self: 403, other: 404, support: 403, staff: 202},
		prepare: fixed("/api/users/{uuid}/resend_mail", nil)},
	"POST /api/users/{uuid}/pull_remote_user": {want: map[string]int{anon: 401, self: 403, other: 404, support: 403, staff: 200},
		prepare: func(t *testing.T, u testenv.User) func(string) (string, any) {
			idp.Answer(strings.ToLower(u.Email), idpAnswer{body: withSub(graceClaims, "")})
			t.Cleanup(func() {
				if n := idp.Calls(strings.ToLower(u.Email)); n != 1 {
					t.Errorf("the identity source was asked %d times, want once (by staff)", n)
				}
			})
			return func(string) (string, any) { return "/api/users/{uuid}/pull_remote_user", nil }
		}},
}

func TestAuthorizationMatrix(t *testing.T) {
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inTemplate := map[string]bool{}
	for _, r := range apiRoutes(tpl.Routes) {
		inTemplate[r.Key()] = true
		if _, ok := authzPolicy[r.Key()]; !ok {
			t.Errorf("route %s (%s) has no entry in authzPolicy: say who may call it", r.Key(), r.FunctionID)
		}
	}
	for key := range authzPolicy {
		if !inTemplate[key] {
			t.Errorf("authzPolicy has %s, which template.yaml does not route", key)
		}
	}

	shared := map[string]testenv.User{
		other:   quickUser(t, "authz-other"),
		support: env.NewStaff(t, "authz-support", true),
		staff:   env.NewStaff(t, "authz-staff", false),
	}
	newCaller := func(t *testing.T, role string) testenv.User {
		switch role {
		case support:
			return env.NewStaff(t, "authz-support", true)
		case staff:
			return env.NewStaff(t, "authz-staff", false)
		}
		return quickUser(t, "authz-"+role)
	}
	for _, rt := range apiRoutes(tpl.Routes) {
		tc, ok := authzPolicy[rt.Key()]
		if !ok {
			continue
		}
		t.Run("route="+rt.Key(), func(t *testing.T) {
			target := quickUser(t, "authz-self")
			request := tc.prepare(t, target)
			for _, role := range roleOrder {
				want, ok := tc.want[role]
				if !ok {
					t.Errorf("no policy for %s", role)
					continue
				}
				tgt := target
				if tc.freshTarget || (tc.freshCallers && role == self) {
					tgt = quickUser(t, "authz-self")
					request = tc.prepare(t, tgt)
				}
				var hdr []string
				switch {
				case role == self:
					hdr = auth(tgt)
				case role != anon && tc.freshCallers:
					hdr = auth(newCaller(t, role))
				case role != anon:
					hdr = auth(shared[role])
				}
				path, body := request(role)
				path = strings.ReplaceAll(path, "{uuid}", tgt.UUID)
				if body == nil && rt.Method != "GET" && rt.Method != "DELETE" && rt.Method != "HEAD" {
					body = map[string]any{}
				}
				r := env.Do(t, rt.Method, path, body, hdr...)
				if r.Status != want {
					t.Errorf("%s: got %d %s, want %d", role, r.Status, r.Body, want)
				}
				checkSecurityHeaders(t, role, r)
				// A HEAD answer has no body to carry the envelope.
				if r.Status >= 400 && rt.Method != "HEAD" && (r.Str("error") == "" || r.Str("error_description") == "") {
					t.Errorf("%s: not the error envelope: %s", role, r.Body)
				}
				if r.Status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") != "Token" {
					t.Errorf("%s: a 401 without WWW-Authenticate: Token", role)
				}
			}
		})
	}
	// The shared callers' tokens still work: no route of another account
	// ended them.
	for role, u := range shared {
		if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != http.StatusOK {
			t.Errorf("%s's token stopped working: %d", role, r.Status)
		}
	}
}
