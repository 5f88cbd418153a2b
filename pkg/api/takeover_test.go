package api_test

// Account takeover: each case here was reproduced against the local stack
// before the credential epoch existed (docs/SECURITY.md, "The credential
// epoch"), and fails on that code.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

// lastMail waits for a mail to `to` with subject and returns the newest.
func lastMail(t *testing.T, to, subject string) localstack.Mail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := env.Inbox.WaitFor(ctx, to, func(m localstack.Mail) bool { return strings.Contains(m.Subject, subject) }); err != nil {
		t.Fatalf("no mail %q to %s: %v", subject, to, err)
	}
	ms := env.MailsTo(t, to, subject)
	return ms[len(ms)-1]
}

func TestLinksComeOnlyFromConfiguration(t *testing.T) {
	email := testenv.Email("forged-host")
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword},
		"X-Forwarded-Proto", "https://evil.example/?", "X-Forwarded-Host", "evil.example", "Host", "evil.example")
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	if u := r.Str("url"); !strings.HasPrefix(u, env.URL+"/api/users/") {
		t.Errorf("url %q is not on the configured base %s", u, env.URL)
	}
	m := lastMail(t, email, "Activate")
	if !strings.Contains(m.Text, env.URL+"/account/activate?code=") || strings.Contains(m.Text+m.HTML, "evil.example") {
		t.Errorf("the activation mail's link is not on the configured base %s: %q", env.URL, m.Text)
	}
	env.Activate(t, email)
	env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": email}, "X-Forwarded-Proto", "https://evil.example/?", "X-Forwarded-Host", "evil.example")
	m = lastMail(t, email, "Reset your password")
	if !strings.Contains(m.Text, env.URL+"/account/reset?code=") || strings.Contains(m.Text+m.HTML, "evil.example") {
		t.Errorf("the reset mail's link is not on the configured base: %q", m.Text)
	}
}

func TestNoPreHijacking(t *testing.T) {
	const attackerPassword = "attacker-Chosen-4417"
	const ownerPassword = "owner-Real-Secret-8810"

	t.Run("case=activation needs the sign-up password, and a wrong one leaves the code usable", func(t *testing.T) {
		email := testenv.Email("needs-pw")
		id := env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code}); r.Status != http.StatusBadRequest {
			t.Fatalf("activation without a password: %d %s", r.Status, r.Body)
		}
		r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": "not-The-Password-1"})
		if env := envelope(t, r, http.StatusBadRequest, "bad_request"); env["fields"] == nil {
			t.Fatalf("wrong password: %s", r.Body)
		}
		it := userItem(t, id)
		if attr(it, "status") != "UNVERIFIED" || attr(it, "failed_logins") != "1" {
			t.Fatalf("after a wrong activation password: status %s, failed_logins %q", attr(it, "status"), attr(it, "failed_logins"))
		}
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusOK {
			t.Fatalf("the code after a wrong password: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=the owner's sign-up replaces an account someone else made with their address", func(t *testing.T) {
		email := testenv.Email("victim")
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": attackerPassword, "first_name": "Mallory"})
		if r.Status != http.StatusCreated {
			t.Fatalf("attacker's sign-up: %d %s", r.Status, r.Body)
		}
		squatter := r.Str("uuid")
		attackerCode := env.CodeFromMail(t, email, "Activate")
		// The owner never activates the squatter's account (no GET does, and
		// they do not know its password); they sign up themselves.
		if r := env.Do(t, "GET", "/api/auth/activate?code="+attackerCode, nil); r.Status != http.StatusOK || attr(userItem(t, squatter), "status") != "UNVERIFIED" {
			t.Fatalf("a GET of the link changed the account: %d %s", r.Status, r.Body)
		}
		r = env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": ownerPassword})
		if r.Status != http.StatusCreated || r.Str("first_name") != "" {
			t.Fatalf("owner's sign-up: %d %s", r.Status, r.Body)
		}
		owner := r.Str("uuid")
		if userItem(t, squatter) != nil {
			t.Fatal("the replaced account is still there")
		}
		mails := env.MailsTo(t, email, "Activate")
		if len(mails) != 2 {
			t.Fatalf("%d activation mails, want 2", len(mails))
		}
		ownerCode := testenv.CodeIn(t, mails[1].Text)
		if mustParseCode(t, ownerCode).User != owner {
			t.Fatal("the second mail is not the owner's")
		}
		for _, pw := range []string{attackerPassword, ownerPassword} {
			if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": attackerCode, "password": pw}); r.Status != http.StatusBadRequest {
				t.Errorf("the replaced account's code still works: %d %s", r.Status, r.Body)
			}
		}
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": ownerCode, "password": attackerPassword}); r.Status != http.StatusBadRequest {
			t.Fatalf("the owner's code with the attacker's password: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": ownerCode, "password": ownerPassword}); r.Status != http.StatusOK || r.Str("uuid") != owner {
			t.Fatalf("owner's activation: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": attackerPassword}); r.Status != http.StatusUnauthorized {
			t.Errorf("the attacker's password logs in: %d", r.Status)
		}
		env.Login(t, email, ownerPassword)
		// Now the address is taken for good.
		if r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": attackerPassword}); r.Status != http.StatusBadRequest {
			t.Errorf("a sign-up over an activated account: %d %s", r.Status, r.Body)
		}
		auditClaims(t)
	})

	t.Run("case=a username held by an unverified account is taken over too", func(t *testing.T) {
		name := "squat-" + strings.ToLower(testenv.Email("n")[:14])
		first := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("sq1"), "username": name, "password": attackerPassword})
		if first.Status != http.StatusCreated {
			t.Fatalf("first: %d %s", first.Status, first.Body)
		}
		second := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("sq2"), "username": name, "password": ownerPassword})
		if second.Status != http.StatusCreated {
			t.Fatalf("second: %d %s", second.Status, second.Body)
		}
		if userItem(t, first.Str("uuid")) != nil || claimHolder(t, "EMAIL#"+strings.ToLower(first.Str("email"))) != "" {
			t.Fatal("the replaced account or its email claim is left")
		}
		auditClaims(t)
	})

	t.Run("case=resend cannot extend an unverified account past its 7 days", func(t *testing.T) {
		email := testenv.Email("expiring")
		env.SignUp(t, email)
		shiftClock(t, 6*24*time.Hour+12*time.Hour)
		if r := env.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email}); r.Status != http.StatusAccepted {
			t.Fatalf("resend: %d", r.Status)
		}
		mails := env.MailsTo(t, email, "Activate")
		if len(mails) != 2 {
			t.Fatalf("%d activation mails", len(mails))
		}
		code := testenv.CodeIn(t, mails[1].Text)
		shiftClock(t, 7*24*time.Hour+time.Minute)
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusBadRequest {
			t.Fatalf("a resent code past the account's 7 days: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=mailed links only show what a POST will do", func(t *testing.T) {
		u := quickUser(t, "prefetch")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": testenv.Email("prefetch-new")}, auth(u)...)
		before := userItem(t, u.UUID)
		for _, m := range append(env.MailsTo(t, u.Email, "Reset"), env.MailsTo(t, attr(before, "requested_email"), "Confirm")...) {
			link := m.Text[strings.Index(m.Text, "http"):]
			link = link[:strings.IndexAny(link, " \n")]
			res, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		after := userItem(t, u.UUID)
		for _, a := range []string{"version", "password_hash", "email", "cred_epoch", "requested_email"} {
			if attr(before, a) != attr(after, a) {
				t.Errorf("a GET of a mailed link changed %s", a)
			}
		}
	})
}

// race runs a and b at once, n times, each round on fresh state from setup.
func race(n int, setup func(i int), a, b func(i int)) {
	for i := range n {
		setup(i)
		together(2, func(j int) {
			if j == 0 {
				a(i)
			} else {
				b(i)
			}
		})
	}
}

func TestNoTokenSurvivesACredentialChange(t *testing.T) {
	const rounds = 12
	staff := env.NewStaff(t, "epoch-staff", false)

	check := func(t *testing.T, round int, tok string) {
		t.Helper()
		if tok == "" {
			return
		}
		if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok); r.Status != http.StatusUnauthorized {
			t.Errorf("round %d: a token issued in the race works after the credential change: %d", round, r.Status)
		}
	}

	for _, tc := range []struct {
		desc   string
		change func(t *testing.T, u testenv.User) *testenv.Resp
	}{
		{"a password reset", func(t *testing.T, u testenv.User) *testenv.Resp {
			return env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": env.CodeFromMail(t, u.Email, "Reset your password"), "new_password": "reset-During-Login-77"})
		}},
		{"a staff password change", func(t *testing.T, u testenv.User) *testenv.Resp {
			return env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"new_password": "staff-During-Login-88"}, auth(staff)...)
		}},
		{"a disable", func(t *testing.T, u testenv.User) *testenv.Resp {
			return env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": false}, auth(staff)...)
		}},
	} {
		for _, via := range []string{"JSON login", "refresh_token over Basic"} {
			t.Run("case="+via+" racing "+tc.desc+" yields no token that works after it", func(t *testing.T) {
				var u testenv.User
				tokens := make([]string, rounds)
				race(rounds, func(int) {
					u = quickUser(t, "race")
					if tc.desc == "a password reset" {
						env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
						env.CodeFromMail(t, u.Email, "Reset your password")
					}
					// A logout first: the login must issue a token, not hand back one.
					env.Do(t, "POST", "/api/auth/logout", nil, auth(u)...)
				}, func(i int) {
					var r *testenv.Resp
					if via == "JSON login" {
						r = env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password})
					} else {
						r = env.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", nil, "Authorization", testenv.Basic(u.Email, u.Password))
					}
					if r.Status == http.StatusOK {
						tokens[i] = r.Str("token")
					}
				}, func(i int) {
					if r := tc.change(t, u); r.Status != http.StatusOK {
						t.Errorf("round %d, %s: %d %s", i, tc.desc, r.Status, r.Body)
					}
				})
				for i, tok := range tokens {
					check(t, i, tok)
				}
			})
		}
	}

	t.Run("case=a self change_password in flight cannot overwrite a password staff set after it authenticated", func(t *testing.T) {
		const staffPassword = "staff-Set-Later-5150"
		var u testenv.User
		staffOK := make([]bool, rounds)
		race(rounds, func(int) { u = quickUser(t, "race-self") }, func(i int) {
			env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"current_password": u.Password, "new_password": "self-Chosen-Now-6262"}, auth(u)...)
		}, func(i int) {
			r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"new_password": staffPassword}, auth(staff)...)
			staffOK[i] = r.Status == http.StatusOK
			if staffOK[i] {
				// Staff's password must be the one that holds.
				if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": staffPassword}); r.Status != http.StatusOK {
					// The self change may still land after staff's answer only if
					// it authenticated later; it cannot, as the epoch moved.
					time.Sleep(200 * time.Millisecond)
					if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": staffPassword}); r.Status != http.StatusOK {
						t.Errorf("round %d: staff's password was overwritten by a change that authenticated before it: %d", i, r.Status)
					}
				}
			}
		})
	})
}

func TestDisablingEndsSessions(t *testing.T) {
	staff := env.NewStaff(t, "disabler", false)
	u := quickUser(t, "disabled")
	if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": false}, auth(staff)...); r.Status != http.StatusOK || r.JSON()["has_active_session"] != false {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if attr(userItem(t, u.UUID), "token_hash") != "" {
		t.Error("disabling left the token stored")
	}
	r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": true}, auth(staff)...)
	if r.Status != http.StatusOK || r.JSON()["has_active_session"] != false {
		t.Fatalf("re-enable: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != http.StatusUnauthorized {
		t.Fatalf("re-enabling revived the token: %d", r.Status)
	}
	env.Login(t, u.Email, u.Password)
}

func TestEmailChangeEndsWhatTheOldAddressCouldDo(t *testing.T) {
	staff := env.NewStaff(t, "mover", false)

	t.Run("case=a confirmed change kills the outstanding reset code and tells the old address", func(t *testing.T) {
		u := quickUser(t, "old-addr")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		reset := env.CodeFromMail(t, u.Email, "Reset your password")
		newEmail := testenv.Email("new-addr")
		env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
		code := env.CodeFromMail(t, newEmail, "Confirm your new email")
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": reset, "new_password": "taken-Over-Now-3131"}); r.Status != http.StatusBadRequest {
			t.Fatalf("the old address's reset code after the change: %d %s", r.Status, r.Body)
		}
		notice := lastMail(t, u.Email, "email was changed")
		if !strings.Contains(notice.Text, newEmail) || !strings.Contains(notice.Text, time.Now().UTC().Format("2006")) || !strings.Contains(notice.Text, "If you did not make this change") {
			t.Errorf("the notice to the old address: %q", notice.Text)
		}
	})

	t.Run("case=a staff email change kills the outstanding reset code and tells the old address", func(t *testing.T) {
		u := quickUser(t, "staff-moved")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		reset := env.CodeFromMail(t, u.Email, "Reset your password")
		newEmail := testenv.Email("staff-new")
		if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"email": newEmail}, auth(staff)...); r.Status != http.StatusOK {
			t.Fatalf("staff change: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": reset, "new_password": "taken-Over-Now-3131"}); r.Status != http.StatusBadRequest {
			t.Fatalf("the old address's reset code after a staff change: %d %s", r.Status, r.Body)
		}
		lastMail(t, u.Email, "email was changed")
	})

	t.Run("case=staff moving and enabling an unverified account in one PATCH", func(t *testing.T) {
		email := testenv.Email("unv-move")
		id := env.SignUp(t, email)
		code := env.CodeFromMail(t, email, "Activate")
		r := env.Do(t, "PATCH", "/api/users/"+id, map[string]any{"email": testenv.Email("unv-moved"), "is_active": true}, auth(staff)...)
		if r.Status != http.StatusOK || r.Str("status") != "ENABLED" {
			t.Fatalf("staff PATCH: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusBadRequest {
			t.Errorf("the old activation code: %d", r.Status)
		}
		auditClaims(t)
	})

	t.Run("case=a password reset cancels a pending email change", func(t *testing.T) {
		u := quickUser(t, "reset-cancels")
		newEmail := testenv.Email("pending")
		env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
		change := env.CodeFromMail(t, newEmail, "Confirm your new email")
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		reset := env.CodeFromMail(t, u.Email, "Reset your password")
		if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": reset, "new_password": "owner-Back-In-4242"}); r.Status != http.StatusOK {
			t.Fatalf("reset: %d %s", r.Status, r.Body)
		}
		if attr(userItem(t, u.UUID), "requested_email") != "" {
			t.Error("the pending email change survived the reset")
		}
		tok := env.Login(t, u.Email, "owner-Back-In-4242")
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": change}, "Authorization", "Token "+tok); r.Status != http.StatusBadRequest {
			t.Fatalf("the email-change code after a reset: %d %s", r.Status, r.Body)
		}
	})
}

// TestRefusedRequestsCostNoHash runs a stack with small limits: a sign-up,
// login or Basic request refused by a per-IP limit computes no password
// hash; Basic failures count toward the login limit; and the login limit is
// exact under a concurrent burst.
func TestRefusedRequestsCostNoHash(t *testing.T) {
	// The stack's processes live as long as ctx: long enough for a loaded
	// machine (at 2 minutes its DynamoDB Local was gone mid-test there, and
	// every login of the burst failed otherwise than with 429).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lim, err := testenv.Start(ctx, testenv.Options{Env: map[string]string{
		"IP_RATE_LIMIT":                "1",
		"RATE_LIMIT_SIGNUP":            "2/1h",
		"RATE_LIMIT_LOGIN":             "60/1h",
		"RATE_LIMIT_CHANGE_EMAIL":      "100/1h",
		"RATE_LIMIT_CHANGE_EMAIL_USER": "3/1h",
		"RATE_LIMIT_MAIL_ADDRESS":      "3/1h",
		"RATE_LIMIT_RESEND":            "100/1h",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	now := time.Now()
	lim.API.Users.Now = func() time.Time { return now }

	t.Run("case=sign-ups past the limit cost no hash", func(t *testing.T) {
		for i := range 2 {
			lim.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("h"), "password": testenv.DefaultPassword + string(rune('a'+i))})
		}
		before := secret.Hashes()
		for range 5 {
			if r := lim.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("h"), "password": testenv.DefaultPassword}); r.Status != http.StatusTooManyRequests {
				t.Fatalf("sign-up past the limit: %d", r.Status)
			}
		}
		if got := secret.Hashes() - before; got != 0 {
			t.Errorf("5 refused sign-ups computed %d hashes", got)
		}
		// Once refused, the window is known full here: no request either.
		if got := lim.Requests.Measure(func() {
			lim.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("h"), "password": testenv.DefaultPassword})
		}); got.Requests != 0 {
			t.Errorf("a sign-up into a window known to be full made %d DynamoDB requests %v", got.Requests, got.ByOp)
		}
	})

	u, err := lim.API.Users.EnsureStaff(ctx, testenv.Email("burst"), testenv.DefaultPassword, false, false)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("case=100 concurrent wrong logins against a limit of 60 get at most 60 answers that are not 429", func(t *testing.T) {
		var mu = make(chan struct{}, 1)
		mu <- struct{}{}
		other := 0
		statuses := map[int]int{}
		burst := secret.Hashes()
		together(100, func(i int) {
			// Unknown logins, so that no account's lockout answers 429 for
			// the IP limit: the limit alone must refuse past 60.
			r := lim.Do(t, "POST", "/api/auth/login", map[string]any{"login": testenv.Email("nobody"), "password": "wrong-Password-" + string(rune('a'+i%26))})
			<-mu
			if r.Status != http.StatusTooManyRequests {
				other++
			}
			statuses[r.Status]++
			mu <- struct{}{}
		})
		if other > 60 {
			t.Errorf("%d of 100 logins were not refused by the limit of 60 (statuses %v)", other, statuses)
		}
		for code, n := range statuses {
			if code >= 500 {
				t.Errorf("%d logins of the burst answered %d", n, code)
			}
		}
		if got := secret.Hashes() - burst; got > 60 {
			t.Errorf("the burst computed %d hashes; the 40 refused ones should cost none", got)
		}
		before := secret.Hashes()
		for range 3 {
			if r := lim.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": testenv.DefaultPassword}); r.Status != http.StatusTooManyRequests {
				t.Fatalf("a login past the limit: %d", r.Status)
			}
			if r := lim.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(u.Email, "wrong-Again-1")); r.Status != http.StatusTooManyRequests {
				t.Fatalf("a Basic request past the login limit: %d", r.Status)
			}
		}
		if got := secret.Hashes() - before; got != 0 {
			t.Errorf("refused logins computed %d hashes", got)
		}
	})

	t.Run("case=Basic failures count toward the per-IP login limit", func(t *testing.T) {
		lim.API.Users.Now = func() time.Time { return now.Add(2 * time.Hour) } // a fresh window
		v, err := lim.API.Users.EnsureStaff(ctx, testenv.Email("basic-count"), testenv.DefaultPassword, false, false)
		if err != nil {
			t.Fatal(err)
		}
		for range 60 {
			lim.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(testenv.Email("nobody"), "wrong-Password-1"))
		}
		if r := lim.Do(t, "POST", "/api/auth/login", map[string]any{"login": v.Email, "password": testenv.DefaultPassword}); r.Status != http.StatusTooManyRequests {
			t.Fatalf("a login after 60 Basic failures: %d, want 429", r.Status)
		}
	})

	t.Run("case=change_email is limited per user", func(t *testing.T) {
		lim.API.Users.Now = func() time.Time { return now.Add(4 * time.Hour) }
		v, err := lim.API.Users.EnsureStaff(ctx, testenv.Email("mailbomb"), testenv.DefaultPassword, false, false)
		if err != nil {
			t.Fatal(err)
		}
		basic := testenv.Basic(v.Email, testenv.DefaultPassword)
		for i := range 3 {
			if r := lim.Do(t, "POST", "/api/users/"+v.UUID+"/change_email", map[string]any{"email": testenv.Email("target")}, "Authorization", basic); r.Status != http.StatusOK {
				t.Fatalf("change_email %d: %d %s", i, r.Status, r.Body)
			}
		}
		if r := lim.Do(t, "POST", "/api/users/"+v.UUID+"/change_email", map[string]any{"email": testenv.Email("target")}, "Authorization", basic); r.Status != http.StatusTooManyRequests {
			t.Fatalf("change_email past the per-user limit: %d", r.Status)
		}
	})

	t.Run("case=mail on request to one address is limited, whoever asks", func(t *testing.T) {
		lim.API.Users.Now = func() time.Time { return now.Add(6 * time.Hour) }
		email := testenv.Email("flooded")
		if r := lim.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword}); r.Status != http.StatusCreated {
			t.Fatalf("sign-up: %d", r.Status)
		}
		for range 6 {
			if r := lim.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email}); r.Status != http.StatusAccepted {
				t.Fatalf("resend: %d", r.Status)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if got := len(lim.MailsTo(t, email, "Activate")); got != 3 {
			t.Errorf("%d activation mails to one address, want the limit's 3", got)
		}
	})
}

// TestResetAndResendDoTheSameWorkEitherWay: whether or not an address has
// an account, reset and resend make the same DynamoDB requests and send
// one mail, so their timing does not tell (make bench measures the times).
func TestResetAndResendDoTheSameWorkEitherWay(t *testing.T) {
	u := quickUser(t, "same-work")
	pending := testenv.Email("same-work-pending")
	env.SignUp(t, pending)
	for _, tc := range []struct{ route, known string }{
		{"/api/auth/password_reset", u.Email},
		{"/api/auth/activation/resend", pending},
	} {
		known := env.Requests.Measure(func() { env.Do(t, "POST", tc.route, map[string]any{"email": tc.known}) })
		unknown := env.Requests.Measure(func() { env.Do(t, "POST", tc.route, map[string]any{"email": testenv.Email("nobody")}) })
		if known.Requests != unknown.Requests || len(known.ByOp) != len(unknown.ByOp) {
			t.Errorf("%s: %v for an account, %v for none", tc.route, known.ByOp, unknown.ByOp)
		}
		for op, n := range known.ByOp {
			if unknown.ByOp[op] != n {
				t.Errorf("%s: %s %d times for an account, %d for none", tc.route, op, n, unknown.ByOp[op])
			}
		}
	}
}

// TestNoWriteResurrectsADeletedUser: a login (which writes a token) or a
// profile change racing the account's deletion leaves nothing behind.
func TestNoWriteResurrectsADeletedUser(t *testing.T) {
	for i := range 10 {
		u := quickUser(t, "resurrect")
		env.Do(t, "POST", "/api/auth/logout", nil, auth(u)...) // so the login writes a new token
		deleted := false
		together(3, func(j int) {
			switch j {
			case 0:
				deleted = env.Do(t, "DELETE", "/api/users", nil, "Authorization", testenv.Basic(u.Email, u.Password)).Status == http.StatusOK
			case 1:
				env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password})
			case 2:
				env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"job_title": "ghost"}, "Authorization", testenv.Basic(u.Email, u.Password))
			}
		})
		if !deleted {
			t.Fatalf("round %d: the delete failed", i)
		}
		if it := userItem(t, u.UUID); it != nil {
			t.Fatalf("round %d: a write re-created the deleted user: %v", i, it)
		}
	}
}
