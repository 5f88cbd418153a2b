package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

// keyAuth is the Authorization header of an API key.
func keyAuth(key string) []string { return []string{"Authorization", "Api-Key " + key} }

// newKey creates an API key for u with u's token and returns the answer.
func newKey(t *testing.T, u testenv.User, name string) map[string]any {
	t.Helper()
	r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": name}, auth(u)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create key: %d %s", r.Status, r.Body)
	}
	return r.JSON()
}

// keyWorks reports the status of GET /api/users/me with key.
func keyStatus(t *testing.T, key string) int {
	t.Helper()
	return env.Do(t, "GET", "/api/users/me", nil, keyAuth(key)...).Status
}

// keysOf lists u's keys with u's token.
func keysOf(t *testing.T, u testenv.User) []any {
	t.Helper()
	r := env.Do(t, "GET", "/api/users/"+u.UUID+"/apikeys", nil, auth(u)...)
	if r.Status != http.StatusOK {
		t.Fatalf("list keys: %d %s", r.Status, r.Body)
	}
	var list []any
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("list keys: %v: %s", err, r.Body)
	}
	return list
}

func TestAPIKeyLifecycle(t *testing.T) {
	u := quickUser(t, "keys")

	t.Run("case=create answers the key once, list shows it without the secret, revoke ends it at once", func(t *testing.T) {
		exp := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
		r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "  CI deploys ", "expires_at": exp.Format(time.RFC3339)}, auth(u)...)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		c := r.JSON()
		key, _ := c["key"].(string)
		if c["name"] != "CI deploys" || c["id"] == "" || !strings.HasPrefix(key, "ak_") || c["prefix"] == "" || !strings.HasPrefix(key, c["prefix"].(string)) || len(c["prefix"].(string)) >= len(key)/4 {
			t.Fatalf("create answer: %s", r.Body)
		}
		if c["expires_at"] != exp.Format(time.RFC3339) || c["created_at"] == nil {
			t.Errorf("create answer's times: %s, want expires_at %s", r.Body, exp.Format(time.RFC3339))
		}
		list := keysOf(t, u)
		if len(list) != 1 {
			t.Fatalf("list: %v", list)
		}
		k := list[0].(map[string]any)
		if k["id"] != c["id"] || k["prefix"] != c["prefix"] || k["name"] != "CI deploys" || k["last_used_at"] != nil || k["expires_at"] != c["expires_at"] {
			t.Errorf("listed key: %v, created %v", k, c)
		}
		if _, ok := k["key"]; ok {
			t.Errorf("the list shows the secret: %v", k)
		}

		me := env.Do(t, "GET", "/api/users/me", nil, keyAuth(key)...)
		if me.Status != http.StatusOK || me.Str("uuid") != u.UUID {
			t.Fatalf("GET /api/users/me with the key: %d %s", me.Status, me.Body)
		}
		if me.Str("token") != "" || strings.Contains(string(me.Body), u.Token) {
			t.Errorf("an API key was shown the user's token: %s", me.Body)
		}
		if r := env.Do(t, "GET", "/api/users/"+u.UUID, nil, keyAuth(key)...); r.Status != http.StatusOK || r.Str("uuid") != u.UUID {
			t.Errorf("GET /api/users/{uuid} with the key: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users", nil, keyAuth(key)...); r.Status != http.StatusOK || !strings.Contains(string(r.Body), u.UUID) {
			t.Errorf("GET /api/users with the key: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users/"+u.UUID+"/apikeys", nil, keyAuth(key)...); r.Status != http.StatusOK {
			t.Errorf("listing keys with a key: %d %s", r.Status, r.Body)
		}
		k = keysOf(t, u)[0].(map[string]any)
		used, err := time.Parse(time.RFC3339, k["last_used_at"].(string))
		if err != nil || time.Since(used) > time.Minute {
			t.Errorf("last_used_at after a use: %v", k["last_used_at"])
		}
		for _, body := range [][]byte{me.Body, env.Do(t, "GET", "/api/users/"+u.UUID+"/apikeys", nil, auth(u)...).Body,
			env.Do(t, "GET", "/api/users/"+u.UUID, nil, auth(u)...).Body} {
			if strings.Contains(string(body), key) || strings.Contains(string(body), secret.Hash(key)) {
				t.Errorf("an answer after the create shows the key or its hash: %s", body)
			}
		}

		if r := env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+c["id"].(string), nil, auth(u)...); r.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users/me", nil, keyAuth(key)...); r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
			t.Errorf("a revoked key: %d %s", r.Status, r.Body)
		}
		if len(keysOf(t, u)) != 0 {
			t.Error("a revoked key is still listed")
		}
		if r := env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+c["id"].(string), nil, auth(u)...); r.Status != http.StatusNotFound {
			t.Errorf("revoking it again: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=keys are stored only as hashes and never logged", func(t *testing.T) {
		key := newKey(t, u, "hashed")["key"].(string)
		if keyStatus(t, key) != http.StatusOK {
			t.Fatal("the key does not work")
		}
		hashed := false
		for _, it := range scanTable(t) {
			for name := range it {
				if s := attr(it, name); strings.Contains(s, key) || strings.Contains(s, strings.TrimPrefix(key, "ak_")) {
					t.Errorf("the table holds the key in %s of %s/%s", name, attr(it, "pk"), attr(it, "sk"))
				}
			}
			if attr(it, "key_hash") == secret.Hash(key) {
				hashed = true
				if attr(it, "pk") != "USER#"+u.UUID {
					t.Errorf("the key is stored outside its user's partition: %s", attr(it, "pk"))
				}
			}
		}
		if !hashed {
			t.Error("no item holds the key's hash")
		}
		logs := env.Logs.String() + env.StreamLogs.String()
		if strings.Contains(logs, key) || strings.Contains(logs, strings.TrimPrefix(key, "ak_")) || strings.Contains(logs, secret.Hash(key)) {
			t.Error("the logs carry the key or its hash")
		}
	})

	t.Run("case=keys make no account events", func(t *testing.T) {
		before := len(env.EventsOf(t, u.UUID))
		k := newKey(t, u, "quiet")
		keyStatus(t, k["key"].(string))
		env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+k["id"].(string), nil, auth(u)...)
		if after := env.EventsOf(t, u.UUID); len(after) != before {
			t.Errorf("API keys made %d account events: %v", len(after)-before, after[before:])
		}
		if strings.Contains(env.StreamLogs.String(), k["key"].(string)) {
			t.Error("the stream's logs carry the key")
		}
	})

	t.Run("case=eContext's Basic credentials create, list and revoke", func(t *testing.T) {
		basic := []string{"Authorization", testenv.Basic(u.Email, u.Password)}
		r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "basic"}, basic...)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		id := r.Str("id")
		if l := env.Do(t, "GET", "/api/users/"+u.UUID+"/apikeys", nil, basic...); l.Status != http.StatusOK || !strings.Contains(string(l.Body), id) {
			t.Fatalf("list: %d %s", l.Status, l.Body)
		}
		if d := env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+id, nil, basic...); d.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", d.Status, d.Body)
		}
		if keyStatus(t, r.Str("key")) != http.StatusUnauthorized {
			t.Error("the revoked key works")
		}
	})

	t.Run("case=a bad name or expiry is a 400 naming the field", func(t *testing.T) {
		for _, tc := range []struct {
			desc  string
			body  any
			field string
		}{
			{"no name", map[string]any{}, "name"},
			{"blank name", map[string]any{"name": "   "}, "name"},
			{"long name", map[string]any{"name": strings.Repeat("n", 101)}, "name"},
			{"control characters", map[string]any{"name": "a\x07b"}, "name"},
			{"expiry in the past", map[string]any{"name": "x", "expires_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, "expires_at"},
			{"expiry not a date", map[string]any{"name": "x", "expires_at": "tomorrow"}, "expires_at"},
			{"unknown field", map[string]any{"name": "x", "scopes": []string{"all"}}, "scopes"},
		} {
			r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", tc.body, auth(u)...)
			fields, _ := r.JSON()["fields"].(map[string]any)
			if r.Status != http.StatusBadRequest || r.Str("error") != "bad_request" || fields[tc.field] == nil {
				t.Errorf("%s: %d %s, want 400 naming %s", tc.desc, r.Status, r.Body, tc.field)
			}
		}
	})
}

func TestAPIKeyAccess(t *testing.T) {
	owner := quickUser(t, "key-owner")
	other := quickUser(t, "key-other")
	staff := env.NewStaff(t, "key-staff", false)
	support := env.NewStaff(t, "key-support", true)
	k := newKey(t, owner, "owned")
	keys := "/api/users/" + owner.UUID + "/apikeys"
	one := keys + "/" + k["id"].(string)

	for _, tc := range []struct {
		desc, method, path string
		who                testenv.User
		body               any
		want               int
	}{
		{"another user cannot list", "GET", keys, other, nil, http.StatusNotFound},
		{"another user cannot create", "POST", keys, other, map[string]any{"name": "x"}, http.StatusNotFound},
		{"another user cannot revoke", "DELETE", one, other, nil, http.StatusNotFound},
		{"support lists", "GET", keys, support, nil, http.StatusOK},
		{"support cannot create", "POST", keys, support, map[string]any{"name": "x"}, http.StatusForbidden},
		{"support cannot revoke", "DELETE", one, support, nil, http.StatusForbidden},
		{"staff list", "GET", keys, staff, nil, http.StatusOK},
		{"staff create", "POST", keys, staff, map[string]any{"name": "by staff"}, http.StatusCreated},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r := env.Do(t, tc.method, tc.path, tc.body, auth(tc.who)...)
			if r.Status != tc.want {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.want)
			}
			if r.Status == http.StatusOK && !strings.Contains(string(r.Body), k["id"].(string)) {
				t.Errorf("the list lacks the key: %s", r.Body)
			}
		})
	}
	if keyStatus(t, k["key"].(string)) != http.StatusOK {
		t.Fatal("refused calls harmed the key")
	}
	t.Run("case=staff revoke", func(t *testing.T) {
		if r := env.Do(t, "DELETE", one, nil, auth(staff)...); r.Status != http.StatusNoContent {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if keyStatus(t, k["key"].(string)) != http.StatusUnauthorized {
			t.Error("the key works after staff revoked it")
		}
	})
	t.Run("case=a key answers only for its own user", func(t *testing.T) {
		ok := newKey(t, other, "other's")
		if r := env.Do(t, "GET", "/api/users/"+owner.UUID, nil, keyAuth(ok["key"].(string))...); r.Status != http.StatusNotFound {
			t.Errorf("another user's record with a key: %d", r.Status)
		}
		if r := env.Do(t, "GET", keys, nil, keyAuth(ok["key"].(string))...); r.Status != http.StatusNotFound {
			t.Errorf("another user's keys with a key: %d", r.Status)
		}
	})
}

// TestAPIKeyCannotChangeCredentials: every route that changes credentials
// answers 403 to an API key, before it changes anything, and says what to
// use instead.
func TestAPIKeyCannotChangeCredentials(t *testing.T) {
	u := quickUser(t, "key-creds")
	target := quickUser(t, "key-creds-target")
	staff := env.NewStaff(t, "key-creds-staff", false)
	key := newKey(t, u, "limited")
	staffKey := newKey(t, staff, "staff limited")["key"].(string)
	k := key["key"].(string)
	self := "/api/users/" + u.UUID
	for _, tc := range []struct {
		desc, method, path string
		body               any
		key                string
	}{
		{"change password", "POST", self + "/change_password", map[string]any{"current_password": u.Password, "new_password": "another-Secret-8821"}, k},
		{"change email", "POST", self + "/change_email", map[string]any{"email": testenv.Email("key-moved")}, k},
		{"cancel an email change", "POST", self + "/cancel_change_email", nil, k},
		{"confirm an email change", "POST", "/api/users/confirm_email", map[string]any{"code": "x"}, k},
		{"create a key", "POST", self + "/apikeys", map[string]any{"name": "more"}, k},
		{"revoke a key", "DELETE", self + "/apikeys/" + key["id"].(string), nil, k},
		{"see the token", "GET", self + "/token", nil, k},
		{"refresh the token", "POST", self + "/refresh_token", nil, k},
		{"log out", "POST", "/api/auth/logout", nil, k},
		{"log out (Waldur)", "POST", "/api-auth/logout", nil, k},
		{"delete the account (/api/users/{uuid})", "DELETE", self, nil, k},
		{"delete the account (/api/users)", "DELETE", "/api/users", nil, k},
		{"delete the account (/user)", "DELETE", "/user", nil, k},
		{"staff change another's password", "POST", "/api/users/" + target.UUID + "/change_password", map[string]any{"new_password": "another-Secret-8821"}, staffKey},
		{"staff change another's email", "PATCH", "/api/users/" + target.UUID, map[string]any{"email": testenv.Email("key-staff-moved")}, staffKey},
		{"staff delete another", "DELETE", "/api/users/" + target.UUID, nil, staffKey},
		{"staff create a key for another", "POST", "/api/users/" + target.UUID + "/apikeys", map[string]any{"name": "x"}, staffKey},
	} {
		t.Run("case=an API key cannot "+tc.desc, func(t *testing.T) {
			r := env.Do(t, tc.method, tc.path, tc.body, keyAuth(tc.key)...)
			if r.Status != http.StatusForbidden || r.Str("error") != "forbidden" || !strings.Contains(r.Str("error_description"), "API key") {
				t.Fatalf("%d %s, want 403 saying an API key cannot", r.Status, r.Body)
			}
		})
	}
	// Nothing changed: both accounts, their tokens, passwords, emails and the key.
	for _, x := range []testenv.User{u, target} {
		r := env.Do(t, "GET", "/api/users/me", nil, auth(x)...)
		if r.Status != http.StatusOK || r.Str("email") != x.Email || r.Str("requested_email") != "" {
			t.Errorf("after the refusals, %s: %d %s", x.Email, r.Status, r.Body)
		}
		env.Login(t, x.Email, x.Password)
	}
	if len(keysOf(t, u)) != 1 || keyStatus(t, k) != http.StatusOK {
		t.Error("the refusals changed the keys")
	}
	// A staff key still does what changes no credentials.
	if r := env.Do(t, "PATCH", "/api/users/"+target.UUID, map[string]any{"job_title": "Keyed"}, keyAuth(staffKey)...); r.Status != http.StatusOK {
		t.Errorf("a staff key's profile change: %d %s", r.Status, r.Body)
	}
}

func TestAPIKeysDie(t *testing.T) {
	staff := env.NewStaff(t, "key-killer", false)
	for _, tc := range []struct {
		desc string
		kill func(t *testing.T, u testenv.User)
	}{
		{"the user deletes the account", func(t *testing.T, u testenv.User) {
			if r := env.Do(t, "DELETE", "/api/users", nil, auth(u)...); r.Status != http.StatusOK {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
		}},
		{"staff delete the account", func(t *testing.T, u testenv.User) {
			if r := env.Do(t, "DELETE", "/api/users/"+u.UUID, nil, auth(staff)...); r.Status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", r.Status, r.Body)
			}
		}},
		{"staff disable the account (and enable it again)", func(t *testing.T, u testenv.User) {
			if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": false}, auth(staff)...); r.Status != http.StatusOK {
				t.Fatalf("disable: %d %s", r.Status, r.Body)
			}
			if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": true}, auth(staff)...); r.Status != http.StatusOK {
				t.Fatalf("enable: %d %s", r.Status, r.Body)
			}
		}},
		{"the user changes the password", func(t *testing.T, u testenv.User) {
			r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"current_password": u.Password, "new_password": "changed-Secret-4411"}, auth(u)...)
			if r.Status != http.StatusOK {
				t.Fatalf("change password: %d %s", r.Status, r.Body)
			}
		}},
		{"staff set the password", func(t *testing.T, u testenv.User) {
			r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"new_password": "changed-Secret-4411"}, auth(staff)...)
			if r.Status != http.StatusOK {
				t.Fatalf("change password: %d %s", r.Status, r.Body)
			}
		}},
		{"the user resets the password", func(t *testing.T, u testenv.User) {
			env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
			code := env.CodeFromMail(t, u.Email, "Reset your password")
			if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "changed-Secret-4411"}); r.Status != http.StatusOK {
				t.Fatalf("reset: %d %s", r.Status, r.Body)
			}
		}},
		{"the user confirms an email change", func(t *testing.T, u testenv.User) {
			to := testenv.Email("key-new-addr")
			env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": to}, auth(u)...)
			code := env.CodeFromMail(t, to, "Confirm your new email")
			if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...); r.Status != http.StatusOK {
				t.Fatalf("confirm: %d %s", r.Status, r.Body)
			}
		}},
		{"staff change the email", func(t *testing.T, u testenv.User) {
			if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"email": testenv.Email("key-staff-addr")}, auth(staff)...); r.Status != http.StatusOK {
				t.Fatalf("staff email change: %d %s", r.Status, r.Body)
			}
		}},
	} {
		t.Run("case=a key dies when "+tc.desc, func(t *testing.T) {
			u := quickUser(t, "key-dies")
			k := newKey(t, u, "doomed")["key"].(string)
			if keyStatus(t, k) != http.StatusOK {
				t.Fatal("the key does not work")
			}
			tc.kill(t, u)
			if r := env.Do(t, "GET", "/api/users/me", nil, keyAuth(k)...); r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
				t.Fatalf("after it: %d %s, want 401", r.Status, r.Body)
			}
			if r := env.Do(t, "GET", "/api/users/"+u.UUID+"/apikeys", nil, auth(staff)...); r.Status == http.StatusOK && r.Body != nil && strings.Contains(string(r.Body), "doomed") {
				t.Errorf("the dead key is still listed: %s", r.Body)
			}
		})
	}

	t.Run("case=nothing of the keys remains once the user is deleted", func(t *testing.T) {
		u := quickUser(t, "key-cascade")
		newKey(t, u, "one")
		newKey(t, u, "two")
		if r := env.Do(t, "DELETE", "/api/users", nil, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		env.Drain(t)
		for _, it := range scanTable(t) {
			if attr(it, "pk") == "USER#"+u.UUID {
				t.Errorf("left behind: %s/%s", attr(it, "pk"), attr(it, "sk"))
			}
		}
	})

	t.Run("case=an expired key is refused at once and not listed", func(t *testing.T) {
		u := quickUser(t, "key-expiring")
		exp := time.Now().Add(2 * time.Second).UTC()
		r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "brief", "expires_at": exp.Format(time.RFC3339Nano)}, auth(u)...)
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		k := r.Str("key")
		if keyStatus(t, k) != http.StatusOK {
			t.Fatal("the key does not work before its expiry")
		}
		time.Sleep(time.Until(exp) + 100*time.Millisecond)
		if r := env.Do(t, "GET", "/api/users/me", nil, keyAuth(k)...); r.Status != http.StatusUnauthorized || !strings.Contains(r.Str("error_description"), "expired") {
			t.Errorf("an expired key: %d %s", r.Status, r.Body)
		}
		if len(keysOf(t, u)) != 0 {
			t.Error("an expired key is listed")
		}
	})
}

// TestBadAPIKeysLockNothing: a wrong key is a 401 that counts toward no
// lockout, whatever its form.
func TestBadAPIKeysLockNothing(t *testing.T) {
	u := quickUser(t, "key-lock")
	k := newKey(t, u, "real")["key"].(string)
	// The right user, id and slot, another secret: only the hash differs.
	forged := k[:len(k)-10] + strings.Repeat("A", 10)
	for i, bad := range []string{forged, forged, "ak_nonsense", "", strings.Repeat("x", 5000), k + "x", forged, forged, forged, forged, forged} {
		r := env.Do(t, "GET", "/api/users/me", nil, keyAuth(bad)...)
		if r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
			t.Fatalf("bad key %d: %d %s", i, r.Status, r.Body)
		}
	}
	if it := userItem(t, u.UUID); attr(it, "failed_logins") != "" || attr(it, "locked_until") != "" {
		t.Errorf("bad keys counted as failed logins: %s %s", attr(it, "failed_logins"), attr(it, "locked_until"))
	}
	if keyStatus(t, k) != http.StatusOK {
		t.Error("the real key stopped working")
	}
	env.Login(t, u.Email, u.Password)
}

// TestAPIKeyLimitUnderConcurrency: 30 creates at once for one user end with
// exactly 20 keys, and the rest get the 400.
func TestAPIKeyLimitUnderConcurrency(t *testing.T) {
	u := quickUser(t, "key-limit")
	statuses := make([]int, 30)
	bodies := make([]string, 30)
	together(30, func(i int) {
		r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "burst"}, auth(u)...)
		statuses[i], bodies[i] = r.Status, string(r.Body)
	})
	created, refused := 0, 0
	for i, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusBadRequest:
			refused++
			if !strings.Contains(bodies[i], "at most 20") {
				t.Errorf("the refusal: %s", bodies[i])
			}
		default:
			t.Errorf("create %d: %d %s", i, s, bodies[i])
		}
	}
	if created != 20 || refused != 10 {
		t.Fatalf("%d created, %d refused; want 20 and 10", created, refused)
	}
	if n := len(keysOf(t, u)); n != 20 {
		t.Errorf("%d keys listed, want 20", n)
	}
	stored := 0
	for _, it := range scanTable(t) {
		if attr(it, "pk") == "USER#"+u.UUID && strings.HasPrefix(attr(it, "sk"), "APIKEY#") {
			stored++
		}
	}
	if stored != 20 {
		t.Errorf("%d key items stored, want 20", stored)
	}
	r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "one more"}, auth(u)...)
	if r.Status != http.StatusBadRequest {
		t.Errorf("the 21st: %d %s", r.Status, r.Body)
	}
	// A revoked key frees its place.
	id := keysOf(t, u)[0].(map[string]any)["id"].(string)
	env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+id, nil, auth(u)...)
	newKey(t, u, "in its place")
}

// TestAPIKeyRequestBudget: an API-key authenticated read costs one
// BatchGetItem (the user and the key) and, at most once a minute per key,
// the conditional write of last_used_at.
func TestAPIKeyRequestBudget(t *testing.T) {
	u := quickUser(t, "key-budget")
	k := newKey(t, u, "budget")["key"].(string)
	me := func(t *testing.T) {
		if r := env.Do(t, "GET", "/api/users/me", nil, keyAuth(k)...); r.Status != http.StatusOK {
			t.Fatalf("me: %d %s", r.Status, r.Body)
		}
	}
	first := env.Requests.Measure(func() { me(t) })
	if first.Requests > 2+1 || first.ByOp["UpdateItem"] != 1 {
		t.Errorf("first use: %d requests %v, want the read and one write of last_used_at", first.Requests, first.ByOp)
	}
	for i := range 3 {
		got := env.Requests.Measure(func() { me(t) })
		if got.Requests == 0 || got.Requests > 2 || got.ByOp["UpdateItem"] != 0 {
			t.Errorf("use %d within the minute: %d requests %v, budget 2 and no write", i+2, got.Requests, got.ByOp)
		}
		t.Logf("%d requests %v, %.1f capacity units", got.Requests, got.ByOp, got.Capacity)
	}
	list := env.Requests.Measure(func() {
		if r := env.Do(t, "GET", "/api/users", nil, keyAuth(k)...); r.Status != http.StatusOK {
			t.Fatalf("list: %d", r.Status)
		}
	})
	if list.Requests > 2 {
		t.Errorf("a list page with a key: %d requests %v, budget 2", list.Requests, list.ByOp)
	}
	// Staff's list page: its own reads ride in the key's BatchGetItem.
	staff := env.NewStaff(t, "key-budget-staff", false)
	sk := newKey(t, staff, "staff budget")["key"].(string)
	keyStatus(t, sk) // its once-a-minute write of last_used_at
	for _, q := range []string{"?is_active=true&page_size=5", "?email=" + u.Email, "?page_size=5"} {
		got := env.Requests.Measure(func() {
			if r := env.Do(t, "GET", "/api/users"+q, nil, keyAuth(sk)...); r.Status != http.StatusOK {
				t.Fatalf("staff list %s: %d %s", q, r.Status, r.Body)
			}
		})
		if got.Requests > 2 {
			t.Errorf("staff's list page %s with a key: %d requests %v, budget 2", q, got.Requests, got.ByOp)
		}
		t.Logf("list %s: %d requests %v", q, got.Requests, got.ByOp)
	}
}
