package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

// ecUser is the user of an eContext answer.
func ecUser(t *testing.T, r *testenv.Resp) map[string]any {
	t.Helper()
	ec, _ := r.JSON()["econtext"].(map[string]any)
	res, _ := ec["result"].(map[string]any)
	u, _ := res["user"].(map[string]any)
	if u == nil {
		t.Fatalf("no econtext.result.user in %s", r.Body)
	}
	if _, ok := ec["elapsed"].(float64); !ok {
		t.Fatalf("no elapsed in %s", r.Body)
	}
	return u
}

func TestEContextUserRoutes(t *testing.T) {
	staff := env.NewStaff(t, "ecstaff", false)
	support := env.NewStaff(t, "ecsupport", true)

	t.Run("case=an anonymous create is the self sign-up, answered in eContext's shape", func(t *testing.T) {
		email := testenv.Email("ecself")
		r := env.Do(t, "POST", "/api/users/user", map[string]any{"name": "Test User", "email": email, "password": testenv.DefaultPassword, "custom_data": map[string]any{"tier": 2}})
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		u := ecUser(t, r)
		if u["status"] != "UNVERIFIED" || u["username"] != email || u["email"] != email || u["name"] != "Test User" {
			t.Fatalf("user %v", u)
		}
		if u["href"] != env.URL+"/api/users/user/"+u["id"].(string) {
			t.Errorf("href %v", u["href"])
		}
		if cd, _ := u["custom_data"].(map[string]any); cd["tier"] != float64(2) {
			t.Errorf("custom_data %v", u["custom_data"])
		}
		for _, k := range []string{"applications", "groups", "apikeys"} {
			if l, ok := u[k].([]any); !ok || len(l) != 0 {
				t.Errorf("%s: %v", k, u[k])
			}
		}
		if got := userItem(t, u["id"].(string)); attr(got, "registration_method") != "default" {
			t.Errorf("registration_method %q", attr(got, "registration_method"))
		}
		// It activates as any sign-up does.
		env.Activate(t, email)
		tok := env.Login(t, email, testenv.DefaultPassword)
		g := env.Do(t, "GET", "/api/users/user/"+u["id"].(string), nil, "Authorization", "Token "+tok)
		if g.Status != 200 || ecUser(t, g)["status"] != "ENABLED" {
			t.Fatalf("%d %s", g.Status, g.Body)
		}
	})

	t.Run("case=a create with staff's Basic credentials is made by staff", func(t *testing.T) {
		email := testenv.Email("ecbystaff")
		r := env.Do(t, "POST", "/api/users/user", map[string]any{"name": "By Staff", "email": email, "password": testenv.DefaultPassword},
			"Authorization", testenv.Basic(staff.Email, staff.Password))
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		u := ecUser(t, r)
		if u["status"] != "UNVERIFIED" {
			t.Fatalf("user %v", u)
		}
		if got := userItem(t, u["id"].(string)); attr(got, "registration_method") != "admin" {
			t.Errorf("registration_method %q", attr(got, "registration_method"))
		}
	})

	t.Run("case=bad credentials on a create are a 401, and nothing is written", func(t *testing.T) {
		email := testenv.Email("ecbadcred")
		r := env.Do(t, "POST", "/api/users/user", map[string]any{"email": email, "password": testenv.DefaultPassword},
			"Authorization", testenv.Basic(staff.Email, "wrong-Password-123"))
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if claimHolder(t, "EMAIL#"+email) != "" {
			t.Error("the refused create claimed the address")
		}
	})

	for _, tc := range []struct {
		desc string
		body map[string]any
	}{
		{"no password", map[string]any{"email": testenv.Email("ecnopw")}},
		{"an unknown field", map[string]any{"email": testenv.Email("ecunk"), "password": testenv.DefaultPassword, "is_staff": true}},
		{"a status", map[string]any{"email": testenv.Email("ecstatus"), "password": testenv.DefaultPassword, "status": "ENABLED"}},
		{"custom_data that is not an object", map[string]any{"email": testenv.Email("eccd"), "password": testenv.DefaultPassword, "custom_data": []int{1}}},
	} {
		t.Run("case=a create with "+tc.desc+" is a 400", func(t *testing.T) {
			r := env.Do(t, "POST", "/api/users/user", tc.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if claimHolder(t, "EMAIL#"+tc.body["email"].(string)) != "" {
				t.Error("the refused create claimed the address")
			}
		})
	}

	u := env.NewUser(t, "ecuser")
	other := env.NewUser(t, "ecother")
	path := "/api/users/user/" + u.UUID

	t.Run("case=who reads a user", func(t *testing.T) {
		for _, c := range []struct {
			who  testenv.User
			want int
		}{{u, 200}, {staff, 200}, {support, 200}, {other, 404}} {
			r := env.Do(t, "GET", path, nil, auth(c.who)...)
			if r.Status != c.want {
				t.Fatalf("%s: %d %s", c.who.Email, r.Status, r.Body)
			}
			if c.want == 200 && ecUser(t, r)["id"] != u.UUID {
				t.Fatalf("%s", r.Body)
			}
		}
	})

	t.Run("case=PATCH changes the name and custom_data", func(t *testing.T) {
		r := env.Do(t, "PATCH", path, map[string]any{"name": "Ada Lovelace", "custom_data": map[string]any{"k": "v"}}, auth(u)...)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if got := ecUser(t, r); got["name"] != "Ada Lovelace" || got["custom_data"].(map[string]any)["k"] != "v" {
			t.Fatalf("%v", got)
		}
		w := env.Do(t, "GET", "/api/users/"+u.UUID, nil, auth(u)...)
		if w.Str("full_name") != "Ada Lovelace" {
			t.Errorf("the contract's view: %s", w.Body)
		}
	})

	for _, tc := range []struct {
		desc   string
		caller testenv.User
		body   map[string]any
		want   int
	}{
		{"a password", u, map[string]any{"password": "another-Password-99"}, 400},
		{"memberships", u, map[string]any{"applications": []string{}}, 400},
		{"a status other than ENABLED or DISABLED", staff, map[string]any{"status": "UNVERIFIED"}, 400},
		{"a status set by the user themselves", u, map[string]any{"status": "DISABLED"}, 403},
		{"a change by support", support, map[string]any{"name": "X"}, 403},
		{"a change by another user", other, map[string]any{"name": "X"}, 404},
	} {
		t.Run("case=PATCH with "+tc.desc+" is refused", func(t *testing.T) {
			before := userItem(t, u.UUID)
			r := env.Do(t, "PATCH", path, tc.body, auth(tc.caller)...)
			if r.Status != tc.want {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if attr(userItem(t, u.UUID), "version") != attr(before, "version") {
				t.Error("a refused change changed the user")
			}
		})
	}

	t.Run("case=staff disable a user with status", func(t *testing.T) {
		v := env.NewUser(t, "ecdisable")
		r := env.Do(t, "PATCH", "/api/users/user/"+v.UUID, map[string]any{"status": "DISABLED"}, auth(staff)...)
		if r.Status != 200 || ecUser(t, r)["status"] != "DISABLED" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if m := env.Do(t, "GET", "/api/users/me", nil, auth(v)...); m.Status != 401 {
			t.Errorf("the disabled user's token still works: %d", m.Status)
		}
	})

	t.Run("case=DELETE answers with the user as it was, and frees the address", func(t *testing.T) {
		if r := env.Do(t, "DELETE", path, nil, auth(other)...); r.Status != 404 {
			t.Fatalf("another user: %d", r.Status)
		}
		if r := env.Do(t, "DELETE", path, nil, auth(support)...); r.Status != 403 {
			t.Fatalf("support: %d", r.Status)
		}
		r := env.Do(t, "DELETE", path, nil, auth(u)...)
		if r.Status != 200 || ecUser(t, r)["id"] != u.UUID {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if g := env.Do(t, "GET", path, nil, auth(staff)...); g.Status != 404 {
			t.Errorf("read after delete: %d", g.Status)
		}
		if claimHolder(t, "EMAIL#"+u.Email) != "" {
			t.Error("the address is still claimed")
		}
	})
}

func TestEContextUserShowsAPIKeysWithoutSecrets(t *testing.T) {
	u := env.NewUser(t, "eckeys")
	r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "ci"}, auth(u)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	secret := r.Str("key")
	g := env.Do(t, "GET", "/api/users/user/"+u.UUID, nil, auth(u)...)
	if g.Status != 200 {
		t.Fatalf("%d %s", g.Status, g.Body)
	}
	keys, _ := ecUser(t, g)["apikeys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["name"] != "ci" || keys[0].(map[string]any)["prefix"] != r.Str("prefix") {
		t.Fatalf("apikeys %v", ecUser(t, g)["apikeys"])
	}
	if secret == "" || strings.Contains(string(g.Body), secret) {
		t.Fatal("the key's secret is in the user's answer")
	}
	// A key reads the user, but does not change its email.
	k := []string{"Authorization", "Api-Key " + secret}
	if g := env.Do(t, "GET", "/api/users/user/"+u.UUID, nil, k...); g.Status != 200 {
		t.Fatalf("read with the key: %d %s", g.Status, g.Body)
	}
	if p := env.Do(t, "PATCH", "/api/users/user/"+u.UUID, map[string]any{"name": "Keyed"}, k...); p.Status != 200 {
		t.Fatalf("a profile change with the key: %d %s", p.Status, p.Body)
	}
	if d := env.Do(t, "DELETE", "/api/users/user/"+u.UUID, nil, k...); d.Status != http.StatusForbidden {
		t.Fatalf("a delete with the key: %d %s", d.Status, d.Body)
	}
}
