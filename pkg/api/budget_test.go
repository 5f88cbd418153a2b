package api_test

import (
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

// TestRequestBudgets holds each operation to the contract's DynamoDB request
// budget, counted by an SDK middleware on the service's own client.
func TestRequestBudgets(t *testing.T) {
	email := testenv.Email("budget")
	var code, token, id string
	for _, tc := range []struct {
		desc   string
		budget int
		run    func(t *testing.T)
	}{
		{"sign-up", 1, func(t *testing.T) { id = env.SignUp(t, email) }},
		{"activate", 2, func(t *testing.T) {
			if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != 200 {
				t.Fatalf("activate: %d", r.Status)
			}
		}},
		// Login's one extra request: the password check is reserved against
		// the lockout (and, with the limits on, the IP's window in the same
		// write) before the hash (SECURITY.md).
		{"login issuing a token", 3 + 1, func(t *testing.T) { token = env.Login(t, email, testenv.DefaultPassword) }},
		{"login returning the current token", 3 + 1, func(t *testing.T) { env.Login(t, email, testenv.DefaultPassword) }},
		{"authenticated read", 2, func(t *testing.T) {
			if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+token); r.Status != 200 {
				t.Fatalf("me: %d", r.Status)
			}
		}},
		{"PATCH", 3, func(t *testing.T) {
			if r := env.Do(t, "PATCH", "/api/users/"+id, map[string]any{"job_title": "Tester"}, "Authorization", "Token "+token); r.Status != 200 {
				t.Fatalf("patch: %d", r.Status)
			}
		}},
		{"refresh", 2, func(t *testing.T) {
			r := env.Do(t, "POST", "/api/users/"+id+"/refresh_token", nil, "Authorization", "Token "+token)
			if r.Status != 200 {
				t.Fatalf("refresh: %d", r.Status)
			}
			token = r.Str("token")
		}},
	} {
		t.Run("case="+tc.desc+" stays within budget", func(t *testing.T) {
			got := env.Requests.Measure(func() { tc.run(t) })
			if got.Requests == 0 || got.Requests > tc.budget {
				t.Fatalf("%d DynamoDB requests %v, budget %d", got.Requests, got.ByOp, tc.budget)
			}
			t.Logf("%d requests %v, %.1f capacity units", got.Requests, got.ByOp, got.Capacity)
		})
		if tc.desc == "sign-up" {
			code = env.CodeFromMail(t, email, "Activate")
		}
	}
}
