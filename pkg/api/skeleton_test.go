package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

func TestWalkingSkeleton(t *testing.T) {
	email := testenv.Email("ada.lovelace") // lower case: the canonical form is what is stored
	pw := testenv.DefaultPassword

	r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": pw, "first_name": "Ada", "last_name": "Lovelace"})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	if r.Header.Get("Request-Id") == "" {
		t.Error("sign-up answer has no Request-Id")
	}
	u := r.JSON()
	if u["status"] != "UNVERIFIED" || u["is_active"] != false || u["email"] != email || u["username"] != strings.ToLower(email) || u["full_name"] != "Ada Lovelace" {
		t.Errorf("sign-up user: %s", r.Body)
	}
	for _, secretField := range []string{"password", "password_hash", "token", "code"} {
		if _, ok := u[secretField]; ok {
			t.Errorf("sign-up answer carries %q", secretField)
		}
	}
	id := u["uuid"].(string)

	t.Run("case=login before activation is refused with a clear message", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": pw})
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Str("error_description"), "not activated") {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	code := env.CodeFromMail(t, email, "Activate")
	mail := env.MailsTo(t, email, "Activate")[0]
	if !strings.Contains(mail.Text, env.URL+"/account/activate?code="+code) {
		t.Errorf("activation link should default to the activation page: %q", mail.Text)
	}
	if !strings.Contains(mail.HTML, code) {
		t.Error("the HTML part lacks the code")
	}

	// Opening the link (a GET, as a mail scanner's prefetch too) changes nothing.
	if r := env.Do(t, "GET", "/api/auth/activate?code="+code, nil); r.Status != http.StatusOK || r.Str("status") != "" {
		t.Fatalf("GET activate: %d %s", r.Status, r.Body)
	}
	if got := attr(userItem(t, id), "status"); got != "UNVERIFIED" {
		t.Fatalf("a GET of the activation link changed the account: %s", got)
	}
	r = env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword})
	if r.Status != http.StatusOK || r.Str("status") != "ENABLED" || r.JSON()["is_active"] != true {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	t.Run("case=a used code is refused", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword})
		if r.Status != http.StatusBadRequest || r.Str("error") != "bad_request" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	r = env.Do(t, "POST", "/api/auth/login", map[string]any{"email": strings.ToUpper(email), "password": pw})
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	token := r.Str("token")
	if len(token) < 43 || r.Str("expires_at") == "" || r.JSON()["user"].(map[string]any)["uuid"] != id {
		t.Fatalf("login answer: %s", r.Body)
	}
	t.Run("case=a second login returns the same valid token", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/auth/login", map[string]any{"username": strings.ToLower(email), "password": pw})
		if r.Status != http.StatusOK || r.Str("token") != token {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	for _, auth := range []string{"Token " + token, "Bearer " + token, testenv.Basic(email, pw)} {
		r = env.Do(t, "GET", "/api/users/me", nil, "Authorization", auth)
		if r.Status != http.StatusOK || r.Str("uuid") != id || r.Str("token") != token || r.Header.Get("ETag") == "" {
			t.Fatalf("me with %q: %d %s", strings.Fields(auth)[0], r.Status, r.Body)
		}
	}
	r = env.Do(t, "GET", "/api/users/me/?field=email&field=uuid", nil, "Authorization", "Token "+token)
	if got := r.JSON(); r.Status != http.StatusOK || len(got) != 2 || got["email"] != email {
		t.Fatalf("me with fields: %d %s", r.Status, r.Body)
	}

	r = env.Do(t, "POST", "/api/auth/logout", nil, "Authorization", "Token "+token)
	if r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	r = env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+token)
	if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != "Token" || r.Str("error") != "unauthorized_access" {
		t.Fatalf("me after logout: %d %s", r.Status, r.Body)
	}

	token = env.Login(t, email, pw)
	if token == "" {
		t.Fatal("no new token after logout")
	}
	r = env.Do(t, "DELETE", "/api/users", nil, "Authorization", "Token "+token)
	if r.Status != http.StatusOK || r.Str("uuid") != id || r.Str("email") != email {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	r = env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+token)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("token after delete: %d %s", r.Status, r.Body)
	}
	r = env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": pw})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("login after delete: %d %s", r.Status, r.Body)
	}
	// The email and username claims went with the account.
	r = env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": pw})
	if r.Status != http.StatusCreated || r.Str("uuid") == id {
		t.Fatalf("sign-up again after delete: %d %s", r.Status, r.Body)
	}
}

func TestUbiOpsRoutes(t *testing.T) {
	email := testenv.Email("ubi")
	r := env.Do(t, "POST", "/user", map[string]any{"email": email, "password": testenv.DefaultPassword, "name": "User name", "surname": "User surname", "phone": "+999999999"})
	if r.Status != http.StatusCreated {
		t.Fatalf("POST /user: %d %s", r.Status, r.Body)
	}
	want := map[string]any{"email": email, "name": "User name", "surname": "User surname", "phone": "+999999999"}
	got := r.JSON()
	if len(got) != len(want) {
		t.Errorf("POST /user answer has other fields: %s", r.Body)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("POST /user %s = %v, want %v", k, got[k], v)
		}
	}
	env.Activate(t, email)
	tok := env.Login(t, email, testenv.DefaultPassword)
	me := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok).JSON()
	if me["first_name"] != "User name" || me["last_name"] != "User surname" || me["phone_number"] != "+999999999" {
		t.Errorf("aliases not stored: %v", me)
	}
	r = env.Do(t, "DELETE", "/user/", nil, "Authorization", "Token "+tok)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("DELETE /user: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok); r.Status != http.StatusUnauthorized {
		t.Fatalf("token after DELETE /user: %d", r.Status)
	}
}

func TestSignUpRefusals(t *testing.T) {
	taken := testenv.Email("taken")
	env.SignUp(t, taken)
	env.Activate(t, taken) // an unverified holder would be replaced
	for _, tc := range []struct {
		desc   string
		body   any
		ctype  string
		status int
		field  string
	}{
		{desc: "duplicate email, other case", body: map[string]any{"email": strings.ToUpper(taken), "password": testenv.DefaultPassword}, status: 400},
		{desc: "username that is another's email", body: map[string]any{"email": testenv.Email("x"), "username": strings.ToLower(taken), "password": testenv.DefaultPassword}, status: 400, field: "username"},
		{desc: "missing email", body: map[string]any{"password": testenv.DefaultPassword}, status: 400, field: "email"},
		{desc: "bad email", body: map[string]any{"email": "not-an-email", "password": testenv.DefaultPassword}, status: 400, field: "email"},
		{desc: "short password", body: map[string]any{"email": testenv.Email("s"), "password": "short"}, status: 400, field: "password"},
		{desc: "common password", body: map[string]any{"email": testenv.Email("c"), "password": "qwertyuiop"}, status: 400, field: "password"},
		{desc: "bad username", body: map[string]any{"email": testenv.Email("u"), "username": "Not Valid", "password": testenv.DefaultPassword}, status: 400, field: "username"},
		{desc: "unknown field", body: map[string]any{"email": testenv.Email("f"), "password": testenv.DefaultPassword, "favourite_colour": "blue"}, status: 400, field: "favourite_colour"},
		{desc: "not JSON", body: `{"email":`, status: 400},
		{desc: "wrong content type", body: `email=a`, ctype: "text/plain", status: 415},
		{desc: "form without a password", body: `email=a%40example.com`, ctype: "application/x-www-form-urlencoded", status: 400, field: "password"},
		{desc: "staff flag without staff", body: map[string]any{"email": testenv.Email("st"), "password": testenv.DefaultPassword, "is_staff": true}, status: 403},
		{desc: "custom_data not an object", body: map[string]any{"email": testenv.Email("cd"), "password": testenv.DefaultPassword, "custom_data": []int{1}}, status: 400, field: "custom_data"},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			hdr := []string{}
			if tc.ctype != "" {
				hdr = append(hdr, "Content-Type", tc.ctype)
			}
			r := env.Do(t, "POST", "/api/users", tc.body, hdr...)
			if r.Status != tc.status {
				t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.status)
			}
			m := r.JSON()
			if m["error"] == nil || m["error_description"] == nil {
				t.Fatalf("not the error envelope: %s", r.Body)
			}
			if tc.status == 400 && m["payload"] != m["error_description"] {
				t.Errorf("payload should repeat the sentence: %s", r.Body)
			}
			if tc.field != "" {
				f, _ := m["fields"].(map[string]any)
				if f[tc.field] == nil {
					t.Errorf("fields should name %q: %s", tc.field, r.Body)
				}
			}
			if strings.HasPrefix(tc.desc, "duplicate") && m["error_description"] != "Someone already has that email/username. Could you try another?" {
				t.Errorf("duplicate sentence: %s", r.Body)
			}
		})
	}
}

func TestResendActivation(t *testing.T) {
	email := testenv.Email("resend")
	env.SignUp(t, email)
	first := env.CodeFromMail(t, email, "Activate")
	r := env.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email})
	unknown := env.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": testenv.Email("nobody")})
	if r.Status != http.StatusAccepted || unknown.Status != http.StatusAccepted || string(r.Body) != string(unknown.Body) {
		t.Fatalf("resend answers differ: %d %s / %d %s", r.Status, r.Body, unknown.Status, unknown.Body)
	}
	if n := len(env.MailsTo(t, email, "Activate")); n != 2 {
		t.Fatalf("%d activation mails, want 2", n)
	}
	mails := env.MailsTo(t, email, "Activate")
	second := testenv.CodeIn(t, mails[len(mails)-1].Text)
	if second == first {
		t.Fatal("resend mailed the same code")
	}
	if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": first, "password": testenv.DefaultPassword}); r.Status != http.StatusBadRequest {
		t.Errorf("the replaced code still works: %d", r.Status)
	}
	if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": second, "password": testenv.DefaultPassword}); r.Status != http.StatusOK {
		t.Errorf("the new code: %d %s", r.Status, r.Body)
	}
	// Once active, resend sends nothing and answers the same.
	r = env.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email})
	if r.Status != http.StatusAccepted || len(env.MailsTo(t, email, "Activate")) != 2 {
		t.Errorf("resend to an active account: %d, %d mails", r.Status, len(env.MailsTo(t, email, "Activate")))
	}
}

func TestActivationCodes(t *testing.T) {
	for _, tc := range []struct {
		desc string
		code string
	}{
		{"unknown code", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"garbage", "not a code"},
		{"empty", ""},
	} {
		t.Run("case="+tc.desc+" is refused", func(t *testing.T) {
			r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": tc.code, "password": testenv.DefaultPassword})
			if r.Status != http.StatusBadRequest || r.Str("error") != "bad_request" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
}
