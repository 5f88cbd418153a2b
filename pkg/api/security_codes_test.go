package api_test

import (
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// codeRefused is the one sentence for a code that cannot be used.
const codeRefused = "This code is invalid, already used or expired."

// wrongCode returns code with its random part changed (the n-th variant):
// a code for the same user, so a guess that counts against that user's code.
func wrongCode(t *testing.T, code string, n int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(code)
	if err != nil || len(b) != 36 {
		t.Fatalf("not a code: %q", code)
	}
	b[16+n%20] ^= byte(1 + n/20)
	w := base64.RawURLEncoding.EncodeToString(b)
	if p, err := secret.ParseCode(w); err != nil || p.User != mustParseCode(t, code).User {
		t.Fatalf("the wrong code is not bound to the same user: %v", err)
	}
	return w
}

func mustParseCode(t *testing.T, code string) secret.Bearer {
	t.Helper()
	b, err := secret.ParseCode(code)
	if err != nil {
		t.Fatalf("ParseCode(%q): %v", code, err)
	}
	return b
}

// refusedCode checks the answer to an unusable code.
func refusedCode(t *testing.T, r *testenv.Resp) {
	t.Helper()
	if r.Status != http.StatusBadRequest || r.Str("error") != "bad_request" || r.Str("error_description") != codeRefused {
		t.Fatalf("got %d %s, want the refused-code 400", r.Status, r.Body)
	}
}

// shiftClock moves the service's clock by d and returns the func that puts
// it back (also run when the test ends): the service is shared, and tests
// do not run in parallel.
func shiftClock(t *testing.T, d time.Duration) (restore func()) {
	t.Helper()
	orig := env.API.Users.Now
	env.API.Users.Now = func() time.Time { return time.Now().Add(d) }
	restore = func() { env.API.Users.Now = orig }
	t.Cleanup(restore)
	return restore
}

func statusOf(t *testing.T, id string) string {
	t.Helper()
	return attr(userItem(t, id), "status")
}

func TestCodesSingleUseUnderConcurrency(t *testing.T) {
	t.Run("case=two concurrent activations with one code: exactly one succeeds", func(t *testing.T) {
		email := testenv.Email("dupact")
		id := env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		var ok, refused atomic.Int32
		together(2, func(int) {
			r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword})
			switch {
			case r.Status == http.StatusOK:
				ok.Add(1)
			case r.Status == http.StatusBadRequest && r.Str("error_description") == codeRefused:
				refused.Add(1)
			default:
				t.Errorf("activate: %d %s", r.Status, r.Body)
			}
		})
		if ok.Load() != 1 || refused.Load() != 1 {
			t.Fatalf("%d successes and %d refusals, want 1 and 1", ok.Load(), refused.Load())
		}
		if s := statusOf(t, id); s != users.StatusEnabled {
			t.Fatalf("status %s", s)
		}
	})

	t.Run("case=two concurrent reset confirms with one code: exactly one succeeds", func(t *testing.T) {
		u := quickUser(t, "dupreset")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		code := env.CodeFromMail(t, u.Email, "Reset your password")
		passwords := []string{"first-Racer-2281", "second-Racer-7719"}
		status := make([]int, 2)
		together(2, func(i int) {
			r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": passwords[i]})
			status[i] = r.Status
			if r.Status != http.StatusOK && (r.Status != http.StatusBadRequest || r.Str("error_description") != codeRefused) {
				t.Errorf("confirm: %d %s", r.Status, r.Body)
			}
		})
		if (status[0] == http.StatusOK) == (status[1] == http.StatusOK) {
			t.Fatalf("statuses %v, want exactly one 200", status)
		}
		for i, pw := range passwords {
			r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": pw})
			if (r.Status == http.StatusOK) != (status[i] == http.StatusOK) {
				t.Errorf("password %d: login %d, but its confirm got %d", i, r.Status, status[i])
			}
		}
	})
}

func TestCodeAttempts(t *testing.T) {
	activate := func(code string) *testenv.Resp {
		return env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword})
	}
	t.Run("case=four wrong tries leave the code usable", func(t *testing.T) {
		email := testenv.Email("tries4")
		env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		for i := 0; i < users.MaxCodeAttempts-1; i++ {
			refusedCode(t, activate(wrongCode(t, code, i)))
		}
		if r := activate(code); r.Status != http.StatusOK {
			t.Fatalf("the right code after %d wrong tries: %d %s", users.MaxCodeAttempts-1, r.Status, r.Body)
		}
	})

	t.Run("case=after five wrong tries the right activation code is refused", func(t *testing.T) {
		email := testenv.Email("tries5")
		id := env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		for i := 0; i < users.MaxCodeAttempts; i++ {
			refusedCode(t, activate(wrongCode(t, code, i)))
		}
		refusedCode(t, activate(code))
		if s := statusOf(t, id); s != users.StatusUnverified {
			t.Fatalf("status %s after a refused activation", s)
		}
		// The count stops at the limit: the refused right code is not a sixth.
		if c, ok := userItem(t, id)["code_activation"].(*types.AttributeValueMemberM); !ok || attr(c.Value, "attempts") != "5" {
			t.Fatalf("stored code %v, want 5 attempts", userItem(t, id)["code_activation"])
		}
		// A new code starts a new count.
		env.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email})
		mails := env.MailsTo(t, email, "Activate")
		if len(mails) != 2 {
			t.Fatalf("%d activation mails", len(mails))
		}
		if r := activate(testenv.CodeIn(t, mails[1].Text)); r.Status != http.StatusOK {
			t.Fatalf("the resent code: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=after five wrong tries the right reset code is refused", func(t *testing.T) {
		u := quickUser(t, "resettries")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		code := env.CodeFromMail(t, u.Email, "Reset your password")
		for i := 0; i < users.MaxCodeAttempts; i++ {
			refusedCode(t, env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": wrongCode(t, code, i), "new_password": "guessed-Right-4410"}))
		}
		refusedCode(t, env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "guessed-Right-4410"}))
		env.Login(t, u.Email, u.Password) // unchanged
	})

	t.Run("case=after five wrong tries the right email-change code is refused", func(t *testing.T) {
		u := quickUser(t, "ectries")
		newEmail := testenv.Email("ectries-new")
		env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
		code := env.CodeFromMail(t, newEmail, "Confirm your new email")
		for i := 0; i < users.MaxCodeAttempts; i++ {
			refusedCode(t, env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": wrongCode(t, code, i)}, auth(u)...))
		}
		refusedCode(t, env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...))
		if got := env.Do(t, "GET", "/api/users/me", nil, auth(u)...).Str("email"); got != u.Email {
			t.Fatalf("email %q", got)
		}
	})

	t.Run("case=a code for one purpose does not serve another", func(t *testing.T) {
		email := testenv.Email("purpose")
		env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		refusedCode(t, env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "other-Purpose-5150"}))
		if r := activate(code); r.Status != http.StatusOK {
			t.Fatalf("activate: %d %s", r.Status, r.Body)
		}
	})
}

func TestCodeExpiry(t *testing.T) {
	t.Run("case=an activation code expires after 24 hours", func(t *testing.T) {
		email := testenv.Email("expact")
		id := env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		func() {
			defer shiftClock(t, users.ActivationTTL+time.Minute)()
			refusedCode(t, env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}))
		}()
		if s := statusOf(t, id); s != users.StatusUnverified {
			t.Fatalf("status %s", s)
		}
		defer shiftClock(t, users.ActivationTTL-time.Minute)()
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusOK {
			t.Fatalf("a minute before expiry: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=a reset code expires after 1 hour", func(t *testing.T) {
		u := quickUser(t, "expreset")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		code := env.CodeFromMail(t, u.Email, "Reset your password")
		func() {
			defer shiftClock(t, users.ResetTTL+time.Minute)()
			refusedCode(t, env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "too-Late-8812"}))
		}()
		env.Login(t, u.Email, u.Password)
		defer shiftClock(t, users.ResetTTL-time.Minute)()
		if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "just-In-Time-8813"}); r.Status != http.StatusOK {
			t.Fatalf("a minute before expiry: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=an email-change code expires after 24 hours", func(t *testing.T) {
		u := quickUser(t, "expec")
		newEmail := testenv.Email("expec-new")
		env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
		code := env.CodeFromMail(t, newEmail, "Confirm your new email")
		// The token would have expired by then: authenticate with the password.
		basic := []string{"Authorization", testenv.Basic(u.Email, u.Password)}
		func() {
			defer shiftClock(t, users.EmailChangeTTL+time.Minute)()
			refusedCode(t, env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, basic...))
		}()
		defer shiftClock(t, users.EmailChangeTTL-time.Minute)()
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, basic...); r.Status != http.StatusOK || r.Str("email") != newEmail {
			t.Fatalf("a minute before expiry: %d %s", r.Status, r.Body)
		}
	})
}
