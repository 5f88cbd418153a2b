package api_test

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/testenv"
)

// envelope checks an error answer: status, the contract's code, and (for a
// 400) the sentence repeated under payload.
func envelope(t *testing.T, r *testenv.Resp, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d %s, want %d", r.Status, r.Body, status)
	}
	m := r.JSON()
	if m["error"] != code || m["error_description"] == nil || m["error_description"] == "" {
		t.Fatalf("not the %s envelope: %s", code, r.Body)
	}
	if status == http.StatusBadRequest && m["payload"] != m["error_description"] {
		t.Fatalf("payload does not repeat the sentence: %s", r.Body)
	}
	return m
}

// fieldsOf returns the fields a 400 names.
func fieldsOf(m map[string]any) map[string]any {
	f, _ := m["fields"].(map[string]any)
	return f
}

// rawPost sends body with exactly the given Content-Type ("" for none).
func rawPost(t *testing.T, path, ctype string, body []byte) *testenv.Resp {
	t.Helper()
	req, err := http.NewRequest("POST", env.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &testenv.Resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

func TestInputBodyLimits(t *testing.T) {
	u := quickUser(t, "limits")
	// A body just over the limit that is not even JSON: a 413 (not a 400)
	// proves the size is checked before any parsing.
	over := append([]byte("{"), bytes.Repeat([]byte("x"), httpapi.MaxBodyBytes)...)
	for _, tc := range []struct {
		desc, method, path string
		hdr                []string
	}{
		{"sign-up", "POST", "/api/users", nil},
		{"login", "POST", "/api/auth/login", nil},
		{"PATCH", "PATCH", "/api/users/" + u.UUID, auth(u)},
		{"change_email", "POST", "/api/users/" + u.UUID + "/change_email", auth(u)},
	} {
		t.Run("case="+tc.desc+" refuses a body over 64 KiB with 413", func(t *testing.T) {
			envelope(t, env.Do(t, tc.method, tc.path, over, tc.hdr...), http.StatusRequestEntityTooLarge, "payload_too_large")
		})
	}
	t.Run("case=a body of exactly 64 KiB is read", func(t *testing.T) {
		body := []byte(`{"job_title":"Limit tester"}`)
		body = append(body, bytes.Repeat([]byte(" "), httpapi.MaxBodyBytes-len(body))...)
		r := env.Do(t, "PATCH", "/api/users/"+u.UUID, body, auth(u)...)
		if r.Status != http.StatusOK || r.Str("job_title") != "Limit tester" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=a 64 KiB + 1 body changes nothing", func(t *testing.T) {
		body := []byte(`{"job_title":"Too big"}`)
		body = append(body, bytes.Repeat([]byte(" "), httpapi.MaxBodyBytes+1-len(body))...)
		envelope(t, env.Do(t, "PATCH", "/api/users/"+u.UUID, body, auth(u)...), http.StatusRequestEntityTooLarge, "payload_too_large")
		if got := env.Do(t, "GET", "/api/users/me", nil, auth(u)...).Str("job_title"); got != "Limit tester" {
			t.Fatalf("job_title = %q", got)
		}
	})
}

func TestInputJSONSyntax(t *testing.T) {
	for _, tc := range []struct {
		desc, body, where string
	}{
		{"a missing colon", "{\n  \"email\": \"a@example.com\",\n  \"password\" \"x\"\n}", "line 3, column 14"},
		{"a trailing comma", `{"email": "a@example.com",}`, "line 1, column 27"},
		{"a stray character", `{"email": ?}`, "line 1, column 11"},
	} {
		t.Run("case="+tc.desc+" is a 400 saying where", func(t *testing.T) {
			m := envelope(t, env.Do(t, "POST", "/api/users", tc.body), http.StatusBadRequest, "bad_request")
			if d := m["error_description"].(string); !strings.Contains(d, tc.where) || !strings.Contains(d, "not valid JSON") {
				t.Fatalf("description %q should say %q", d, tc.where)
			}
		})
	}
	for _, tc := range []struct{ desc, body string }{
		{"a truncated body", `{"email": "a@example.com"`},
		{"an array", `[{"email": "a@example.com"}]`},
		{"a string", `"a@example.com"`},
		{"null", `null`},
	} {
		t.Run("case="+tc.desc+" is a 400", func(t *testing.T) {
			envelope(t, env.Do(t, "POST", "/api/users", tc.body), http.StatusBadRequest, "bad_request")
		})
	}
}

func TestInputContentType(t *testing.T) {
	body := []byte(`{"email":"` + testenv.Email("ctype") + `","password":"` + testenv.DefaultPassword + `"}`)
	for _, ct := range []string{"text/plain", "application/xml", "", "application/json;;"} {
		t.Run("case=Content-Type "+ct+" with a body is a 415", func(t *testing.T) {
			envelope(t, rawPost(t, "/api/users", ct, body), http.StatusUnsupportedMediaType, "unsupported_media_type")
		})
	}
	// Forms are read (Waldur's UserRequestForm/Multipart), strictly: JSON
	// labelled as one is no form of known fields.
	for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "multipart/form-data"} {
		t.Run("case=JSON sent as "+ct+" is a 400", func(t *testing.T) {
			envelope(t, rawPost(t, "/api/users", ct, body), http.StatusBadRequest, "bad_request")
		})
	}
	t.Run("case=application/json with a charset is read", func(t *testing.T) {
		if r := rawPost(t, "/api/users", "application/json; charset=utf-8", body); r.Status != http.StatusCreated {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestInputUnknownFields(t *testing.T) {
	email := testenv.Email("unknown")
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword, "is_superuser": true, "role": "admin"})
	m := envelope(t, r, http.StatusBadRequest, "bad_request")
	f := fieldsOf(m)
	if f["is_superuser"] == nil || f["role"] == nil || len(f) != 2 {
		t.Fatalf("fields should name is_superuser and role only: %s", r.Body)
	}
	if d := m["error_description"].(string); !strings.Contains(d, "is_superuser") || !strings.Contains(d, "role") {
		t.Fatalf("the sentence should name them: %q", d)
	}
	if holder := claimHolder(t, "EMAIL#"+strings.ToLower(email)); holder != "" {
		t.Fatalf("a refused sign-up created account %s", holder)
	}

	u := quickUser(t, "unknownpatch")
	r = env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"first_name": "Eve", "password_hash": "x"}, auth(u)...)
	if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["password_hash"] == nil {
		t.Fatalf("fields should name password_hash: %s", r.Body)
	}
	if got := env.Do(t, "GET", "/api/users/me", nil, auth(u)...).Str("first_name"); got != "" {
		t.Fatalf("a refused PATCH changed first_name to %q", got)
	}
	for _, path := range []string{"/api/auth/login", "/api/auth/activate", "/api/auth/password_reset"} {
		r := env.Do(t, "POST", path, map[string]any{"email": u.Email, "login": u.Email, "password": u.Password, "code": "x", "admin": true})
		if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["admin"] == nil {
			t.Errorf("%s: fields should name admin: %s", path, r.Body)
		}
	}
}

func TestInputReadOnlyFieldsIgnoredOnPUT(t *testing.T) {
	u := quickUser(t, "readonly")
	other := quickUser(t, "readonly-other")
	path := "/api/users/" + u.UUID
	before := env.Do(t, "GET", path, nil, auth(u)...).JSON()
	body := map[string]any{}
	for k, v := range before {
		body[k] = v
	}
	// Everything a GET shows that a client may not set, sent back altered.
	for k, v := range map[string]any{
		"uuid": other.UUID, "url": "https://evil.example.com/", "full_name": "Someone Else", "status": "DISABLED",
		"registration_method": "remote", "date_joined": "2000-01-01T00:00:00Z", "modified": "2000-01-01T00:00:00Z",
		"agreement_date": "2000-01-01T00:00:00Z", "token_expires_at": "2100-01-01T00:00:00Z",
		"requested_email": testenv.Email("sneaky"), "has_active_session": false, "ip_address": "203.0.113.9",
		"permissions": []any{map[string]any{"role": "owner"}}, "affiliations": []any{"staff"},
		"identity_provider_name": "evil", "identity_provider_label": "Evil", "identity_provider_management_url": "https://evil.example.com",
		"identity_provider_fields": []any{"first_name"}, "identity_source": "evil", "token": "forged",
	} {
		body[k] = v
	}
	body["last_name"] = "Changed"
	r := env.Do(t, "PUT", path, body, auth(u)...)
	if r.Status != http.StatusOK || r.Str("last_name") != "Changed" {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	after := env.Do(t, "GET", path, nil, auth(u)...).JSON()
	for _, k := range []string{"uuid", "url", "status", "registration_method", "date_joined", "agreement_date", "requested_email",
		"ip_address", "identity_provider_name", "identity_provider_label", "identity_provider_management_url", "identity_source"} {
		if after[k] != before[k] {
			t.Errorf("%s changed: %v -> %v", k, before[k], after[k])
		}
	}
	for _, k := range []string{"permissions", "affiliations", "identity_provider_fields"} {
		if l, _ := after[k].([]any); len(l) != 0 {
			t.Errorf("%s set to %v", k, after[k])
		}
	}
	if after["full_name"] != "Changed" {
		t.Errorf("full_name %v, want derived from the names", after["full_name"])
	}
	if r := env.Do(t, "GET", "/api/users/"+other.UUID, nil, auth(other)...); r.Str("last_name") == "Changed" {
		t.Error("the uuid in the body redirected the write to another user")
	}
}

func TestInputStringBounds(t *testing.T) {
	u := quickUser(t, "bounds")
	path := "/api/users/" + u.UUID
	for _, tc := range []struct {
		field string
		value any
		ok    bool
	}{
		{"first_name", strings.Repeat("a", 100), true}, // Waldur's bounds
		{"first_name", strings.Repeat("a", 101), false},
		{"first_name", strings.Repeat("é", 100), true}, // characters, not bytes
		{"first_name", strings.Repeat("é", 101), false},
		{"last_name", strings.Repeat("b", 101), false},
		{"native_name", strings.Repeat("c", 101), false},
		{"job_title", strings.Repeat("d", 120), true},
		{"job_title", strings.Repeat("d", 121), false},
		{"organization", strings.Repeat("e", 151), false},
		{"phone_number", strings.Repeat("1", 40), true},
		{"phone_number", strings.Repeat("1", 41), false},
		{"civil_number", strings.Repeat("2", 51), false},
		{"preferred_language", strings.Repeat("x", 11), false},
		{"description", strings.Repeat("f", 2000), true},
		{"description", strings.Repeat("f", 2001), false},
		{"image", strings.Repeat("g", 2001), false},
		{"custom_data", map[string]any{"blob": strings.Repeat("h", 16<<10)}, false},
		{"name", strings.Repeat("i", 101), false}, // the UbiOps alias of first_name
	} {
		desc := tc.field + " of " + strconv.Itoa(len([]rune(stringOf(tc.value)))) + " characters"
		if !tc.ok {
			desc += " is refused"
		} else {
			desc += " is accepted"
		}
		t.Run("case="+desc, func(t *testing.T) {
			r := env.Do(t, "PATCH", path, map[string]any{tc.field: tc.value}, auth(u)...)
			if tc.ok {
				if r.Status != http.StatusOK {
					t.Fatalf("got %d %s", r.Status, r.Body)
				}
				return
			}
			m := envelope(t, r, http.StatusBadRequest, "bad_request")
			want := tc.field
			if tc.field == "name" {
				want = "first_name"
			}
			if fieldsOf(m)[want] == nil {
				t.Fatalf("fields should name %s: %s", want, r.Body)
			}
		})
	}
	t.Run("case=strings are trimmed", func(t *testing.T) {
		r := env.Do(t, "PATCH", path, map[string]any{"first_name": "  Ada \t"}, auth(u)...)
		if r.Status != http.StatusOK || r.Str("first_name") != "Ada" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=sign-up applies the same bounds", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("b"), "password": testenv.DefaultPassword, "first_name": strings.Repeat("a", 151)})
		if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["first_name"] == nil {
			t.Fatalf("got %s", r.Body)
		}
	})
}

func stringOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func TestInputEmailNormalisation(t *testing.T) {
	local := "Mixed.Case-" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	email := local + "@Example.COM"
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": "  " + email + "\t", "password": testenv.DefaultPassword})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	// The canonical form (trimmed, lower case) is what is stored and claimed.
	if r.Str("email") != strings.ToLower(email) || r.Str("username") != strings.ToLower(email) {
		t.Fatalf("stored email %q / username %q: want the trimmed lower case of %q", r.Str("email"), r.Str("username"), email)
	}
	id := r.Str("uuid")
	if got := claimHolder(t, "EMAIL#"+strings.ToLower(email)); got != id {
		t.Fatalf("the claim is on the lower-case address? holder %q", got)
	}
	env.Activate(t, email) // an unverified holder would be replaced
	for _, again := range []string{strings.ToLower(email), strings.ToUpper(email), " " + strings.ToUpper(local) + "@example.com "} {
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": again, "password": testenv.DefaultPassword, "username": "x" + strings.ToLower(local)})
		if envelope(t, r, http.StatusBadRequest, "bad_request")["error_description"] != httpapi.DuplicateMessage {
			t.Fatalf("%q: %s", again, r.Body)
		}
	}
	for _, login := range []string{strings.ToLower(email), strings.ToUpper(email), "  " + email + " "} {
		if tok := env.Login(t, login, testenv.DefaultPassword); tok == "" {
			t.Errorf("login %q", login)
		}
	}
	for _, bad := range []string{
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", // 255 characters
		"Ada <ada@example.com>", "ada@example", "ada@@example.com", "ada@example.com, eve@example.com",
	} {
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": bad, "password": testenv.DefaultPassword})
		if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["email"] == nil {
			t.Errorf("%q: %s", bad, r.Body)
		}
	}
}

func TestInputPathParameters(t *testing.T) {
	staff := env.NewStaff(t, "pathstaff", false)
	u := quickUser(t, "pathparam")
	id, _ := uuid.Parse(u.UUID)
	// Every one names u in a form that is not the canonical uuid; staff may
	// see u, so a 404 is the format's doing.
	for _, bad := range []string{
		"not-a-uuid", hex.EncodeToString(id[:]), "urn:uuid:" + u.UUID, "{" + u.UUID + "}", u.UUID + "x",
		u.UUID[:35], "..%2F" + u.UUID, "%20" + u.UUID,
	} {
		for _, rt := range []struct{ method, suffix string }{
			{"GET", ""}, {"PUT", ""}, {"PATCH", ""}, {"DELETE", ""}, {"GET", "/token"}, {"POST", "/refresh_token"},
			{"POST", "/change_email"}, {"POST", "/cancel_change_email"}, {"POST", "/change_password"}, {"POST", "/pull_remote_user"},
		} {
			r := env.Do(t, rt.method, "/api/users/"+bad+rt.suffix, map[string]any{}, auth(staff)...)
			if r.Status != http.StatusNotFound {
				t.Errorf("%s /api/users/%s%s: %d %s", rt.method, bad, rt.suffix, r.Status, r.Body)
			}
		}
	}
	if r := env.Do(t, "GET", "/api/users/"+u.UUID, nil, auth(staff)...); r.Status != http.StatusOK {
		t.Fatalf("the canonical form: %d", r.Status)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != http.StatusOK || r.Str("email") != u.Email {
		t.Fatalf("user still there and untouched: %d %s", r.Status, r.Body)
	}
}

func TestInputPasswordRules(t *testing.T) {
	signUp := func(t *testing.T, body map[string]any) *testenv.Resp {
		t.Helper()
		return env.Do(t, "POST", "/api/users", body)
	}
	for _, tc := range []struct {
		desc string
		// password makes the password from the email and username.
		password func(email, username string) string
		ok       bool
	}{
		{"7 characters are refused", func(_, _ string) string { return "Zq7#mP2" }, false},
		{"8 characters are accepted", func(_, _ string) string { return "Zq7#mP2v" }, true},
		{"256 characters are accepted", func(_, _ string) string { return strings.Repeat("Zq7#mP2v", 32) }, true},
		{"257 characters are refused", func(_, _ string) string { return strings.Repeat("Zq7#mP2v", 32) + "x" }, false},
		{"a common password is refused", func(_, _ string) string { return "iloveyou" }, false},
		{"a common password in other case is refused", func(_, _ string) string { return "TrustNo1" }, false},
		{"the email is refused", func(email, _ string) string { return email }, false},
		{"the email in capitals is refused", func(email, _ string) string { return strings.ToUpper(email) }, false},
		{"the username is refused", func(_, username string) string { return username }, false},
		{"the username in capitals is refused", func(_, username string) string { return strings.ToUpper(username) }, false},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			email := testenv.Email("pwrule")
			username := "pwrule-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
			r := signUp(t, map[string]any{"email": email, "username": username, "password": tc.password(email, username)})
			if tc.ok {
				if r.Status != http.StatusCreated {
					t.Fatalf("got %d %s", r.Status, r.Body)
				}
				return
			}
			if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["password"] == nil {
				t.Fatalf("fields should name password: %s", r.Body)
			}
		})
	}

	t.Run("case=the same rules hold for change_password and reset", func(t *testing.T) {
		u := quickUser(t, "pwchange")
		r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"current_password": u.Password, "new_password": "iloveyou"}, auth(u)...)
		if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["new_password"] == nil {
			t.Fatalf("change_password: %s", r.Body)
		}
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		code := env.CodeFromMail(t, u.Email, "Reset your password")
		r = env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": strings.ToUpper(u.Email)})
		if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["new_password"] == nil {
			t.Fatalf("reset confirm: %s", r.Body)
		}
		env.Login(t, u.Email, u.Password)
	})

	t.Run("case=a password set with a composed é logs in with the decomposed form", func(t *testing.T) {
		composed := "caf\u00e9-Cr\u00e8me-9431"
		decomposed := "cafe\u0301-Cre\u0300me-9431"
		if composed == decomposed {
			t.Fatal("test strings are equal")
		}
		email := testenv.Email("nfkc")
		if r := signUp(t, map[string]any{"email": email, "password": composed}); r.Status != http.StatusCreated {
			t.Fatalf("sign-up: %d %s", r.Status, r.Body)
		}
		env.ActivateWith(t, email, decomposed)
		env.Login(t, email, decomposed)
		env.Login(t, email, composed)
		if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(email, decomposed)); r.Status != http.StatusOK {
			t.Fatalf("Basic with the decomposed form: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": "cafe-Creme-9431"}); r.Status != http.StatusUnauthorized {
			t.Fatalf("without the accents: %d", r.Status)
		}
	})
}
