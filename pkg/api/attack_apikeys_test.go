package api_test

// Attacks on API keys (issue 10, docs/APIKEYS.md). Each test asserts what
// should hold; a failing test is a reproduced finding.

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

// forgeKey is a key of the form the service issues: user, slot, id and
// the random part all chosen by the caller.
func forgeKey(user string, slot byte, id uuid.UUID, random byte) string {
	u := uuid.MustParse(user)
	b := make([]byte, 65)
	copy(b, id[:])
	copy(b[16:], u[:])
	b[32] = slot
	for i := 33; i < len(b); i++ {
		b[i] = random
	}
	return "ak_" + base64.RawURLEncoding.EncodeToString(b)
}

// keyParts reads back the id and slot a key names.
func keyParts(t *testing.T, key string) (uuid.UUID, byte) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, "ak_"))
	if err != nil || len(b) != 65 {
		t.Fatalf("not a key: %q", key)
	}
	id, _ := uuid.FromBytes(b[:16])
	return id, b[32]
}

// TestAttackAPIKeysSurvival: what should end a key ends it, and nothing
// brings it back.
func TestAttackAPIKeysSurvival(t *testing.T) {
	staff := env.NewStaff(t, "atk-key-staff", false)

	t.Run("case=eContext's DISABLED then ENABLED does not revive a key", func(t *testing.T) {
		u := quickUser(t, "atk-key-ecdis")
		k := newKey(t, u, "ec")["key"].(string)
		for _, st := range []string{"DISABLED", "ENABLED"} {
			if r := env.Do(t, "PATCH", "/api/users/user/"+u.UUID, map[string]any{"status": st}, auth(staff)...); r.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", st, r.Status, r.Body)
			}
		}
		if s := keyStatus(t, k); s != http.StatusUnauthorized {
			t.Fatalf("the key after a disable and enable: %d", s)
		}
	})

	t.Run("case=a key works while an email change is pending, and dies once it is confirmed", func(t *testing.T) {
		u := quickUser(t, "atk-key-pending")
		k := newKey(t, u, "pending")["key"].(string)
		to := testenv.Email("atk-key-pending-new")
		if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": to}, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("change_email: %d %s", r.Status, r.Body)
		}
		if s := keyStatus(t, k); s != http.StatusOK {
			t.Fatalf("the key while the change is pending: %d", s)
		}
		code := env.CodeFromMail(t, to, "Confirm your new email")
		// The key cannot confirm it.
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, keyAuth(k)...); r.Status != http.StatusForbidden {
			t.Fatalf("confirm with the key: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
		if s := keyStatus(t, k); s != http.StatusUnauthorized {
			t.Fatalf("the key after the confirmed change: %d", s)
		}
	})

	t.Run("case=a new account with the same email inherits no keys", func(t *testing.T) {
		u := quickUser(t, "atk-key-reborn")
		k := newKey(t, u, "old life")["key"].(string)
		if r := env.Do(t, "DELETE", "/api/users", nil, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		id := env.SignUp(t, u.Email)
		env.Activate(t, u.Email)
		nu := testenv.User{UUID: id, Email: u.Email, Password: testenv.DefaultPassword, Token: env.Login(t, u.Email, testenv.DefaultPassword)}
		if s := keyStatus(t, k); s != http.StatusUnauthorized {
			t.Fatalf("the old account's key after the new sign-up: %d", s)
		}
		if n := len(keysOf(t, nu)); n != 0 {
			t.Fatalf("the new account lists %d keys", n)
		}
		// The old key naming the new account's uuid is a forgery.
		oid, slot := keyParts(t, k)
		if s := keyStatus(t, forgeKey(nu.UUID, slot, oid, 'x')); s != http.StatusUnauthorized {
			t.Fatalf("a forged key for the new account: %d", s)
		}
	})

	t.Run("case=a revoked key stays dead when its slot is reused", func(t *testing.T) {
		u := quickUser(t, "atk-key-slot")
		first := newKey(t, u, "first")
		k := first["key"].(string)
		_, slot := keyParts(t, k)
		if r := env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+first["id"].(string), nil, auth(u)...); r.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		reused := false
		for i := 0; i < 20; i++ { // 20 keys fill every slot, its old one too
			nk := newKey(t, u, "filler")["key"].(string)
			if _, s := keyParts(t, nk); s == slot {
				reused = true
			}
		}
		if !reused {
			t.Fatal("the slot was not reused")
		}
		if s := keyStatus(t, k); s != http.StatusUnauthorized {
			t.Fatalf("the revoked key after its slot was reused: %d", s)
		}
	})

	t.Run("case=a key created for a disabled account by staff is dead once the account is disabled again", func(t *testing.T) {
		u := quickUser(t, "atk-key-dis2")
		k := newKey(t, u, "before")["key"].(string)
		env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": false}, auth(staff)...)
		if s := keyStatus(t, k); s != http.StatusUnauthorized {
			t.Fatalf("a key of a disabled account: %d", s)
		}
	})
}

// TestAttackAPIKeysCannot: the routes that change credentials, in every
// shape they take, refuse a key; a key never turns into the token.
func TestAttackAPIKeysCannot(t *testing.T) {
	u := quickUser(t, "atk-key-cannot")
	target := quickUser(t, "atk-key-cannot-t")
	staff := env.NewStaff(t, "atk-key-cannot-s", false)
	k := newKey(t, u, "limited")["key"].(string)
	sk := newKey(t, staff, "staff limited")["key"].(string)
	form := url.Values{"email": {testenv.Email("atk-key-form")}}.Encode()
	for _, tc := range []struct {
		desc, method, path string
		body               any
		key                string
		hdr                []string
	}{
		{"eContext PATCH of its own email", "PATCH", "/api/users/user/" + u.UUID, map[string]any{"email": testenv.Email("atk-ec-self")}, k, nil},
		{"eContext PATCH of another's email (staff)", "PATCH", "/api/users/user/" + target.UUID, map[string]any{"email": testenv.Email("atk-ec-staff")}, sk, nil},
		{"PUT of another's email (staff)", "PUT", "/api/users/" + target.UUID, map[string]any{"username": "atk" + target.UUID[:8], "email": testenv.Email("atk-put")}, sk, nil},
		{"a form PATCH of another's email (staff)", "PATCH", "/api/users/" + target.UUID, form, sk, []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"eContext DELETE of itself", "DELETE", "/api/users/user/" + u.UUID, nil, k, nil},
		{"eContext DELETE of another (staff)", "DELETE", "/api/users/user/" + target.UUID, nil, sk, nil},
		{"UbiOps DELETE /v2.1/user", "DELETE", "/v2.1/user", nil, k, nil},
		{"see another's token (staff)", "GET", "/api/users/" + target.UUID + "/token", nil, sk, nil},
		{"refresh another's token (staff)", "POST", "/api/users/" + target.UUID + "/refresh_token", nil, sk, nil},
		{"change another's email (staff)", "POST", "/api/users/" + target.UUID + "/change_email", map[string]any{"email": testenv.Email("atk-ce")}, sk, nil},
		{"revoke another's key (staff)", "DELETE", "/api/users/" + u.UUID + "/apikeys/" + keysOf(t, u)[0].(map[string]any)["id"].(string), nil, sk, nil},
	} {
		t.Run("case=an API key cannot "+tc.desc, func(t *testing.T) {
			r := env.Do(t, tc.method, tc.path, tc.body, append(keyAuth(tc.key), tc.hdr...)...)
			if r.Status != http.StatusForbidden {
				t.Fatalf("%d %s, want 403", r.Status, r.Body)
			}
		})
	}
	for _, x := range []testenv.User{u, target} {
		r := env.Do(t, "GET", "/api/users/me", nil, auth(x)...)
		if r.Status != http.StatusOK || r.Str("email") != x.Email {
			t.Errorf("after the refusals, %s: %d %s", x.Email, r.Status, r.Body)
		}
	}

	t.Run("case=no answer to a key shows a token", func(t *testing.T) {
		for _, p := range []string{"/api/users/me", "/api/users/me?field=token", "/api/users/me?field=token,uuid", "/api/users/" + u.UUID, "/api/users/user/" + u.UUID, "/api/users?email=" + url.QueryEscape(u.Email)} {
			r := env.Do(t, "GET", p, nil, keyAuth(k)...)
			if strings.Contains(string(r.Body), u.Token) || strings.Contains(string(r.Body), `"token":"`) && !strings.Contains(string(r.Body), `"token":""`) {
				t.Errorf("GET %s with a key shows a token: %s", p, r.Body)
			}
		}
		r := env.Do(t, "GET", "/api/users/"+target.UUID, nil, keyAuth(sk)...)
		if strings.Contains(string(r.Body), target.Token) {
			t.Errorf("a staff key sees another's token: %s", r.Body)
		}
	})

	t.Run("case=a key is no token, bearer, password or session", func(t *testing.T) {
		for _, h := range []string{"Token " + k, "Bearer " + k, testenv.Basic(u.Email, k), testenv.Basic(k, ""), testenv.Basic(k, u.Password), "Basic " + k, k, "ApiKey " + k, "Api-Key: " + k} {
			r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", h)
			if r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
				t.Errorf("Authorization %.30q…: %d %s", h, r.Status, r.Body)
			}
		}
		for _, h := range []string{"API-KEY " + k, "api-key " + k, "Api-Key   " + k + "  "} {
			if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", h); r.Status != http.StatusOK {
				t.Errorf("Authorization %.30q…: %d %s", h, r.Status, r.Body)
			}
		}
		for _, name := range []string{"sessionid", "__Host-sessionid", "session", "__Host-session", "token"} {
			r := env.Do(t, "GET", "/account/", nil, "Cookie", name+"="+k)
			if r.Status == http.StatusOK && strings.Contains(string(r.Body), u.Email) {
				t.Errorf("the pages take a key as the session (%s): %s", name, r.Body)
			}
		}
	})

	t.Run("case=a key in every shape of Authorization counts toward no lockout of the account", func(t *testing.T) {
		it := userItem(t, u.UUID)
		if attr(it, "failed_logins") != "" || attr(it, "locked_until") != "" {
			t.Logf("failed logins %s (Basic with a wrong password counts, by design)", attr(it, "failed_logins"))
		}
		env.Login(t, u.Email, u.Password)
	})
}

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestAttackAPIKeysOracle: unknown user, unknown slot and wrong secret
// answer alike, and bad keys move no counter.
func TestAttackAPIKeysOracle(t *testing.T) {
	u := quickUser(t, "atk-key-oracle")
	real := newKey(t, u, "real")["key"].(string)
	id, slot := keyParts(t, real)
	emptySlot := (slot + 1) % 20
	cases := map[string]string{
		"unknown user":      forgeKey(uuid.NewString(), slot, id, 'A'),
		"unknown slot":      forgeKey(u.UUID, emptySlot, id, 'A'),
		"wrong secret":      forgeKey(u.UUID, slot, id, 'A'),
		"wrong id":          forgeKey(u.UUID, slot, uuid.New(), 'A'),
		"malformed":         "ak_" + strings.Repeat("A", 87),
		"bad slot":          forgeKey(u.UUID, 200, id, 'A'),
		"last bits changed": real[:len(real)-1] + string(b64url[strings.IndexByte(b64url, real[len(real)-1])^1]),
	}
	var want string
	for desc, k := range cases {
		r := env.Do(t, "GET", "/api/users/me", nil, keyAuth(k)...)
		got := r.Str("error") + "|" + r.Str("error_description")
		if r.Status != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", desc, r.Status, r.Body)
		}
		if want == "" {
			want = got
		} else if got != want {
			t.Errorf("%s answers %q, another %q", desc, got, want)
		}
	}
	if it := userItem(t, u.UUID); attr(it, "failed_logins") != "" || attr(it, "locked_until") != "" {
		t.Errorf("bad keys moved the lockout: %s %s", attr(it, "failed_logins"), attr(it, "locked_until"))
	}
	if keyStatus(t, real) != http.StatusOK {
		t.Error("the real key stopped working")
	}
	logs := env.Logs.String() + env.StreamLogs.String()
	if strings.Contains(logs, strings.TrimPrefix(real, "ak_")) || strings.Contains(logs, secret.Hash(real)) {
		t.Error("the logs carry the key or its hash")
	}
}

// TestAttackAPIKeysMalformedHeaders: no Authorization header is a 500.
func TestAttackAPIKeysMalformedHeaders(t *testing.T) {
	u := quickUser(t, "atk-key-hdr")
	k := newKey(t, u, "hdr")["key"].(string)
	for _, h := range []string{
		"Api-Key", "Api-Key ", "Api-Key ak_", "Api-Key " + strings.Repeat("ak_", 3000), "Api-Key " + k[:len(k)-1] + "é",
		"Api-Key " + strings.Repeat("é", 45), "Api-Key ak_" + strings.Repeat("=", 87), "Api-Key ak_" + strings.Repeat("+", 87),
		"Api-Key " + k + k, "Api-Key " + strings.ToUpper(k), "Api-Key\t" + k, "Api-Kéy " + k, "Basic " + strings.Repeat("A", 20000),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("\xff\xfe:\xff")), "Basic " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 254)+"@x:p")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("é@x.com:"+strings.Repeat("p", 4096))), "Basic " + base64.StdEncoding.EncodeToString([]byte("\x01\x02@x:\x00")),
		"Token " + strings.Repeat("A", 64), "Token " + strings.Repeat("é", 32), "Bearer", "Bearer  ", "ñ ñ", strings.Repeat("x", 7000),
	} {
		r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", h)
		if r.Status != http.StatusUnauthorized || r.Str("error") != "unauthorized_access" {
			t.Errorf("Authorization %.40q…: %d %s", h, r.Status, r.Body)
		}
	}
}

// TestAttackAPIKeysRaces: a key created while a credential change, a
// disable or a delete lands never outlives it, and a use racing a revoke
// brings nothing back.
func TestAttackAPIKeysRaces(t *testing.T) {
	staff := env.NewStaff(t, "atk-key-race-s", false)
	for _, tc := range []struct {
		desc string
		kill func(t *testing.T, u testenv.User) int
	}{
		{"a password change", func(t *testing.T, u testenv.User) int {
			return env.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"current_password": u.Password, "new_password": "raced-Secret-7712"}, auth(u)...).Status
		}},
		{"a staff disable", func(t *testing.T, u testenv.User) int {
			return env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": false}, auth(staff)...).Status
		}},
		{"a delete", func(t *testing.T, u testenv.User) int {
			return env.Do(t, "DELETE", "/api/users", nil, auth(u)...).Status
		}},
	} {
		t.Run("case=keys created during "+tc.desc+" are dead after it", func(t *testing.T) {
			for round := 0; round < 4; round++ {
				u := quickUser(t, "atk-key-race")
				keys := make([]string, 6)
				status := 0
				together(7, func(i int) {
					if i == 6 {
						status = tc.kill(t, u)
						return
					}
					r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "racer"}, auth(u)...)
					if r.Status == http.StatusCreated {
						keys[i] = r.Str("key")
					} else if r.Status >= 500 {
						t.Errorf("create during %s: %d %s", tc.desc, r.Status, r.Body)
					}
				})
				if status >= 300 {
					t.Fatalf("%s: %d", tc.desc, status)
				}
				if tc.desc == "a staff disable" {
					env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"is_active": true}, auth(staff)...)
				}
				for _, k := range keys {
					if k != "" && keyStatus(t, k) != http.StatusUnauthorized {
						t.Errorf("round %d: a key created during %s works after it", round, tc.desc)
					}
				}
			}
		})
	}

	t.Run("case=uses racing a revoke bring the key back", func(t *testing.T) {
		for round := 0; round < 4; round++ {
			u := quickUser(t, "atk-key-race-rv")
			c := newKey(t, u, "revoked")
			k, id := c["key"].(string), c["id"].(string)
			_, slot := keyParts(t, k)
			together(9, func(i int) {
				if i == 8 {
					env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+id, nil, auth(u)...)
					return
				}
				env.Do(t, "GET", "/api/users/me", nil, keyAuth(k)...)
			})
			if keyStatus(t, k) != http.StatusUnauthorized {
				t.Fatalf("round %d: the revoked key works", round)
			}
			for _, it := range scanTable(t) {
				if attr(it, "pk") == "USER#"+u.UUID && strings.HasPrefix(attr(it, "sk"), "APIKEY#") {
					t.Errorf("round %d: an item is left in %s (slot %d): %v", round, attr(it, "sk"), slot, it)
				}
			}
		}
	})

	t.Run("case=creates racing revokes never pass 20", func(t *testing.T) {
		u := quickUser(t, "atk-key-race-lim")
		var ids []string
		for i := 0; i < 20; i++ {
			ids = append(ids, newKey(t, u, "full")["id"].(string))
		}
		var created atomic.Int32
		together(35, func(i int) {
			if i < 5 {
				env.Do(t, "DELETE", "/api/users/"+u.UUID+"/apikeys/"+ids[i], nil, auth(u)...)
				return
			}
			r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "more"}, auth(u)...)
			if r.Status == http.StatusCreated {
				created.Add(1)
			} else if r.Status != http.StatusBadRequest {
				t.Errorf("create: %d %s", r.Status, r.Body)
			}
		})
		if n := len(keysOf(t, u)); n > 20 || n != 15+int(created.Load()) {
			t.Errorf("%d keys after the race (%d created after 5 revokes of 20), want %d and at most 20", n, created.Load(), 15+created.Load())
		}
	})
}

// TestAttackAPIKeysExpiryPastYear9999: an expiry whose offset puts it past
// the year 9999 in UTC (9999-12-31T23:59:59-23:59) is refused as too far,
// rather than stored as a key that no answer can show: the create, the
// list and eContext's user view would answer 500, the key could not be
// revoked (its id never shown) and it would hold its slot for good.
func TestAttackAPIKeysExpiryPastYear9999(t *testing.T) {
	u := quickUser(t, "atk-key-y10k")
	r := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "y10k", "expires_at": "9999-12-31T23:59:59-23:59"}, auth(u)...)
	fields, _ := r.JSON()["fields"].(map[string]any)
	if r.Status != http.StatusBadRequest || fields["expires_at"] == nil {
		t.Errorf("create: %d %s, want 400 naming expires_at", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/"+u.UUID+"/apikeys", nil, auth(u)...); r.Status != http.StatusOK || string(r.Body) != "[]" {
		t.Errorf("list: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/user/"+u.UUID, nil, auth(u)...); r.Status != http.StatusOK {
		t.Errorf("eContext's user view: %d %s", r.Status, r.Body)
	}
	// The latest expiry that is still a date JSON can carry works.
	r = env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "last", "expires_at": "9999-12-31T23:59:59Z"}, auth(u)...)
	if r.Status != http.StatusCreated || r.Str("expires_at") != "9999-12-31T23:59:59Z" {
		t.Errorf("create with the last expiry: %d %s", r.Status, r.Body)
	}
	if keyStatus(t, r.Str("key")) != http.StatusOK {
		t.Error("the key does not work")
	}
}
