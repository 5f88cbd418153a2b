package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

// TestLoginLockout checks Cognito's rule: after 5 consecutive failures the
// account refuses even the right password with 429 and Retry-After, for 1 s
// doubling per further failure up to 15 minutes; a success afterwards resets.
func TestLoginLockout(t *testing.T) {
	u := env.NewUser(t, "lockout")
	clock := time.Now()
	env.API.Users.Now = func() time.Time { return clock }
	defer func() { env.API.Users.Now = time.Now }()

	login := func(pw string) *testenv.Resp {
		return env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": pw})
	}
	for i := 1; i <= 5; i++ {
		if r := login("wrong-password-" + strconv.Itoa(i)); r.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := login(u.Password)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" || r.Str("error") != "too_many_requests" {
		t.Fatalf("right password during lockout: %d %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(u.Email, u.Password)); r.Status != http.StatusTooManyRequests {
		t.Errorf("Basic auth during lockout: %d", r.Status)
	}
	clock = clock.Add(2 * time.Second)
	if r := login("wrong-again"); r.Status != http.StatusUnauthorized {
		t.Fatalf("6th failure: %d", r.Status)
	}
	if r := login(u.Password); r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("after the 6th failure the wait should double to 2 s: %d %q", r.Status, r.Header.Get("Retry-After"))
	}
	// Many more failures: the wait is capped at 15 minutes.
	for i := 0; i < 14; i++ {
		clock = clock.Add(16 * time.Minute)
		login("wrong-many")
	}
	if r := login(u.Password); r.Header.Get("Retry-After") != "900" {
		t.Fatalf("cap: Retry-After %q, want 900", r.Header.Get("Retry-After"))
	}
	clock = clock.Add(16 * time.Minute)
	if r := login(u.Password); r.Status != http.StatusOK {
		t.Fatalf("success after the lockout: %d %s", r.Status, r.Body)
	}
	// The success reset the count: one failure does not lock again.
	login("wrong-once")
	if r := login(u.Password); r.Status != http.StatusOK {
		t.Fatalf("after reset: %d %s", r.Status, r.Body)
	}
}

// TestBasicAuthCountsTowardLockout checks that Basic credentials count.
func TestBasicAuthCountsTowardLockout(t *testing.T) {
	u := env.NewUser(t, "basiclock")
	for i := 0; i < 5; i++ {
		if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(u.Email, "nope-nope-nope")); r.Status != http.StatusUnauthorized {
			t.Fatalf("Basic failure %d: %d", i, r.Status)
		}
	}
	if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("login after 5 Basic failures: %d %s", r.Status, r.Body)
	}
}

// TestLoginNoEnumeration checks that an unknown login and a wrong password
// get the same status and body.
func TestLoginNoEnumeration(t *testing.T) {
	u := env.NewUser(t, "enum")
	wrong := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": "not-the-password"})
	unknown := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": testenv.Email("ghost"), "password": "not-the-password"})
	if wrong.Status != http.StatusUnauthorized || wrong.Status != unknown.Status || string(wrong.Body) != string(unknown.Body) {
		t.Fatalf("answers differ: %d %s / %d %s", wrong.Status, wrong.Body, unknown.Status, unknown.Body)
	}
}
