package pages_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

const newPassword = "amber-Kettle-57-orchard"

// api reads the account as the API sees it, with a token from logging in.
func apiUser(t *testing.T, login, password string) map[string]any {
	t.Helper()
	tok := env.Login(t, login, password)
	r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Token(tok))
	if r.Status != http.StatusOK {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}
	return r.JSON()
}

// signUp goes through the sign-up page and returns the activation link.
func signUp(t *testing.T, b *browser, email string) string {
	t.Helper()
	p := b.get("/account/signup")
	wantPage(t, p, http.StatusOK, "/account/signup", "Create an account")
	p = b.submit(p, "signup", map[string]string{"email": email, "password": testenv.DefaultPassword, "first_name": "Ada"})
	wantPage(t, p, http.StatusOK, "/account/login", "we mailed you a link")
	return linkFromMail(t, email, "Activate")
}

// activated signs a fresh person up and activates them through the pages.
func activated(t *testing.T, b *browser, prefix string) string {
	t.Helper()
	email := testenv.Email(prefix)
	link := signUp(t, b, email)
	p := b.get(link)
	p = b.submit(p, "activate", map[string]string{"password": testenv.DefaultPassword})
	wantPage(t, p, http.StatusOK, "/account/login", "Your account is active")
	return email
}

func logIn(t *testing.T, b *browser, login, password string) *page {
	t.Helper()
	p := b.submit(b.get("/account/login"), "login", map[string]string{"login": login, "password": password})
	wantPage(t, p, http.StatusOK, "/account/me", login)
	return p
}

func TestPeopleGoThroughEveryFlowFromTheirMailbox(t *testing.T) {
	b := newBrowser(t)
	email := testenv.Email("pages")
	link := signUp(t, b, email)
	if !strings.HasPrefix(link, env.Config.PublicURL+"/account/activate?code=") {
		t.Fatalf("the activation link should open the activation page under the public URL: %s", link)
	}

	t.Run("case=a prefetch of the activation link changes nothing", func(t *testing.T) {
		for range 2 {
			p := newBrowser(t).get(link)
			wantPage(t, p, http.StatusOK, "/account/activate", email, `name="password"`)
		}
		r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": testenv.DefaultPassword})
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Str("error_description"), "not activated") {
			t.Fatalf("after GETs the account should still wait for activation: %d %s", r.Status, r.Body)
		}
	})

	p := b.get(link)
	wantPage(t, p, http.StatusOK, "/account/activate", "You are activating the account of", email)
	for _, h := range []struct{ name, want string }{
		{"Cache-Control", "no-store"}, {"Referrer-Policy", "no-referrer"}, {"X-Content-Type-Options", "nosniff"},
	} {
		if got := p.Header.Get(h.name); got != h.want {
			t.Errorf("%s: %q, want %q", h.name, got, h.want)
		}
	}
	csp := p.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
		}
	}
	if strings.Contains(p.Body, "<script") || strings.Contains(p.Body, "style=") {
		t.Error("a page carries inline script or style")
	}
	if strings.Contains(p.Body, `action="activate?`) {
		t.Error("the form posts the code in its URL; it belongs in the body")
	}
	t.Run("case=a wrong sign-up password is refused beside its field and the link stays usable", func(t *testing.T) {
		q := b.submit(p, "activate", map[string]string{"password": "not-" + testenv.DefaultPassword})
		wantPage(t, q, http.StatusBadRequest, "/account/activate", "This is not the password chosen at sign-up", `id="f-password-error"`, email)
		wantPage(t, b.get(link), http.StatusOK, "/account/activate", email)
	})
	p = b.submit(p, "activate", map[string]string{"password": testenv.DefaultPassword})
	wantPage(t, p, http.StatusOK, "/account/login", "Your account is active")

	t.Run("case=the used link says what to do", func(t *testing.T) {
		p := b.get(link)
		wantPage(t, p, http.StatusBadRequest, "/account/activate", "invalid, already used or expired", `action="resend"`)
	})

	p = logIn(t, b, email, testenv.DefaultPassword)

	t.Run("case=the profile is edited through the page", func(t *testing.T) {
		p := b.submit(p, "profile", map[string]string{"first_name": "Augusta", "last_name": "King", "job_title": "Analyst", "preferred_language": "en"})
		wantPage(t, p, http.StatusOK, "/account/me", "Your profile is saved", `value="Augusta"`)
		u := apiUser(t, email, testenv.DefaultPassword)
		if u["first_name"] != "Augusta" || u["last_name"] != "King" || u["job_title"] != "Analyst" {
			t.Fatalf("the API sees %v", u)
		}
	})

	newEmail := testenv.Email("pages-new")
	t.Run("case=the email changes from the second mail, without being logged in, with the account's password", func(t *testing.T) {
		p := b.submit(b.get("/account/me"), "email", map[string]string{"email": newEmail})
		wantPage(t, p, http.StatusOK, "/account/me", "We mailed a confirmation link", newEmail)
		link := linkFromMail(t, newEmail, "Confirm your new email")
		if !strings.Contains(link, "/account/confirm-email?code=") {
			t.Fatalf("confirmation link %s", link)
		}
		other := newBrowser(t)
		for range 2 { // a prefetch, then the person
			wantPage(t, other.get(link), http.StatusOK, "/account/confirm-email", newEmail, email)
		}
		if u := apiUser(t, email, testenv.DefaultPassword); u["email"] != email {
			t.Fatalf("a GET of the link changed the email: %v", u["email"])
		}
		// Without the account's session the link alone (the new mailbox)
		// is not enough: the account's password comes too.
		wantPage(t, other.submit(other.get(link), "confirm-email", nil), http.StatusBadRequest, "/account/confirm-email", "This field is required")
		wantPage(t, other.submit(other.get(link), "confirm-email", map[string]string{"password": "not-" + testenv.DefaultPassword}), http.StatusBadRequest, "/account/confirm-email", "The password is wrong")
		if u := apiUser(t, email, testenv.DefaultPassword); u["email"] != email {
			t.Fatalf("a confirmation without the password changed the email: %v", u["email"])
		}
		q := other.submit(other.get(link), "confirm-email", map[string]string{"password": testenv.DefaultPassword})
		wantPage(t, q, http.StatusOK, "/account/login", "Your email address has changed")
		if u := apiUser(t, newEmail, testenv.DefaultPassword); u["email"] != newEmail {
			t.Fatalf("the API sees email %v", u["email"])
		}
		wantPage(t, other.get(link), http.StatusBadRequest, "/account/confirm-email", "invalid, already used or expired")
		// The change ended every session, this browser's too.
		wantPage(t, b.get("/account/me"), http.StatusOK, "/account/login", "Please log in first")
	})
	email = newEmail
	logIn(t, b, email, testenv.DefaultPassword)

	t.Run("case=the password changes with the current one and the session lives on", func(t *testing.T) {
		me := b.get("/account/me")
		q := b.submit(me, "password", map[string]string{"current_password": "wrong-password-1", "new_password": newPassword, "new_password2": newPassword})
		wantPage(t, q, http.StatusBadRequest, "/account/password", "The current password is wrong")
		q = b.submit(me, "password", map[string]string{"current_password": testenv.DefaultPassword, "new_password": newPassword, "new_password2": newPassword + "x"})
		wantPage(t, q, http.StatusBadRequest, "/account/password", "The two passwords differ")
		q = b.submit(me, "password", map[string]string{"current_password": testenv.DefaultPassword, "new_password": newPassword, "new_password2": newPassword})
		wantPage(t, q, http.StatusOK, "/account/me", "Your password is changed")
		q = b.submit(q, "password", map[string]string{"current_password": newPassword, "new_password": testenv.DefaultPassword, "new_password2": testenv.DefaultPassword})
		wantPage(t, q, http.StatusOK, "/account/me", "Your password is changed")
	})

	t.Run("case=logging out ends the token", func(t *testing.T) {
		me := b.get("/account/me")
		tok := env.Login(t, email, testenv.DefaultPassword) // the same token the page holds
		q := b.submit(me, "logout", nil)
		wantPage(t, q, http.StatusOK, "/account/login", "You are logged out")
		if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Token(tok)); r.Status != http.StatusUnauthorized {
			t.Fatalf("the token still works after logout: %d", r.Status)
		}
		wantPage(t, b.get("/account/me"), http.StatusOK, "/account/login", "Please log in first")
	})

	t.Run("case=forgot password, reset from the mail, log in with the new one", func(t *testing.T) {
		q := b.submit(b.get("/account/forgot"), "forgot", map[string]string{"email": email})
		wantPage(t, q, http.StatusOK, "/account/forgot", "If an account exists for that address, a mail is on its way")
		unknown := b.submit(b.get("/account/forgot"), "forgot", map[string]string{"email": testenv.Email("nobody")})
		if unknown.Status != q.Status || unknown.URL.String() != q.URL.String() {
			t.Fatalf("an unknown address is answered differently: %d %s", unknown.Status, unknown.URL)
		}
		link := linkFromMail(t, email, "Reset your password")
		if !strings.Contains(link, "/account/reset?code=") {
			t.Fatalf("reset link %s", link)
		}
		wantPage(t, newBrowser(t).get(link), http.StatusOK, "/account/reset", email) // a prefetch
		r := b.get(link)
		wantPage(t, r, http.StatusOK, "/account/reset", "Choose a new password", "At least 8 characters")
		q = b.submit(r, "reset", map[string]string{"new_password": "password", "new_password2": "password"})
		wantPage(t, q, http.StatusBadRequest, "/account/reset", "too common", `aria-invalid="true"`)
		q = b.submit(r, "reset", map[string]string{"new_password": email, "new_password2": email})
		wantPage(t, q, http.StatusBadRequest, "/account/reset", "too similar to the email")
		q = b.submit(r, "reset", map[string]string{"new_password": newPassword, "new_password2": newPassword})
		wantPage(t, q, http.StatusOK, "/account/login", "Your new password is saved")
		logIn(t, b, email, newPassword)
	})

	t.Run("case=the account is deleted after confirmation", func(t *testing.T) {
		d := b.get("/account/delete")
		wantPage(t, d, http.StatusOK, "/account/delete", "cannot be undone")
		q := b.submit(d, "delete", nil)
		wantPage(t, q, http.StatusBadRequest, "/account/delete", "This field is required")
		q = b.submit(d, "delete", map[string]string{"confirm": "yes"})
		wantPage(t, q, http.StatusOK, "/account/login", "Your account is deleted")
		r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": newPassword})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("the deleted account still logs in: %d", r.Status)
		}
	})
}

func TestFormsRefuseAPostWithoutItsToken(t *testing.T) {
	b := newBrowser(t)
	email := activated(t, b, "csrf")
	login := b.get("/account/login")
	for _, c := range []struct {
		desc   string
		form   url.Values
		header map[string]string
	}{
		{"no token", url.Values{"login": {email}, "password": {testenv.DefaultPassword}}, nil},
		{"another form's token", url.Values{"login": {email}, "password": {testenv.DefaultPassword}, "csrf": {tokenOf(t, b.get("/account/forgot"), "forgot")}}, nil},
		{"a cross-site post", url.Values{"login": {email}, "password": {testenv.DefaultPassword}, "csrf": {tokenOf(t, login, "login")}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		t.Run("case="+c.desc+" is refused", func(t *testing.T) {
			b.header = c.header
			defer func() { b.header = nil }()
			p := b.do("POST", "/account/login", c.form)
			wantPage(t, p, http.StatusForbidden, "/account/login", "This form has expired")
		})
	}
	t.Run("case=another browser's token is refused", func(t *testing.T) {
		other := newBrowser(t)
		other.get("/account/login") // its own nonce
		p := other.do("POST", "/account/login", url.Values{"login": {email}, "password": {testenv.DefaultPassword}, "csrf": {tokenOf(t, login, "login")}})
		wantPage(t, p, http.StatusForbidden, "/account/login")
	})
	t.Run("case=a logged-in form without its token changes nothing", func(t *testing.T) {
		logIn(t, b, email, testenv.DefaultPassword)
		p := b.do("POST", "/account/delete", url.Values{"confirm": {"yes"}})
		wantPage(t, p, http.StatusForbidden, "/account/delete")
		logIn(t, newBrowser(t), email, testenv.DefaultPassword)
	})
}

func tokenOf(t *testing.T, p *page, action string) string {
	t.Helper()
	for _, m := range formPattern.FindAllStringSubmatch(p.Body, -1) {
		if m[1] == action {
			for _, h := range hiddenPattern.FindAllStringSubmatch(m[2], -1) {
				if h[1] == "csrf" {
					return h[2]
				}
			}
		}
	}
	t.Fatalf("no %s form token on %s", action, p.URL)
	return ""
}

func TestStaffCreatedAccountChoosesItsPassword(t *testing.T) {
	staff := env.NewStaff(t, "pages-staff", false)
	email := testenv.Email("pages-invited")
	r := env.Do(t, "POST", "/api/users", map[string]any{"username": "inv" + strings.Split(email, "@")[0][14:], "email": email},
		"Authorization", testenv.Token(staff.Token))
	if r.Status != http.StatusCreated {
		t.Fatalf("admin create: %d %s", r.Status, r.Body)
	}
	link := linkFromMail(t, email, "Your new account")
	b := newBrowser(t)
	p := b.get(link)
	wantPage(t, p, http.StatusOK, "/account/reset", "Choose your password", email)
	p = b.submit(p, "reset", map[string]string{"new_password": newPassword, "new_password2": newPassword})
	wantPage(t, p, http.StatusOK, "/account/login")
	logIn(t, b, email, newPassword)
}

func TestCancelledEmailChangeSaysSo(t *testing.T) {
	b := newBrowser(t)
	email := activated(t, b, "cancel")
	me := logIn(t, b, email, testenv.DefaultPassword)
	newEmail := testenv.Email("cancel-new")
	me = b.submit(me, "email", map[string]string{"email": newEmail})
	link := linkFromMail(t, newEmail, "Confirm your new email")
	p := b.submit(me, "cancel-email", nil)
	wantPage(t, p, http.StatusOK, "/account/me", "The email change is cancelled")
	wantPage(t, newBrowser(t).get(link), http.StatusBadRequest, "/account/confirm-email", "may also have been cancelled")
}

func TestPagesAndMailsSpeakTheUsersLanguage(t *testing.T) {
	b := newBrowser(t)
	b.lang = "de-AT,de;q=0.9,en;q=0.5"
	p := b.get("/account/signup")
	wantPage(t, p, http.StatusOK, "/account/signup", `<html lang="de">`, "Konto anlegen")
	email := testenv.Email("sprache")
	p = b.submit(p, "signup", map[string]string{"email": email, "password": "kurz"})
	wantPage(t, p, http.StatusBadRequest, "/account/signup", "Dieses Passwort ist zu kurz", `aria-invalid="true"`, `role="alert"`)
	p = b.submit(p, "signup", map[string]string{"email": email, "password": testenv.DefaultPassword})
	wantPage(t, p, http.StatusOK, "/account/login", "Fast geschafft")
	link := linkFromMail(t, email, "Aktivieren Sie Ihr Konto")
	// The link opened in an English browser still speaks the account's language.
	en := newBrowser(t)
	wantPage(t, en.get(link), http.StatusOK, "/account/activate", `<html lang="de">`, "Sie aktivieren das Konto von")
	mails := env.MailsTo(t, email, "Aktivieren")
	if len(mails) != 1 || !strings.Contains(mails[0].Subject, "Acme ID") || !strings.Contains(mails[0].Text, "help@acme.example") {
		t.Fatalf("the mail should carry the product's name and support address: %+v", mails)
	}
	p = en.submit(en.get(link), "activate", map[string]string{"password": testenv.DefaultPassword})
	wantPage(t, p, http.StatusOK, "/account/login", "Ihr Konto ist aktiv")
	// Logged in, the account's preferred_language decides.
	logIn(t, en, email, testenv.DefaultPassword)
	wantPage(t, en.get("/account/me"), http.StatusOK, "/account/me", "Mein Konto", "Acme ID")
}

func TestEveryPageIsBrandedAndAccessible(t *testing.T) {
	b := newBrowser(t)
	for _, path := range []string{"/account/login", "/account/signup", "/account/forgot", "/account/resend", "/account/activate?code=nonsense"} {
		p := b.get(path)
		for _, s := range []string{`<html lang="en">`, "Acme ID", `aria-live`, `mailto:help@acme.example`, `<meta name="viewport"`} {
			if !strings.Contains(p.Body, s) {
				t.Errorf("%s lacks %q", path, s)
			}
		}
		for _, m := range regexpAll(`<input id="([^"]+)"`, p.Body) {
			if !strings.Contains(p.Body, `<label for="`+m+`"`) {
				t.Errorf("%s: input %s has no label", path, m)
			}
		}
	}
	css := b.get("/account/style.css")
	if css.Status != http.StatusOK || !strings.Contains(css.Body, "--accent: #7a1fa2;") || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("stylesheet: %d %q %.200s", css.Status, css.Header.Get("Content-Type"), css.Body)
	}
	wantPage(t, b.get("/account/nothing-here"), http.StatusNotFound, "/account/nothing-here", "There is no page at this address")
	wantPage(t, b.get("/account"), http.StatusOK, "/account/login", "Please log in first")
}

func TestDescribeCodeConsumesNothing(t *testing.T) {
	ctx := context.Background()
	email := testenv.Email("describe")
	env.SignUp(t, email)
	code := env.CodeFromMail(t, email, "Activate")
	for range users.MaxCodeAttempts + 2 {
		info, err := env.API.Users.DescribeCode(ctx, code, users.PurposeActivation)
		if err != nil || info.Email != email {
			t.Fatalf("describe: %+v %v", info, err)
		}
		if _, err := env.API.Users.DescribeCode(ctx, code[:len(code)-2]+"AA", users.PurposeActivation); err == nil {
			t.Fatal("a wrong code was described")
		}
	}
	if _, err := env.API.Users.DescribeCode(ctx, code, users.PurposeReset); err == nil {
		t.Fatal("an activation code was described as a reset code")
	}
	// Wrong codes described above counted no attempt: the code still works.
	b := newBrowser(t)
	p := b.submit(b.get("/account/activate?code="+code), "activate", map[string]string{"password": testenv.DefaultPassword})
	wantPage(t, p, http.StatusOK, "/account/login", "Your account is active")
	if _, err := env.API.Users.DescribeCode(ctx, code, users.PurposeActivation); err == nil {
		t.Fatal("a used code was described")
	}
}
