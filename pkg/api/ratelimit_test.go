package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

// TestPerIPRateLimits runs a stack of its own with the per-IP limits on and
// small, and checks that each limited route refuses with 429 and
// Retry-After once its window is full, with the counts kept in DynamoDB.
func TestPerIPRateLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lim, err := testenv.Start(ctx, testenv.Options{Env: map[string]string{
		"IP_RATE_LIMIT":     "1",
		"RATE_LIMIT_SIGNUP": "4/1h",
		"RATE_LIMIT_LOGIN":  "6/5m",
		"RATE_LIMIT_RESEND": "2/1h",
		"RATE_LIMIT_RESET":  "2/1h",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	// A fixed clock: the windows must not roll over in the middle of a case.
	now := time.Now()
	lim.API.Users.Now = func() time.Time { return now }

	t.Run("case=the counts ride inside the budgets", func(t *testing.T) {
		e := testenv.Email("rlbudget")
		// The limits are counted before the password is hashed (a refused
		// request costs no hash): one request more than the budget.
		if got := lim.Requests.Measure(func() { lim.SignUp(t, e) }); got.Requests != 2 {
			t.Errorf("sign-up with the limit on: %d requests %v", got.Requests, got.ByOp)
		}
		lim.Activate(t, e)
		if got := lim.Requests.Measure(func() { lim.Login(t, e, testenv.DefaultPassword) }); got.Requests > 4 {
			t.Errorf("login with the limit on: %d requests %v", got.Requests, got.ByOp)
		}
		if got := lim.Requests.Measure(func() { lim.Login(t, e, testenv.DefaultPassword) }); got.Requests > 4 {
			t.Errorf("second login with the limit on: %d requests %v", got.Requests, got.ByOp)
		}
	})

	email := testenv.Email("rl")
	for _, tc := range []struct {
		desc  string
		limit int
		send  func() *testenv.Resp
	}{
		{"sign-up, duplicates included", 3, func() *testenv.Resp {
			return lim.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword})
		}},
		{"login, unknown logins included", 4, func() *testenv.Resp {
			return lim.Do(t, "POST", "/api/auth/login", map[string]any{"login": testenv.Email("nobody"), "password": "whatever-it-is"})
		}},
		{"activation resend", 2, func() *testenv.Resp {
			return lim.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email})
		}},
		{"password reset", 2, func() *testenv.Resp {
			return lim.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": email})
		}},
	} {
		t.Run("case="+tc.desc+" is limited per IP", func(t *testing.T) {
			for i := 1; i <= tc.limit; i++ {
				if r := tc.send(); r.Status == http.StatusTooManyRequests {
					t.Fatalf("request %d of %d refused: %s", i, tc.limit, r.Body)
				}
			}
			r := tc.send()
			if r.Status != http.StatusTooManyRequests || r.Str("error") != "too_many_requests" {
				t.Fatalf("request %d: %d %s", tc.limit+1, r.Status, r.Body)
			}
			if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
			}
		})
	}
	// Only one account was made, though three sign-ups were let through.
	if r := lim.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email}); r.Status != http.StatusTooManyRequests {
		t.Errorf("the limit did not hold: %d", r.Status)
	}
}
