package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

// The tests here send each seed client's request as that client sends it
// (method, path, headers, body shape) and read the answer as it reads it.

// ubiOpsHeaders are what UbiOps' Python client (ubiops 4.x) sends on every
// call: its configured token too, even on the sign-up.
func ubiOpsHeaders(token string, body bool) []string {
	h := []string{"Accept", "application/json", "User-Agent", "UbiOps/python/4.12.0", "Authorization", "Token " + token}
	if body {
		h = append(h, "Content-Type", "application/json")
	}
	return h
}

func TestUbiOpsClientV21(t *testing.T) {
	configured := env.NewUser(t, "ubi-cfg") // the token the client is configured with
	t.Run("case=sign-up with only the required fields answers the optional ones as null", func(t *testing.T) {
		email := testenv.Email("ubi21")
		// The client leaves out attributes that are None.
		r := env.Do(t, "POST", "/v2.1/user", `{"email": "`+email+`", "password": "`+testenv.DefaultPassword+`"}`, ubiOpsHeaders(configured.Token, true)...)
		if r.Status != http.StatusCreated {
			t.Fatalf("POST /v2.1/user: %d %s", r.Status, r.Body)
		}
		got := r.JSON()
		if len(got) != 4 || got["email"] != email {
			t.Fatalf("answer is not UserPendingDetail: %s", r.Body)
		}
		for _, k := range []string{"name", "surname", "phone"} {
			if v, ok := got[k]; !ok || v != nil {
				t.Errorf("%s = %#v, want null: %s", k, v, r.Body)
			}
		}
		// It is the self sign-up, not an admin create by the configured user.
		env.Activate(t, email)
		tok := env.Login(t, email, testenv.DefaultPassword)
		me := env.Do(t, "GET", "/api/users/me", nil, auth(testenv.User{Token: tok})...).JSON()
		if me["registration_method"] != "default" {
			t.Errorf("registration_method = %v, want default", me["registration_method"])
		}
		// DELETE /v2.1/user deletes the caller, 204 without a body.
		r = env.Do(t, "DELETE", "/v2.1/user", nil, ubiOpsHeaders(tok, false)...)
		if r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("DELETE /v2.1/user: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users/me", nil, auth(testenv.User{Token: tok})...); r.Status != http.StatusUnauthorized {
			t.Fatalf("token after DELETE /v2.1/user: %d", r.Status)
		}
		if r := env.Do(t, "GET", "/api/users/me", nil, auth(configured)...); r.Status != http.StatusOK {
			t.Fatalf("the configured user was touched: %d", r.Status)
		}
	})
	t.Run("case=sign-up with every field answers them", func(t *testing.T) {
		email := testenv.Email("ubi21full")
		r := env.Do(t, "POST", "/v2.1/user/", map[string]any{"email": email, "password": testenv.DefaultPassword, "name": "User name", "surname": "User surname", "phone": "+999999999"}, ubiOpsHeaders(configured.Token, true)...)
		if r.Status != http.StatusCreated {
			t.Fatalf("POST /v2.1/user/: %d %s", r.Status, r.Body)
		}
		got := r.JSON()
		want := map[string]any{"email": email, "name": "User name", "surname": "User surname", "phone": "+999999999"}
		if len(got) != len(want) {
			t.Errorf("other fields: %s", r.Body)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	})
	t.Run("case=DELETE /v2.1/user without a valid token is 401", func(t *testing.T) {
		r := env.Do(t, "DELETE", "/v2.1/user", nil, ubiOpsHeaders("not-a-token", false)...)
		if r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestApiHubAndEContextName(t *testing.T) {
	email := testenv.Email("apihub")
	username := strings.ToLower(strings.Split(email, "@")[0])
	// ApiHub's documented request.
	r := env.Do(t, "POST", "/api/users", map[string]any{"name": "Alice", "email": email, "username": username, "password": testenv.DefaultPassword})
	if r.Status != http.StatusCreated || r.Str("name") != "Alice" || r.Str("username") != username || r.Str("email") != email {
		t.Fatalf("ApiHub sign-up: %d %s", r.Status, r.Body)
	}
	env.Activate(t, email)
	tok := env.Login(t, email, testenv.DefaultPassword)
	u := testenv.User{UUID: r.Str("uuid"), Token: tok}
	r = env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"last_name": "Smith"}, auth(u)...)
	if r.Status != http.StatusOK || r.Str("name") != "Alice Smith" || r.Str("full_name") != "Alice Smith" || r.Str("first_name") != "Alice" {
		t.Fatalf("name after PATCH: %d %s", r.Status, r.Body)
	}
	// eContext's form, with HTTP Basic auth: name is the full name.
	r = env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(email, testenv.DefaultPassword))
	if r.Status != http.StatusOK || r.Str("name") != "Alice Smith" {
		t.Fatalf("me with Basic: %d %s", r.Status, r.Body)
	}
	r = env.Do(t, "GET", "/api/users?field=name&field=uuid", nil, auth(u)...)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"name":"Alice Smith"`) {
		t.Fatalf("field=name: %d %s", r.Status, r.Body)
	}
	// ApiHub's delete answers the deleted user, name included.
	r = env.Do(t, "DELETE", "/api/users", nil, auth(u)...)
	if r.Status != http.StatusOK || r.Str("name") != "Alice Smith" {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
}

// waldurHeaders are what Waldur's Python client (waldur_api_client, httpx)
// sends: JSON bodies, and the token as Authorization: Token.
func waldurHeaders(token string) []string {
	h := []string{"Accept", "*/*", "User-Agent", "python-httpx/0.28.1"}
	if token != "" {
		h = append(h, "Authorization", "Token "+token)
	}
	return h
}

func TestWaldurAuthRoutes(t *testing.T) {
	u := env.NewUser(t, "waldur-auth")
	username := strings.ToLower(u.Email) // the username when none was chosen
	var token string
	t.Run("case=password with the username answers the user's token", func(t *testing.T) {
		r := env.Do(t, "POST", "/api-auth/password/", map[string]any{"username": username, "password": u.Password}, waldurHeaders("")...)
		if r.Status != http.StatusOK {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		got := r.JSON()
		if len(got) != 1 || r.Str("token") != u.Token {
			t.Fatalf("want {token} with the current token %q: %s", u.Token, r.Body)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
		}
		token = r.Str("token")
	})
	t.Run("case=password with the email works too", func(t *testing.T) {
		r := env.Do(t, "POST", "/api-auth/password", map[string]any{"username": strings.ToUpper(u.Email), "password": u.Password}, waldurHeaders("")...)
		if r.Status != http.StatusOK || r.Str("token") != token {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=a wrong password is 401 and counts toward the lockout", func(t *testing.T) {
		r := env.Do(t, "POST", "/api-auth/password/", map[string]any{"username": username, "password": "wrong-Guess-waldur-1"}, waldurHeaders("")...)
		if r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if n := attr(userItem(t, u.UUID), "failed_logins"); n != "1" {
			t.Errorf("failed_logins = %q, want 1", n)
		}
	})
	t.Run("case=missing fields are 400", func(t *testing.T) {
		r := env.Do(t, "POST", "/api-auth/password/", map[string]any{"username": username}, waldurHeaders("")...)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=logout ends the token", func(t *testing.T) {
		r := env.Do(t, "POST", "/api-auth/logout/", nil, waldurHeaders(token)...)
		if r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users/me/", nil, waldurHeaders(token)...); r.Status != http.StatusUnauthorized {
			t.Fatalf("token after logout: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api-auth/logout/", nil, waldurHeaders(token)...); r.Status != http.StatusUnauthorized {
			t.Fatalf("logout again: %d %s", r.Status, r.Body)
		}
	})
}

func TestWaldurUsersCount(t *testing.T) {
	staff := env.NewStaff(t, "waldur-count", false)
	prefix := "wcount" + strings.ReplaceAll(testenv.Email("x")[2:10], "-", "")
	for i := range 3 {
		email := testenv.Email(prefix + string(rune('a'+i)))
		env.SignUp(t, email)
		env.Activate(t, email) // unverified accounts are not listed
	}
	q := "/api/users/?user_keyword=" + prefix + "&page_size=2"
	get := env.Do(t, "GET", q, nil, waldurHeaders(staff.Token)...)
	if get.Status != http.StatusOK || get.Header.Get("X-Result-Count") != "3" {
		t.Fatalf("GET: %d %v %s", get.Status, get.Header, get.Body)
	}
	head := env.Do(t, "HEAD", q, nil, waldurHeaders(staff.Token)...)
	if head.Status != http.StatusOK || len(head.Body) != 0 {
		t.Fatalf("HEAD: %d %s", head.Status, head.Body)
	}
	for _, h := range []string{"X-Result-Count", "Link"} {
		if head.Header.Get(h) == "" || head.Header.Get(h) != get.Header.Get(h) {
			t.Errorf("HEAD %s = %q, GET's = %q", h, head.Header.Get(h), get.Header.Get(h))
		}
	}
	if r := env.Do(t, "HEAD", "/api/users/", nil, waldurHeaders("")...); r.Status != http.StatusUnauthorized {
		t.Errorf("HEAD without credentials: %d", r.Status)
	}
}

func TestWaldurListFilters(t *testing.T) {
	staff := env.NewStaff(t, "waldur-filters", false)
	prefix := "wfilt" + strings.ReplaceAll(testenv.Email("x")[2:10], "-", "")
	agreed := env.NewUser(t, prefix+"agreed")
	plain := env.NewUser(t, prefix+"plain")
	if r := env.Do(t, "PATCH", "/api/users/"+agreed.UUID+"/", map[string]any{"agree_with_policy": true, "first_name": "Grace", "last_name": "Hopper"}, auth(agreed)...); r.Status != http.StatusOK {
		t.Fatalf("agree: %d %s", r.Status, r.Body)
	}
	list := func(t *testing.T, query string) []string {
		t.Helper()
		r := env.Do(t, "GET", "/api/users/?"+query+"&field=uuid", nil, waldurHeaders(staff.Token)...)
		if r.Status != http.StatusOK {
			t.Fatalf("GET ?%s: %d %s", query, r.Status, r.Body)
		}
		var out []string
		for _, s := range strings.Split(string(r.Body), `"uuid":"`)[1:] {
			out = append(out, s[:36])
		}
		return out
	}
	for _, tc := range []struct {
		desc, query string
		want        []string
	}{
		{desc: "user_keyword matches the email", query: "user_keyword=" + strings.ToUpper(prefix), want: []string{agreed.UUID, plain.UUID}},
		{desc: "user_keyword matches the full name, as a phrase", query: "user_keyword=grace%20hop&username_list=" + strings.ToLower(agreed.Email) + "," + strings.ToLower(plain.Email), want: []string{agreed.UUID}},
		{desc: "agreement_date keeps those who agreed on or after it", query: "user_keyword=" + prefix + "&agreement_date=2000-01-01", want: []string{agreed.UUID}},
		{desc: "agreement_date in the future keeps nobody", query: "user_keyword=" + prefix + "&agreement_date=2999-01-01T00:00:00Z", want: nil},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			got := list(t, tc.query)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("case=a bad agreement_date is 400", func(t *testing.T) {
		r := env.Do(t, "GET", "/api/users/?agreement_date=yesterday", nil, waldurHeaders(staff.Token)...)
		if f, _ := r.JSON()["fields"].(map[string]any); r.Status != http.StatusBadRequest || f["agreement_date"] == nil {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	// The scope filters (docs/GROUPS.md; groups_test.go tests them on real
	// scopes): an unknown scope has no members, roles need a scope.
	for _, p := range []string{"customer_uuid=" + staff.UUID, "project_uuid=" + staff.UUID} {
		t.Run("case=scope filter "+strings.Split(p, "=")[0]+" of an unknown scope is empty", func(t *testing.T) {
			r := env.Do(t, "GET", "/api/users/?"+p, nil, waldurHeaders(staff.Token)...)
			if r.Status != http.StatusOK || r.Header.Get("X-Result-Count") != "0" || strings.TrimSpace(string(r.Body)) != "[]" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
	for _, p := range []string{"organization_roles=owner", "project_roles=admin"} {
		t.Run("case=role filter "+strings.Split(p, "=")[0]+" needs a scope", func(t *testing.T) {
			r := env.Do(t, "GET", "/api/users/?"+p, nil, waldurHeaders(staff.Token)...)
			f, _ := r.JSON()["fields"].(map[string]any)
			if r.Status != http.StatusBadRequest || f["customer_uuid"] == nil {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
}
