package pages_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

// The login page hands the typed login to users.Login without the bound the
// API's login handler applies (pkg/api/auth.go: 254 bytes), so a long login
// reaches DynamoDB as a key over its 2048-byte limit: ValidationException,
// a 500 page and an ERROR log line per post, for anyone, without a session.
func TestAttackLongLoginOnThePageIsNotA5xx(t *testing.T) {
	for _, n := range []int{255, 2100, 30000} {
		b := newBrowser(t)
		p := b.submit(b.get("/account/login"), "login", map[string]string{"login": strings.Repeat("a", n), "password": "wrong-password-1"})
		if p.Status >= 500 {
			t.Errorf("a %d-byte login: %d on the login page (the API answers 400)", n, p.Status)
		}
	}
	r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": strings.Repeat("a", 30000), "password": "wrong-password-1"})
	if r.Status != http.StatusBadRequest {
		t.Fatalf("the API's answer to the same login: %d", r.Status)
	}
}

// The API confirms an email change only for the account's own token
// (POST /api/users/confirm_email: ConfirmEmail requires the code's user to
// be the caller). The confirmation page needs only the code: whoever reads
// the new mailbox confirms, with no session and no password. A person who
// mistypes the new address (a typo domain is an attacker's mailbox) hands
// the account over: the attacker confirms, asks for a reset at the address
// that is now the account's, and logs in to the victim's account.
func TestAttackConfirmEmailPageNeedsTheAccountsSession(t *testing.T) {
	victim := newBrowser(t)
	email := activated(t, victim, "typo-victim")
	me := logIn(t, victim, email, testenv.DefaultPassword)
	typo := testenv.Email("typo-attacker") // the mistyped address; the attacker reads it
	wantPage(t, victim.submit(me, "email", map[string]string{"email": typo}), http.StatusOK, "/account/me", typo)

	attacker := newBrowser(t) // never logged in as the victim, knows no password
	link := linkFromMail(t, typo, "Confirm your new email")
	attacker.submit(attacker.get(link), "confirm-email", nil)

	r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": testenv.DefaultPassword})
	if r.Status != http.StatusOK {
		// Show what the attacker can do next, then fail.
		attacker.submit(attacker.get("/account/forgot"), "forgot", map[string]string{"email": typo})
		reset := linkFromMail(t, typo, "Reset your password")
		attacker.submit(attacker.get(reset), "reset", map[string]string{"new_password": newPassword, "new_password2": newPassword})
		p := logIn(t, attacker, typo, newPassword)
		t.Fatalf("a browser without the victim's session confirmed the change (victim's login now %d) and, "+
			"through a reset, holds the victim's account: %s", r.Status, p.URL)
	}
}
