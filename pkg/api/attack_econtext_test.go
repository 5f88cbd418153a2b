package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/example/accounts/pkg/testenv"
)

// Attacks on eContext's user routes (issue 10): POST /api/users/user and
// GET/PATCH/DELETE /api/users/user/{uuid}.

// atkECCreate sends an eContext create for a fresh address with body's
// other fields; it returns the answer and the address.
func atkECCreate(t testing.TB, hdr []string, body map[string]any) (*testenv.Resp, string) {
	t.Helper()
	email := testenv.Email("atkec")
	b := map[string]any{"email": email, "password": testenv.DefaultPassword}
	for k, v := range body {
		b[k] = v
	}
	return env.Do(t, "POST", "/api/users/user", b, hdr...), email
}

// atkContractError checks a refusal carries the contract's error body
// (not eContext's envelope) with code.
func atkContractError(t testing.TB, r *testenv.Resp, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	m := r.JSON()
	if m["error"] != code || m["error_description"] == nil || m["econtext"] != nil {
		t.Fatalf("not the contract's %s body: %s", code, r.Body)
	}
}

// Who may create into which scope: an owner or admin of one application
// reaches neither another application nor a group of another application;
// a group's owner does not reach its application; a member reaches nothing.
func TestAttackEContextCreateIntoForeignScopes(t *testing.T) {
	staff := env.NewStaff(t, "atkecstaff", false)
	support := env.NewStaff(t, "atkecsupport", true)
	appA, appB := atkApp(t, staff, "Atk EC A"), atkApp(t, staff, "Atk EC B")
	grpA, grpB := atkGroup(t, staff, appA, "Atk EC GA"), atkGroup(t, staff, appB, "Atk EC GB")
	ownerA, adminA, memberA, grpOwner := quickUser(t, "atkecownA"), quickUser(t, "atkecadmA"), quickUser(t, "atkecmemA"), quickUser(t, "atkecgown")
	atkGrant(t, staff, "application", appA, ownerA.UUID, "owner")
	atkGrant(t, staff, "application", appA, adminA.UUID, "admin")
	atkGrant(t, staff, "application", appA, memberA.UUID, "member")
	atkGrant(t, staff, "group", grpA, grpOwner.UUID, "owner")

	for _, tc := range []struct {
		desc   string
		caller testenv.User
		body   map[string]any
		want   int
	}{
		{"an owner of A naming B", ownerA, map[string]any{"applications": []string{appB}}, 400},
		{"an owner of A naming a group of B", ownerA, map[string]any{"groups": []string{grpB}}, 400},
		{"an admin of A naming a group of B beside A", adminA, map[string]any{"applications": []string{appA}, "groups": []string{grpB}}, 400},
		{"a member of A naming A", memberA, map[string]any{"applications": []string{appA}}, 400},
		{"a member of A naming a group of A", memberA, map[string]any{"groups": []string{grpA}}, 400},
		{"a group's owner naming its application", grpOwner, map[string]any{"applications": []string{appA}}, 400},
		{"an owner of A naming B's id in another case", ownerA, map[string]any{"applications": []string{strings.ToUpper(appB)}}, 400},
		{"an owner of A naming A twice and B once", ownerA, map[string]any{"applications": []string{appA, strings.ToUpper(appA), appB}}, 400},
		{"an owner of A naming B's group as an application", ownerA, map[string]any{"applications": []string{grpB}}, 400},
		{"support naming A", support, map[string]any{"applications": []string{appA}}, 403},
		{"an owner of A naming nothing", ownerA, map[string]any{}, 403},
		{"an owner of A naming empty lists", ownerA, map[string]any{"applications": []string{}, "groups": []string{}}, 403},
	} {
		t.Run("case="+tc.desc+" is refused and writes nothing", func(t *testing.T) {
			r, email := atkECCreate(t, auth(tc.caller), tc.body)
			code := "bad_request"
			if tc.want == 403 {
				code = "forbidden"
			}
			atkContractError(t, r, tc.want, code)
			if claimHolder(t, "EMAIL#"+email) != "" {
				t.Error("the refused create claimed the address")
			}
		})
	}

	t.Run("case=an owner of A creates into A and its group, as members only", func(t *testing.T) {
		r, _ := atkECCreate(t, auth(ownerA), map[string]any{"applications": []string{appA}, "groups": []string{grpA}})
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		u := ecUser(t, r)
		if u["status"] != "UNVERIFIED" {
			t.Errorf("status %v", u["status"])
		}
		for _, p := range atkPerms(t, staff, u["id"].(string)) {
			if p["role_name"] != "member" {
				t.Errorf("the created account holds %v", p)
			}
		}
		if it := userItem(t, u["id"].(string)); attr(it, "is_staff") == "true" || attr(it, "is_support") == "true" {
			t.Errorf("the created account is staff or support: %v", it)
		}
	})

	t.Run("case=the group's owner creates into the group alone", func(t *testing.T) {
		r, _ := atkECCreate(t, auth(grpOwner), map[string]any{"groups": []string{grpA}})
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

// Fields a create or a PATCH must not take: staff flags, hashes, ids,
// dates, status, memberships on PATCH, in any case of their names.
func TestAttackEContextMassAssignment(t *testing.T) {
	staff := env.NewStaff(t, "atkecmastaff", false)
	for _, extra := range []map[string]any{
		{"is_staff": true}, {"is_support": true}, {"is_active": true}, {"status": "ENABLED"}, {"Status": "ENABLED"},
		{"password_hash": "x"}, {"registration_method": "admin"}, {"cred_epoch": 9}, {"role": "owner"},
		{"username": "chosen"}, // read-only: ignored (the username is the email)
		{"id": "00000000-0000-4000-8000-000000000000", "created_at": "2000-01-01 00:00:00.000000+00:00"},
	} {
		t.Run(fmt.Sprintf("case=create with %v", extra), func(t *testing.T) {
			for _, hdr := range [][]string{nil, auth(staff)} {
				r, email := atkECCreate(t, hdr, extra)
				if r.Status == http.StatusCreated {
					u := ecUser(t, r)
					_, ignored := extra["id"]
					if _, un := extra["username"]; !un && !ignored {
						t.Fatalf("accepted: %s", r.Body)
					}
					if u["status"] != "UNVERIFIED" || u["username"] != email || u["id"] == "00000000-0000-4000-8000-000000000000" || strings.HasPrefix(u["created_at"].(string), "2000") {
						t.Fatalf("a read-only field was taken: %v", u)
					}
					it := userItem(t, u["id"].(string))
					if attr(it, "is_staff") == "true" || attr(it, "status") != "UNVERIFIED" {
						t.Fatalf("stored %v", it)
					}
					continue
				}
				atkContractError(t, r, http.StatusBadRequest, "bad_request")
				if claimHolder(t, "EMAIL#"+email) != "" {
					t.Error("the refused create claimed the address")
				}
			}
		})
	}

	u := quickUser(t, "atkecmau")
	path := "/api/users/user/" + u.UUID
	for _, body := range []map[string]any{
		{"is_staff": true}, {"IS_STAFF": true}, {"status": "ENABLED", "is_active": true}, {"password_hash": "x"},
		{"applications": []string{}}, {"groups": []string{}}, {"Groups": []string{}}, {"password": "another-Password-99"},
		{"email": strings.ToUpper(u.Email)}, {"email": testenv.Email("atkecmanew")}, {"status": "DISABLED"},
		{"registration_method": "admin"}, {"permissions": []any{}},
	} {
		t.Run(fmt.Sprintf("case=self PATCH with %v changes nothing", body), func(t *testing.T) {
			before := userItem(t, u.UUID)
			r := env.Do(t, "PATCH", path, body, auth(u)...)
			if r.Status != http.StatusBadRequest && r.Status != http.StatusForbidden {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if r.JSON()["error"] == nil {
				t.Fatalf("no contract error body: %s", r.Body)
			}
			if attr(userItem(t, u.UUID), "version") != attr(before, "version") {
				t.Error("the refused PATCH changed the user")
			}
		})
	}

	t.Run("case=read-only fields sent back on PATCH are ignored", func(t *testing.T) {
		r := env.Do(t, "PATCH", path, map[string]any{"id": staff.UUID, "username": "someone", "href": "x", "created_at": "2000-01-01 00:00:00.000000+00:00",
			"modified_at": "x", "apikeys": []any{map[string]any{"key": "forged"}}, "name": "Echo"}, auth(u)...)
		if r.Status != http.StatusOK {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got := ecUser(t, r)
		if got["id"] != u.UUID || got["username"] != u.Email || strings.HasPrefix(got["created_at"].(string), "2000") || len(got["apikeys"].([]any)) != 0 {
			t.Fatalf("%v", got)
		}
	})
}

// IDOR: another user's, staff's, or one's own account under other
// spellings of the uuid.
func TestAttackEContextUserIDOR(t *testing.T) {
	staff := env.NewStaff(t, "atkecidstaff", false)
	u, other := quickUser(t, "atkecidu"), quickUser(t, "atkecido")
	for _, id := range []string{
		other.UUID, strings.ToUpper(other.UUID), staff.UUID, "{" + other.UUID + "}", "urn:uuid:" + other.UUID,
		strings.ReplaceAll(other.UUID, "-", ""), other.UUID + "%20", "%20" + other.UUID, other.UUID + "/", "..%2F" + other.UUID,
		"me", "user", "*", strings.Repeat("a", 2000),
	} {
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			t.Run("case="+m+" "+id+" by another user is a 404", func(t *testing.T) {
				var body any
				if m == "PATCH" {
					body = map[string]any{"name": "Owned"}
				}
				before := userItem(t, other.UUID)
				r := env.Do(t, m, "/api/users/user/"+id, body, auth(u)...)
				if r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				if r.JSON()["error"] == nil {
					t.Fatalf("no contract error body: %s", r.Body)
				}
				if attr(userItem(t, other.UUID), "version") != attr(before, "version") || userItem(t, other.UUID) == nil {
					t.Error("the other user changed")
				}
			})
		}
	}
	t.Run("case=one's own uuid in capitals or with a trailing slash is one's own", func(t *testing.T) {
		for _, id := range []string{strings.ToUpper(u.UUID), u.UUID + "/"} {
			r := env.Do(t, "GET", "/api/users/user/"+id, nil, auth(u)...)
			if r.Status != 200 || ecUser(t, r)["id"] != u.UUID {
				t.Fatalf("%s: %d %s", id, r.Status, r.Body)
			}
		}
	})
	t.Run("case=no credentials, bad credentials", func(t *testing.T) {
		for _, h := range [][]string{nil, {"Authorization", "Token nope"}, {"Authorization", testenv.Basic(u.Email, "wrong-Guess-ec-1")}} {
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				r := env.Do(t, m, "/api/users/user/"+u.UUID, nil, h...)
				atkContractError(t, r, http.StatusUnauthorized, "unauthorized_access")
			}
		}
	})
}

// Malformed bodies are 400s (or 413/415) in the contract's body, never a
// 500, and write nothing.
func TestAttackEContextMalformedBodies(t *testing.T) {
	staff := env.NewStaff(t, "atkecmfstaff", false)
	deep := strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001) // past Go's decoder's 10000, within the 64 KiB body
	big := `{"k":"` + strings.Repeat("x", 17*1024) + `"}`
	for _, tc := range []struct {
		desc, custom string
		want         int
	}{
		{"custom_data with invalid UTF-8", "{\"k\":\"\xff\xfe\"}", 400},
		{"custom_data with a lone surrogate escape", `{"k":"\ud800"}`, 201},
		{"custom_data with a NUL escape", `{"k":"\u0000"}`, 201},
		{"custom_data nested 10001 deep", deep, 400},
		{"custom_data nested 60 deep", strings.Repeat(`{"a":`, 60) + "1" + strings.Repeat("}", 60), 201},
		{"custom_data past 16 KiB", big, 400},
		{"custom_data a string", `"x"`, 400},
		{"custom_data a number", `1e400`, 400},
		{"custom_data an array", `[{}]`, 400},
		{"custom_data true", `true`, 400},
	} {
		t.Run("case=create with "+tc.desc, func(t *testing.T) {
			email := testenv.Email("atkecmf")
			body := `{"email":"` + email + `","password":"` + testenv.DefaultPassword + `","custom_data":` + tc.custom + `}`
			r := env.Do(t, "POST", "/api/users/user", body)
			if r.Status != tc.want {
				t.Fatalf("%d, want %d: %.300s", r.Status, tc.want, r.Body)
			}
			if tc.want != 201 {
				if r.JSON()["error"] == nil {
					t.Fatalf("no contract error body: %.300s", r.Body)
				}
				if claimHolder(t, "EMAIL#"+email) != "" {
					t.Error("the refused create claimed the address")
				}
				return
			}
			u := ecUser(t, r)
			g := env.Do(t, "GET", "/api/users/user/"+u["id"].(string), nil, auth(staff)...)
			if g.Status != 200 || !utf8.Valid(g.Body) || !utf8.Valid(r.Body) {
				t.Fatalf("reading it back: %d %.300q", g.Status, g.Body)
			}
		})
	}

	u := quickUser(t, "atkecmfu")
	for _, body := range []string{
		`{"name": 5}`, `{"name": ["a"]}`, `{"email": {}}`, `{"custom_data": "{}"}`, `{"status": true}`,
		`{"applications": "x"}`, `{"groups": [1]}`, `[]`, `null`, `"x"`, `{`, `{"name":"a"}{"name":"b"}`,
		`{"name": "` + strings.Repeat("é", 5000) + `"}`, "{\"name\": \"\xff\"}", `{"custom_data": ` + deep + `}`,
		"{\"custom_data\": {\"k\": \"\xc3\x28\"}}", `{"name": "\ud83d"}`,
	} {
		t.Run(fmt.Sprintf("case=PATCH with %.40q", body), func(t *testing.T) {
			r := env.Do(t, "PATCH", "/api/users/user/"+u.UUID, body, auth(u)...)
			if r.Status >= 500 {
				t.Fatalf("%d %.300s", r.Status, r.Body)
			}
			if r.Status != 200 && r.JSON()["error"] == nil {
				t.Fatalf("no contract error body: %d %.300s", r.Status, r.Body)
			}
			if g := env.Do(t, "GET", "/api/users/user/"+u.UUID, nil, auth(u)...); g.Status != 200 {
				t.Fatalf("reading it back: %d %.300s", g.Status, g.Body)
			}
		})
	}
	for _, body := range []string{
		`{"email": 5, "password": "x"}`, `{"email": "a@b.c", "password": 12345678}`, `{"applications": {"a": 1}}`,
		`{"groups": "all"}`, `[]`, `null`, `{"applications": [null]}`, `{"applications": [["x"]]}`,
	} {
		t.Run(fmt.Sprintf("case=create with %.40q", body), func(t *testing.T) {
			for _, h := range [][]string{nil, auth(staff)} {
				r := env.Do(t, "POST", "/api/users/user", body, h...)
				atkContractError(t, r, http.StatusBadRequest, "bad_request")
			}
		})
	}
	t.Run("case=invalid UTF-8 in an application's or a form's custom_data is a 400", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/applications/application", "{\"name\":\"Atk EC utf8\",\"custom_data\":{\"k\":\"\xff\"}}", auth(staff)...)
		atkContractError(t, r, http.StatusBadRequest, "bad_request")
		f := env.Do(t, "PATCH", "/api/users/"+u.UUID, "custom_data=%7B%22k%22%3A%22%FF%22%7D", append(auth(u), "Content-Type", "application/x-www-form-urlencoded")...)
		atkContractError(t, f, http.StatusBadRequest, "bad_request")
	})
	t.Run("case=a form body is a 415", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/users/user", "email=a@b.c&password=x", "Content-Type", "application/x-www-form-urlencoded")
		atkContractError(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
}

// Secrets never in the eContext answers: no password, hash, token, code
// or API key secret, on create, read, PATCH and DELETE.
func TestAttackEContextNoSecretsInAnswers(t *testing.T) {
	staff := env.NewStaff(t, "atkecsecstaff", false)
	pw := "orchid-Bicycle-58-harbour"
	email := testenv.Email("atkecsec")
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"email": email, "password": pw}, auth(staff)...)
	if r.Status != 201 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	id := ecUser(t, r)["id"].(string)
	env.ActivateWith(t, email, pw)
	tok := env.Login(t, email, pw)
	k := env.Do(t, "POST", "/api/users/"+id+"/apikeys", map[string]any{"name": "ci"}, "Authorization", "Token "+tok)
	if k.Status != 201 {
		t.Fatalf("%d %s", k.Status, k.Body)
	}
	key := k.Str("key")
	item := userItem(t, id)
	hash := attr(item, "password_hash")
	answers := []*testenv.Resp{r,
		env.Do(t, "GET", "/api/users/user/"+id, nil, "Authorization", "Token "+tok),
		env.Do(t, "GET", "/api/users/user/"+id, nil, auth(staff)...),
		env.Do(t, "GET", "/api/users/user/"+id, nil, "Authorization", testenv.Basic(email, pw)),
		env.Do(t, "GET", "/api/users/user/"+id, nil, "Authorization", "Api-Key "+key),
		env.Do(t, "PATCH", "/api/users/user/"+id, map[string]any{"name": "S"}, "Authorization", "Token "+tok),
		env.Do(t, "DELETE", "/api/users/user/"+id, nil, "Authorization", "Token "+tok),
	}
	for i, a := range answers {
		if a.Status >= 300 {
			t.Fatalf("answer %d: %d %s", i, a.Status, a.Body)
		}
		for _, s := range []string{pw, key, tok, `"password`, `"key"`, `"token"`, "hash"} {
			if s != "" && strings.Contains(string(a.Body), s) {
				t.Errorf("answer %d carries %q: %s", i, s, a.Body)
			}
		}
		if hash != "" && strings.Contains(string(a.Body), hash) {
			t.Errorf("answer %d carries the hash", i)
		}
	}
}

// API keys on eContext's routes: they create and read, but never delete an
// account or change its email, whoever's key it is; staff's key disabling
// another account is a profile change the contract's PATCH allows too.
func TestAttackEContextAPIKeys(t *testing.T) {
	staff := env.NewStaff(t, "atkeckeystaff", false)
	sk := env.Do(t, "POST", "/api/users/"+staff.UUID+"/apikeys", map[string]any{"name": "staff ci"}, auth(staff)...)
	if sk.Status != 201 {
		t.Fatalf("%d %s", sk.Status, sk.Body)
	}
	staffKey := []string{"Authorization", "Api-Key " + sk.Str("key")}
	u := quickUser(t, "atkeckeyu")
	uk := env.Do(t, "POST", "/api/users/"+u.UUID+"/apikeys", map[string]any{"name": "mine"}, auth(u)...)
	if uk.Status != 201 {
		t.Fatalf("%d %s", uk.Status, uk.Body)
	}
	userKey := []string{"Authorization", "Api-Key " + uk.Str("key")}

	for _, tc := range []struct {
		desc   string
		method string
		target string
		body   map[string]any
		hdr    []string
	}{
		{"a user's key deleting its user", "DELETE", u.UUID, nil, userKey},
		{"a user's key deleting its user, in capitals with a slash", "DELETE", strings.ToUpper(u.UUID) + "/", nil, userKey},
		{"staff's key deleting a user", "DELETE", u.UUID, nil, staffKey},
		{"staff's key deleting staff", "DELETE", staff.UUID, nil, staffKey},
		{"a user's key changing its email", "PATCH", u.UUID, map[string]any{"email": testenv.Email("atkeckeynew")}, userKey},
		{"staff's key changing a user's email", "PATCH", u.UUID, map[string]any{"email": testenv.Email("atkeckeynew2")}, staffKey},
		{"staff's key changing a user's email in another case", "PATCH", u.UUID, map[string]any{"email": strings.ToUpper(u.Email)}, staffKey},
		{"a user's key changing its password", "PATCH", u.UUID, map[string]any{"password": "another-Password-99"}, userKey},
	} {
		t.Run("case="+tc.desc+" is refused", func(t *testing.T) {
			before := userItem(t, strings.ToLower(strings.TrimSuffix(tc.target, "/")))
			var body any
			if tc.body != nil {
				body = tc.body
			}
			r := env.Do(t, tc.method, "/api/users/user/"+tc.target, body, tc.hdr...)
			if r.Status != http.StatusForbidden && r.Status != http.StatusBadRequest {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if r.JSON()["error"] == nil {
				t.Fatalf("no contract error body: %s", r.Body)
			}
			after := userItem(t, strings.ToLower(strings.TrimSuffix(tc.target, "/")))
			if after == nil || attr(after, "version") != attr(before, "version") || attr(after, "email") != attr(before, "email") {
				t.Error("the refused request changed the account")
			}
		})
	}

	t.Run("case=the same through the contract's routes is refused too", func(t *testing.T) {
		if r := env.Do(t, "DELETE", "/api/users/"+u.UUID, nil, userKey...); r.Status != http.StatusForbidden {
			t.Errorf("DELETE /api/users/{uuid} with the key: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "DELETE", "/api/users", nil, userKey...); r.Status != http.StatusForbidden {
			t.Errorf("DELETE /api/users with the key: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"email": testenv.Email("atkeckeyc")}, staffKey...); r.Status != http.StatusForbidden {
			t.Errorf("PATCH email with staff's key: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=staff's key creates an account, which starts UNVERIFIED", func(t *testing.T) {
		r, _ := atkECCreate(t, staffKey, nil)
		if r.Status != 201 || ecUser(t, r)["status"] != "UNVERIFIED" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("case=a plain user's key creates nothing", func(t *testing.T) {
		r, email := atkECCreate(t, userKey, nil)
		atkContractError(t, r, http.StatusForbidden, "forbidden")
		if claimHolder(t, "EMAIL#"+email) != "" {
			t.Error("claimed")
		}
	})

	t.Run("case=the key's own user reads itself and its keys without secrets", func(t *testing.T) {
		r := env.Do(t, "GET", "/api/users/user/"+u.UUID, nil, userKey...)
		if r.Status != 200 || strings.Contains(string(r.Body), uk.Str("key")) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users/user/"+staff.UUID, nil, userKey...); r.Status != 404 {
			t.Fatalf("another's account with a key: %d %s", r.Status, r.Body)
		}
	})
}

// Basic credentials on the create: a wrong password is a 401 that counts
// toward the lockout and never falls back to a self sign-up; a locked,
// unverified or disabled account's credentials create nothing, even with a
// manager's grant.
func TestAttackEContextBasicCredentials(t *testing.T) {
	staff := env.NewStaff(t, "atkecbstaff", false)
	app := atkApp(t, staff, "Atk EC Basic")
	owner := quickUser(t, "atkecbown")
	atkGrant(t, staff, "application", app, owner.UUID, "owner")
	body := map[string]any{"applications": []string{app}}

	t.Run("case=wrong passwords lock the owner out of the create", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			r, email := atkECCreate(t, []string{"Authorization", testenv.Basic(owner.Email, fmt.Sprintf("wrong-Guess-%d-xx", i))}, body)
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusTooManyRequests {
				t.Fatalf("attempt %d: %d %s", i, r.Status, r.Body)
			}
			if claimHolder(t, "EMAIL#"+email) != "" {
				t.Fatal("a refused create claimed the address")
			}
		}
		if n := attr(userItem(t, owner.UUID), "failed_logins"); n != "5" {
			t.Errorf("failed_logins %q after five wrong Basic passwords", n)
		}
		r, email := atkECCreate(t, []string{"Authorization", testenv.Basic(owner.Email, owner.Password)}, body)
		if r.Status == http.StatusCreated || claimHolder(t, "EMAIL#"+email) != "" {
			t.Fatalf("the locked account created: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=an UNVERIFIED owner's credentials create nothing", func(t *testing.T) {
		email := testenv.Email("atkecbunv")
		id := env.SignUp(t, email)
		atkGrant(t, staff, "application", app, id, "owner")
		r, created := atkECCreate(t, []string{"Authorization", testenv.Basic(email, testenv.DefaultPassword)}, body)
		atkContractError(t, r, http.StatusUnauthorized, "unauthorized_access")
		if claimHolder(t, "EMAIL#"+created) != "" {
			t.Error("claimed")
		}
	})

	t.Run("case=a DISABLED owner's credentials create nothing", func(t *testing.T) {
		d := quickUser(t, "atkecbdis")
		atkGrant(t, staff, "application", app, d.UUID, "admin")
		if r := env.Do(t, "PATCH", "/api/users/user/"+d.UUID, map[string]any{"status": "DISABLED"}, auth(staff)...); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		for _, h := range []string{testenv.Basic(d.Email, d.Password), "Token " + d.Token} {
			r, created := atkECCreate(t, []string{"Authorization", h}, body)
			atkContractError(t, r, http.StatusUnauthorized, "unauthorized_access")
			if claimHolder(t, "EMAIL#"+created) != "" {
				t.Error("claimed")
			}
		}
	})

	t.Run("case=an expired owner grant creates nothing", func(t *testing.T) {
		e := quickUser(t, "atkecbexp")
		exp := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
		if r := atkMember(t, staff, "application", app, "add_user", map[string]any{"user": e.UUID, "role": "owner", "expiration_time": exp}); r.Status != 201 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		time.Sleep(3 * time.Second)
		r, created := atkECCreate(t, auth(e), body)
		atkContractError(t, r, http.StatusBadRequest, "bad_request")
		if claimHolder(t, "EMAIL#"+created) != "" {
			t.Error("claimed")
		}
	})
}

// Staff enabling (status ENABLED) an UNVERIFIED account through eContext's
// PATCH leaves the creator's password unusable, as the contract's PATCH
// is_active does (TestAttackStaffActivationKeepsTheSquattersPassword): an
// owner who created an account for someone else's address cannot log in
// to it once staff enable it "for the person".
func TestAttackEContextStaffEnableKeepsNoCreatorPassword(t *testing.T) {
	staff := env.NewStaff(t, "atkecenstaff", false)
	app := atkApp(t, staff, "Atk EC Enable")
	owner := quickUser(t, "atkecenown")
	atkGrant(t, staff, "application", app, owner.UUID, "owner")
	const chosen = "creator-Chosen-5521-pw"
	victim := testenv.Email("atkecenvictim")
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"email": victim, "password": chosen, "applications": []string{app}}, auth(owner)...)
	if r.Status != 201 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	id := ecUser(t, r)["id"].(string)
	if p := env.Do(t, "PATCH", "/api/users/user/"+id, map[string]any{"status": "ENABLED"}, auth(staff)...); p.Status != 200 || ecUser(t, p)["status"] != "ENABLED" {
		t.Fatalf("%d %s", p.Status, p.Body)
	}
	if l := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": victim, "password": chosen}); l.Status == http.StatusOK {
		t.Errorf("the creator logs in to the account staff enabled with the password they chose")
	}
	if b := env.Do(t, "GET", "/api/users/user/"+id, nil, "Authorization", testenv.Basic(victim, chosen)); b.Status == http.StatusOK {
		t.Errorf("the creator reads the account over Basic with the password they chose")
	}
}

// atkOrphanGrants lists, once the stream has run, the grants (both sides)
// whose user or scope is gone, among the users and scopes named.
func atkOrphanGrants(t testing.TB, userIDs, scopeIDs []string) []string {
	t.Helper()
	env.Drain(t)
	watched := map[string]bool{}
	for _, id := range append(slices.Clone(userIDs), scopeIDs...) {
		watched[id] = true
	}
	items := scanTable(t)
	exists := map[string]bool{}
	for _, it := range items {
		pk, sk := attr(it, "pk"), attr(it, "sk")
		if strings.HasPrefix(pk, "USER#") && sk == "USER" {
			exists[strings.TrimPrefix(pk, "USER#")] = true
		}
		if strings.HasPrefix(pk, "SCOPE#") && sk == "#SCOPE" {
			exists[strings.TrimPrefix(pk, "SCOPE#")] = true
		}
	}
	var out []string
	for _, it := range items {
		pk, sk := attr(it, "pk"), attr(it, "sk")
		var user, scope string
		switch {
		case strings.HasPrefix(pk, "SCOPE#") && (strings.HasPrefix(sk, "M#") || strings.HasPrefix(sk, "N#")):
			scope = strings.TrimPrefix(pk, "SCOPE#")
			user, _, _ = strings.Cut(sk[2:], "#")
		case strings.HasPrefix(pk, "GRANTS#"):
			user = strings.TrimPrefix(pk, "GRANTS#")
		default:
			continue
		}
		if !watched[user] && !watched[scope] {
			continue
		}
		if !exists[user] || (scope != "" && !exists[scope]) {
			out = append(out, pk+" "+sk)
		}
	}
	return out
}

// One address, many creates at once (eContext's with memberships, the
// contract's, anonymous and by staff): one account holds the address, and
// the grants of every replaced one go with it.
func TestAttackEContextEmailRace(t *testing.T) {
	staff := env.NewStaff(t, "atkecracestaff", false)
	var apps []string
	for i := range 3 {
		apps = append(apps, atkApp(t, staff, fmt.Sprintf("Atk EC race %d", i)))
	}
	for round := range 2 {
		email := testenv.Email("atkecrace")
		statuses := make([]int, 7)
		ids := make([]string, 7)
		together(7, func(i int) {
			var r *testenv.Resp
			switch {
			case i < 3:
				r = env.Do(t, "POST", "/api/users/user", map[string]any{"email": email, "password": testenv.DefaultPassword, "applications": []string{apps[i]}}, auth(staff)...)
				if r.Status == 201 {
					ids[i] = ecUser(t, r)["id"].(string)
				}
			case i < 5:
				r = env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword})
				ids[i] = r.Str("uuid")
			case i == 5:
				r = env.Do(t, "POST", "/api/users/user", map[string]any{"email": strings.ToUpper(email), "password": testenv.DefaultPassword})
				if r.Status == 201 {
					ids[i] = ecUser(t, r)["id"].(string)
				}
			default:
				r = env.Do(t, "POST", "/api/users", map[string]any{"email": email, "username": fmt.Sprintf("atkecrace%d%d", round, time.Now().UnixNano()%1e6)}, auth(staff)...)
				ids[i] = r.Str("uuid")
			}
			statuses[i] = r.Status
		})
		for i, s := range statuses {
			if s >= 500 || (s != 201 && s != 400 && s != 409 && s != 429) {
				t.Errorf("round %d request %d: %d", round, i, s)
			}
		}
		holder := claimHolder(t, "EMAIL#"+email)
		if holder == "" || userItem(t, holder) == nil {
			t.Fatalf("round %d: the address is held by %q (statuses %v)", round, holder, statuses)
		}
		var live []string
		for _, id := range ids {
			if id != "" && userItem(t, id) != nil {
				live = append(live, id)
			}
		}
		if len(live) != 1 || live[0] != holder {
			t.Errorf("round %d: accounts alive %v, holder %s (statuses %v)", round, live, holder, statuses)
		}
		var created []string
		for _, id := range ids {
			if id != "" {
				created = append(created, id)
			}
		}
		if o := atkOrphanGrants(t, created, apps); len(o) > 0 {
			t.Errorf("round %d: grants of replaced accounts remain: %v", round, o)
		}
	}
	auditClaims(t)

	t.Run("case=an activated address: every create is a duplicate, and joins nothing", func(t *testing.T) {
		u := quickUser(t, "atkecracetaken")
		statuses := make([]int, 4)
		together(4, func(i int) {
			body := map[string]any{"email": u.Email, "password": testenv.DefaultPassword}
			var h []string
			if i%2 == 0 {
				h, body["applications"] = auth(staff), []string{apps[i/2]}
			}
			statuses[i] = env.Do(t, "POST", "/api/users/user", body, h...).Status
		})
		for i, s := range statuses {
			if s != http.StatusBadRequest && s != http.StatusTooManyRequests {
				t.Errorf("create %d: %d", i, s)
			}
		}
		if claimHolder(t, "EMAIL#"+u.Email) != u.UUID {
			t.Error("the address moved")
		}
		if ps := atkPerms(t, staff, u.UUID); len(ps) != 0 {
			t.Errorf("the activated account joined: %v", ps)
		}
	})
}

// An account deleted and created again with the same address is a new
// account: none of the old one's memberships come back, through eContext's
// view or Waldur's permissions, and the scopes' member lists drop it.
func TestAttackEContextDeleteThenRecreate(t *testing.T) {
	staff := env.NewStaff(t, "atkecdrstaff", false)
	app := atkApp(t, staff, "Atk EC recreate")
	grp := atkGroup(t, staff, app, "Atk EC recreate group")
	owner := quickUser(t, "atkecdrown")
	atkGrant(t, staff, "application", app, owner.UUID, "owner")
	atkGrant(t, staff, "group", grp, owner.UUID, "owner")
	email := testenv.Email("atkecdr")
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"email": email, "password": testenv.DefaultPassword, "applications": []string{app}, "groups": []string{grp}}, auth(owner)...)
	if r.Status != 201 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	old := ecUser(t, r)["id"].(string)
	env.Activate(t, email)
	tok := env.Login(t, email, testenv.DefaultPassword)
	if d := env.Do(t, "DELETE", "/api/users/user/"+old, nil, "Authorization", "Token "+tok); d.Status != 200 {
		t.Fatalf("%d %s", d.Status, d.Body)
	}
	// Re-created at once, before the stream has swept the old grants.
	for _, via := range []string{"eContext", "contract"} {
		var id string
		if via == "eContext" {
			n := env.Do(t, "POST", "/api/users/user", map[string]any{"email": email, "password": testenv.DefaultPassword})
			if n.Status != 201 {
				t.Fatalf("%d %s", n.Status, n.Body)
			}
			id = ecUser(t, n)["id"].(string)
		} else {
			id = env.SignUp(t, email)
		}
		if id == old {
			t.Fatal("the new account has the old id")
		}
		g := env.Do(t, "GET", "/api/users/user/"+id, nil, auth(staff)...)
		u := ecUser(t, g)
		if len(u["applications"].([]any)) != 0 || len(u["groups"].([]any)) != 0 {
			t.Errorf("%s: the new account shows the old memberships: %v", via, u)
		}
		if ps := atkPerms(t, staff, id); len(ps) != 0 {
			t.Errorf("%s: the new account holds %v", via, ps)
		}
	}
	if g := env.Do(t, "GET", "/api/users/user/"+old, nil, auth(staff)...); g.Status != 404 {
		t.Errorf("the old account reads: %d", g.Status)
	}
	if o := atkOrphanGrants(t, []string{old}, nil); len(o) > 0 {
		t.Errorf("the old account's grants remain: %v", o)
	}
	l := env.Do(t, "GET", atkPath("application")+"/"+app+"/list_users", nil, auth(owner)...)
	if strings.Contains(string(l.Body), old) {
		t.Errorf("list_users still shows the deleted account: %s", l.Body)
	}
	if g := env.Do(t, "GET", atkPath("application")+"/"+app, nil, auth(owner)...); g.Status != 200 {
		t.Errorf("the application (which its owner still holds) went with the member: %d", g.Status)
	}
}

// One bad or foreign id among many valid ones writes nothing: no account,
// no claim, and none of the valid scopes' grants.
func TestAttackEContextOneBadScopeAmongMany(t *testing.T) {
	staff := env.NewStaff(t, "atkecbadstaff", false)
	owner := quickUser(t, "atkecbadown")
	var apps, grps []string
	for i := range 4 {
		a := atkApp(t, staff, fmt.Sprintf("Atk EC bad %d", i))
		atkGrant(t, staff, "application", a, owner.UUID, "owner")
		apps = append(apps, a)
		grps = append(grps, atkGroup(t, owner, a, fmt.Sprintf("Atk EC bad g%d", i)))
	}
	foreign := atkApp(t, staff, "Atk EC bad foreign")
	foreignGrp := atkGroup(t, staff, foreign, "Atk EC bad foreign g")
	before := atkOrphanGrants(t, nil, nil)
	count := func() int {
		n := 0
		for _, it := range scanTable(t) {
			pk, sk := attr(it, "pk"), attr(it, "sk")
			for _, s := range append(slices.Clone(apps), grps...) {
				if pk == "SCOPE#"+s && (strings.HasPrefix(sk, "M#") || strings.HasPrefix(sk, "N#")) {
					n++
				}
			}
		}
		return n
	}
	grants := count()
	for _, tc := range []struct {
		desc string
		body map[string]any
	}{
		{"a foreign application last", map[string]any{"applications": append(slices.Clone(apps), foreign), "groups": grps}},
		{"a foreign group first", map[string]any{"applications": apps, "groups": append([]string{foreignGrp}, grps...)}},
		{"an unknown group", map[string]any{"applications": apps, "groups": append(slices.Clone(grps), "c7a4e8f2-1d3b-4c5a-9e6f-0a1b2c3d4e5f")}},
		{"an empty id", map[string]any{"applications": append(slices.Clone(apps), ""), "groups": grps}},
		{"a group named as an application", map[string]any{"applications": append(slices.Clone(apps), grps[0])}},
		{"an application named as a group", map[string]any{"groups": append(slices.Clone(grps), apps[0])}},
		{"a bad password", map[string]any{"applications": apps, "groups": grps, "password": "short"}},
		{"a bad email", map[string]any{"applications": apps, "groups": grps, "email": "not-an-address"}},
	} {
		t.Run("case="+tc.desc+" writes nothing", func(t *testing.T) {
			r, email := atkECCreate(t, auth(owner), tc.body)
			atkContractError(t, r, http.StatusBadRequest, "bad_request")
			if claimHolder(t, "EMAIL#"+email) != "" {
				t.Error("claimed")
			}
			if n := count(); n != grants {
				t.Errorf("grants on the valid scopes: %d, were %d", n, grants)
			}
		})
	}
	if after := atkOrphanGrants(t, nil, nil); len(after) != len(before) {
		t.Errorf("orphan grants %v", after)
	}
}

// A scope deleted while creates into it are in flight: each create either
// lands with its grant (swept with the scope) or is refused; none leaves a
// grant on a scope that is gone once the stream has run.
func TestAttackEContextScopeDeletedMidCreate(t *testing.T) {
	staff := env.NewStaff(t, "atkecmidstaff", false)
	for round := range 3 {
		app := atkApp(t, staff, fmt.Sprintf("Atk EC mid %d", round))
		grp := atkGroup(t, staff, app, "Atk EC mid g")
		ids := make([]string, 6)
		statuses := make([]int, 6)
		together(6, func(i int) {
			if i == 0 {
				statuses[i] = env.Do(t, "DELETE", atkPath("application")+"/"+app, nil, auth(staff)...).Status
				return
			}
			r := env.Do(t, "POST", "/api/users/user", map[string]any{"email": testenv.Email("atkecmid"), "password": testenv.DefaultPassword,
				"applications": []string{app}, "groups": []string{grp}}, auth(staff)...)
			statuses[i] = r.Status
			if r.Status == 201 {
				ids[i] = ecUser(t, r)["id"].(string)
			} else if r.JSON()["error"] == nil {
				t.Errorf("no contract error: %s", r.Body)
			}
		})
		for i, s := range statuses {
			if (i == 0 && s != 204) || (i > 0 && s != 201 && s != 400) {
				t.Errorf("round %d request %d: %d", round, i, s)
			}
		}
		if o := atkOrphanGrants(t, ids, []string{app, grp}); len(o) > 0 {
			t.Errorf("round %d: grants left on the deleted scopes: %v", round, o)
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			g := env.Do(t, "GET", "/api/users/user/"+id, nil, auth(staff)...)
			if u := ecUser(t, g); len(u["applications"].([]any)) != 0 || len(u["groups"].([]any)) != 0 {
				t.Errorf("round %d: %s still shows the deleted scopes", round, id)
			}
		}
	}
}

// Was: an anonymous sign-up for the address of an account a manager
// created (still UNVERIFIED) replaces that account, as API.md rules, and
// the replaced account's REMOVE ran ApiHub's cascade: every group or
// application whose only member was the pending invitee was deleted, so
// anyone who knew an invitee's address deleted the scope (a staff-made
// application with its groups, when the invitee was its first member).
// An account never activated now takes only its grants.
func TestAttackEContextReplacedInviteeCascade(t *testing.T) {
	staff := env.NewStaff(t, "atkecrepstaff", false)
	owner := quickUser(t, "atkecrepown")
	for _, via := range []string{"a group its owner populated", "an application staff made, with a group", "staff deleting the invitee"} {
		t.Run("case="+via+" survives", func(t *testing.T) {
			app := atkApp(t, staff, "Atk EC replaced")
			var body map[string]any
			var creator testenv.User
			grp := ""
			if via == "a group its owner populated" {
				atkGrant(t, staff, "application", app, owner.UUID, "owner")
				grp = atkGroup(t, owner, app, "Atk EC replaced group")
				body, creator = map[string]any{"groups": []string{grp}}, owner
			} else {
				grp = atkGroup(t, staff, app, "Atk EC replaced group")
				body, creator = map[string]any{"applications": []string{app}, "groups": []string{grp}}, staff
			}
			invitee := testenv.Email("atkecrepinv")
			body["email"], body["password"] = invitee, testenv.DefaultPassword
			r := env.Do(t, "POST", "/api/users/user", body, auth(creator)...)
			if r.Status != 201 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			old := ecUser(t, r)["id"].(string)
			if via == "staff deleting the invitee" {
				if d := env.Do(t, "DELETE", "/api/users/user/"+old, nil, auth(staff)...); d.Status != 200 {
					t.Fatalf("%d %s", d.Status, d.Body)
				}
			} else {
				// Someone else who knows the address signs up with it.
				if s := env.Do(t, "POST", "/api/users/user", map[string]any{"email": invitee, "password": "squatter-Pw-7712-x"}); s.Status != 201 {
					t.Fatalf("%d %s", s.Status, s.Body)
				}
			}
			if userItem(t, old) != nil {
				t.Fatal("the invitee's account is still there")
			}
			if o := atkOrphanGrants(t, []string{old}, []string{app, grp}); len(o) > 0 {
				t.Errorf("the invitee's grants remain: %v", o)
			}
			for _, sc := range []struct{ kind, id string }{{"application", app}, {"group", grp}} {
				if g := env.Do(t, "GET", atkPath(sc.kind)+"/"+sc.id, nil, auth(staff)...); g.Status != 200 {
					t.Errorf("the %s %s went with its pending invitee: %d %s", sc.kind, sc.id, g.Status, g.Body)
				}
			}
		})
	}

	t.Run("case=an activated sole member's own delete still takes the group (ApiHub)", func(t *testing.T) {
		app := atkApp(t, staff, "Atk EC replaced control")
		grp := atkGroup(t, staff, app, "Atk EC replaced control group")
		m := quickUser(t, "atkecrepctl")
		atkGrant(t, staff, "group", grp, m.UUID, "member")
		if d := env.Do(t, "DELETE", "/api/users/user/"+m.UUID, nil, auth(m)...); d.Status != 200 {
			t.Fatalf("%d %s", d.Status, d.Body)
		}
		env.Drain(t)
		if g := env.Do(t, "GET", atkPath("group")+"/"+grp, nil, auth(staff)...); g.Status != 404 {
			t.Errorf("the group its only member left: %d", g.Status)
		}
	})
}

// Refused creates answer the same for an address in use and a fresh one:
// the scopes are checked before the address, so a caller without the
// right to create learns nothing about who has an account.
func TestAttackEContextNoEnumerationThroughRefusals(t *testing.T) {
	staff := env.NewStaff(t, "atkecenstaff2", false)
	app := atkApp(t, staff, "Atk EC enum")
	member := quickUser(t, "atkecenmem")
	atkGrant(t, staff, "application", app, member.UUID, "member")
	taken := quickUser(t, "atkecentaken")
	pending := testenv.Email("atkecenpending")
	env.SignUp(t, pending)
	norm := func(r *testenv.Resp, email string) string {
		return strings.ReplaceAll(strings.ToLower(string(r.Body)), strings.ToLower(email), "EMAIL")
	}
	for _, tc := range []struct {
		desc string
		hdr  []string
		body map[string]any
	}{
		{"an anonymous create naming an application", nil, map[string]any{"applications": []string{app}}},
		{"a member naming the application", auth(member), map[string]any{"applications": []string{app}}},
		{"a member naming nothing", auth(member), map[string]any{}},
		{"support naming nothing", auth(env.NewStaff(t, "atkecensup", true)), map[string]any{}},
	} {
		t.Run("case="+tc.desc+" answers alike for every address", func(t *testing.T) {
			var answers []string
			var statuses []int
			for _, email := range []string{taken.Email, pending, testenv.Email("atkecenfresh")} {
				b := map[string]any{"email": email, "password": testenv.DefaultPassword}
				for k, v := range tc.body {
					b[k] = v
				}
				r := env.Do(t, "POST", "/api/users/user", b, tc.hdr...)
				answers, statuses = append(answers, norm(r, email)), append(statuses, r.Status)
			}
			if statuses[0] == 201 || statuses[0] != statuses[1] || statuses[1] != statuses[2] || answers[0] != answers[1] || answers[1] != answers[2] {
				t.Errorf("%v %q", statuses, answers)
			}
		})
	}
	if claimHolder(t, "EMAIL#"+taken.Email) != taken.UUID {
		t.Error("the taken address moved")
	}
}

// If-Match, PUT and the name on eContext's PATCH.
func TestAttackEContextPatchEdges(t *testing.T) {
	u := quickUser(t, "atkecpe")
	path := "/api/users/user/" + u.UUID
	g := env.Do(t, "GET", path, nil, auth(u)...)
	etag := g.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("no ETag: %v", g.Header)
	}
	if r := env.Do(t, "PATCH", path, map[string]any{"name": "First"}, append(auth(u), "If-Match", etag)...); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	for _, im := range []string{etag, `"0"`, `W/"999"`} {
		before := userItem(t, u.UUID)
		r := env.Do(t, "PATCH", path, map[string]any{"name": "Stale"}, append(auth(u), "If-Match", im)...)
		atkContractError(t, r, http.StatusPreconditionFailed, "precondition_failed")
		if attr(userItem(t, u.UUID), "version") != attr(before, "version") {
			t.Error("a stale PATCH changed the user")
		}
	}
	for _, im := range []string{"junk", `"abc"`, strings.Repeat("9", 40)} {
		r := env.Do(t, "PATCH", path, map[string]any{"name": "Junk"}, append(auth(u), "If-Match", im)...)
		if r.Status != http.StatusBadRequest && r.Status != http.StatusPreconditionFailed {
			t.Errorf("If-Match %q: %d %s", im, r.Status, r.Body)
		}
	}
	t.Run("case=PUT is no route of eContext's", func(t *testing.T) {
		before := userItem(t, u.UUID)
		r := env.Do(t, "PUT", path, map[string]any{"name": "Put", "username": "put"}, auth(u)...)
		if r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if r.JSON()["error"] == nil {
			t.Fatalf("no contract error: %s", r.Body)
		}
		if attr(userItem(t, u.UUID), "version") != attr(before, "version") {
			t.Error("PUT changed the user")
		}
	})
	t.Run("case=eContext's name is the whole name, whatever the contract's last_name held", func(t *testing.T) {
		if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"first_name": "Ada", "last_name": "Byron"}, auth(u)...); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r := env.Do(t, "PATCH", path, map[string]any{"name": "Augusta King"}, auth(u)...)
		if r.Status != 200 || ecUser(t, r)["name"] != "Augusta King" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if g := env.Do(t, "GET", path, nil, auth(u)...); ecUser(t, g)["name"] != "Augusta King" {
			t.Errorf("read back: %v", ecUser(t, g)["name"])
		}
	})
}

// Creating an account gives its creator no reach into it: an owner who
// created a member reads, changes and deletes it no more than any other
// user (404), and a fellow member neither; the account's API keys die with
// its eContext DELETE.
func TestAttackEContextCreatorHasNoReach(t *testing.T) {
	staff := env.NewStaff(t, "atkecreachstaff", false)
	app := atkApp(t, staff, "Atk EC reach")
	owner, fellow := quickUser(t, "atkecreachown"), quickUser(t, "atkecreachfel")
	atkGrant(t, staff, "application", app, owner.UUID, "owner")
	atkGrant(t, staff, "application", app, fellow.UUID, "member")
	email := testenv.Email("atkecreach")
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"email": email, "password": testenv.DefaultPassword, "applications": []string{app}}, auth(owner)...)
	if r.Status != 201 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	id := ecUser(t, r)["id"].(string)
	env.Activate(t, email)
	tok := env.Login(t, email, testenv.DefaultPassword)
	for _, who := range []testenv.User{owner, fellow} {
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = map[string]any{"name": "Owned", "custom_data": map[string]any{"x": 1}}
			}
			if g := env.Do(t, m, "/api/users/user/"+id, body, auth(who)...); g.Status != 404 {
				t.Errorf("%s %s by %s: %d %s", m, id, who.Email, g.Status, g.Body)
			}
		}
	}
	k := env.Do(t, "POST", "/api/users/"+id+"/apikeys", map[string]any{"name": "k"}, "Authorization", "Token "+tok)
	if k.Status != 201 {
		t.Fatalf("%d %s", k.Status, k.Body)
	}
	if d := env.Do(t, "DELETE", "/api/users/user/"+id, nil, "Authorization", "Token "+tok); d.Status != 200 {
		t.Fatalf("%d %s", d.Status, d.Body)
	}
	if g := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Api-Key "+k.Str("key")); g.Status != 401 {
		t.Errorf("the deleted account's key still works: %d", g.Status)
	}
}
