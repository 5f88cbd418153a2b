package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

func auth(u testenv.User) []string { return []string{"Authorization", "Token " + u.Token} }

func TestRetrieveVisibility(t *testing.T) {
	owner := env.NewUser(t, "owner")
	other := env.NewUser(t, "other")
	support := env.NewStaff(t, "support", true)
	staff := env.NewStaff(t, "staff", false)
	for _, tc := range []struct {
		desc   string
		caller testenv.User
		path   string
		want   int
	}{
		{"self reads themselves", owner, "/api/users/" + owner.UUID, 200},
		{"staff read anyone", staff, "/api/users/" + owner.UUID + "/", 200},
		{"support read anyone", support, "/api/users/" + owner.UUID, 200},
		{"another user gets 404", other, "/api/users/" + owner.UUID, 404},
		{"a path that is not a uuid gets 404", staff, "/api/users/not-a-uuid", 404},
		{"an unknown uuid gets 404", staff, "/api/users/00000000-0000-4000-8000-000000000000", 404},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r := env.Do(t, "GET", tc.path, nil, auth(tc.caller)...)
			if r.Status != tc.want {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if tc.want == 200 && (r.Str("uuid") != owner.UUID || r.Header.Get("ETag") == "" || r.Str("token") != "") {
				t.Fatalf("body %s", r.Body)
			}
		})
	}
	if r := env.Do(t, "GET", "/api/users/"+owner.UUID, nil); r.Status != 401 {
		t.Errorf("anonymous: %d", r.Status)
	}
}

func TestUpdateRules(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	support := env.NewStaff(t, "support", true)
	u := env.NewUser(t, "upd")
	other := env.NewUser(t, "other")
	path := "/api/users/" + u.UUID

	for _, tc := range []struct {
		desc   string
		caller testenv.User
		method string
		body   map[string]any
		want   int
	}{
		{"self changes profile fields", u, "PATCH", map[string]any{"first_name": "Grace", "job_title": "Admiral", "custom_data": map[string]any{"tier": 3}}, 200},
		{"self may not make themselves staff", u, "PATCH", map[string]any{"is_staff": true}, 403},
		{"self may not deactivate themselves", u, "PATCH", map[string]any{"is_active": false}, 403},
		{"self may not change email directly", u, "PATCH", map[string]any{"email": testenv.Email("direct")}, 403},
		{"password is not changed by PATCH", u, "PATCH", map[string]any{"password": "new-Password-1234"}, 400},
		{"PUT needs username", u, "PUT", map[string]any{"first_name": "G"}, 400},
		{"support may not change others", support, "PATCH", map[string]any{"first_name": "X"}, 403},
		{"another user gets 404", other, "PATCH", map[string]any{"first_name": "X"}, 404},
		{"bad birth date", u, "PATCH", map[string]any{"birth_date": "yesterday"}, 400},
		{"token lifetime out of range", u, "PATCH", map[string]any{"token_lifetime": 10}, 400},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			before := env.Do(t, "GET", path, nil, auth(staff)...).JSON()
			r := env.Do(t, tc.method, path, tc.body, auth(tc.caller)...)
			if r.Status != tc.want {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			after := env.Do(t, "GET", path, nil, auth(staff)...).JSON()
			if tc.want != 200 && after["modified"] != before["modified"] {
				t.Errorf("a refused change changed the user: %v -> %v", before, after)
			}
		})
	}
	me := env.Do(t, "GET", path, nil, auth(u)...).JSON()
	if me["first_name"] != "Grace" || me["job_title"] != "Admiral" || me["custom_data"].(map[string]any)["tier"] != float64(3) {
		t.Errorf("self PATCH not stored: %v", me)
	}

	t.Run("case=GET-modify-PUT with read-only fields works", func(t *testing.T) {
		cur := env.Do(t, "GET", path, nil, auth(u)...).JSON()
		cur["last_name"] = "Hopper"
		delete(cur, "email")
		r := env.Do(t, "PUT", path, cur, auth(u)...)
		if r.Status != 200 || r.Str("last_name") != "Hopper" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=agree_with_policy sets agreement_date", func(t *testing.T) {
		r := env.Do(t, "PATCH", path, map[string]any{"agree_with_policy": true}, auth(u)...)
		if r.Status != 200 || r.Str("agreement_date") == "" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=a stale If-Match gets 412 and changes nothing", func(t *testing.T) {
		r := env.Do(t, "GET", path, nil, auth(u)...)
		etag := r.Header.Get("ETag")
		if r2 := env.Do(t, "PATCH", path, map[string]any{"description": "one"}, append(auth(u), "If-Match", etag)...); r2.Status != 200 {
			t.Fatalf("fresh If-Match: %d %s", r2.Status, r2.Body)
		}
		r3 := env.Do(t, "PATCH", path, map[string]any{"description": "two"}, append(auth(u), "If-Match", etag)...)
		if r3.Status != http.StatusPreconditionFailed || r3.Str("error") != "precondition_failed" {
			t.Fatalf("stale If-Match: %d %s", r3.Status, r3.Body)
		}
		if d := env.Do(t, "GET", path, nil, auth(u)...).Str("description"); d != "one" {
			t.Errorf("description = %q", d)
		}
	})

	t.Run("case=two PATCHes of different fields at once both persist", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, body := range []map[string]any{{"organization": "Navy"}, {"native_name": "Grace B. Murray"}} {
			wg.Add(1)
			go func(b map[string]any) {
				defer wg.Done()
				if r := env.Do(t, "PATCH", path, b, auth(u)...); r.Status != 200 {
					t.Errorf("PATCH %v: %d", b, r.Status)
				}
			}(body)
		}
		wg.Wait()
		got := env.Do(t, "GET", path, nil, auth(u)...).JSON()
		if got["organization"] != "Navy" || got["native_name"] != "Grace B. Murray" {
			t.Errorf("lost update: %v", got)
		}
	})

	t.Run("case=staff change email, username and status of others", func(t *testing.T) {
		newEmail := testenv.Email("moved")
		r := env.Do(t, "PATCH", path, map[string]any{"email": newEmail, "username": "grace-" + u.UUID[:8], "is_support": true}, auth(staff)...)
		if r.Status != 200 || r.Str("email") != newEmail || r.JSON()["is_support"] != true {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		// The old address is free again, the new one is taken.
		if r := env.Do(t, "POST", "/api/users", map[string]any{"email": newEmail, "password": testenv.DefaultPassword}); r.Status != 400 {
			t.Errorf("new address not claimed: %d", r.Status)
		}
		if r := env.Do(t, "POST", "/api/users", map[string]any{"email": u.Email, "password": testenv.DefaultPassword}); r.Status != 201 {
			t.Errorf("old address not released: %d %s", r.Status, r.Body)
		}
		if tok := env.Login(t, "grace-"+u.UUID[:8], u.Password); tok == "" {
			t.Error("login by the new username failed")
		}
		r = env.Do(t, "PATCH", path, map[string]any{"is_active": false}, auth(staff)...)
		if r.Status != 200 || r.Str("status") != "DISABLED" {
			t.Fatalf("deactivate: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != 401 {
			t.Errorf("a deactivated user's token still works: %d", r.Status)
		}
		if r := env.Do(t, "PATCH", path, map[string]any{"email": other.Email}, auth(staff)...); r.Status != 400 || !strings.Contains(r.Str("error_description"), "already has") {
			t.Errorf("taking another's email: %d %s", r.Status, r.Body)
		}
	})
}

func TestDeleteByUUID(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	support := env.NewStaff(t, "support", true)
	u := env.NewUser(t, "del")
	other := env.NewUser(t, "other")
	path := "/api/users/" + u.UUID
	if r := env.Do(t, "DELETE", path, nil, auth(other)...); r.Status != 404 {
		t.Errorf("other: %d", r.Status)
	}
	if r := env.Do(t, "DELETE", path, nil, auth(support)...); r.Status != 403 {
		t.Errorf("support: %d", r.Status)
	}
	if r := env.Do(t, "DELETE", path, nil, auth(staff)...); r.Status != 204 {
		t.Fatalf("staff: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", path, nil, auth(staff)...); r.Status != 404 {
		t.Errorf("after delete: %d", r.Status)
	}
	self := env.NewUser(t, "selfdel")
	if r := env.Do(t, "DELETE", "/api/users/"+self.UUID, nil, auth(self)...); r.Status != 204 {
		t.Errorf("self: %d", r.Status)
	}
}

func TestTokens(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	u := env.NewUser(t, "tok")
	r := env.Do(t, "GET", "/api/users/"+u.UUID+"/token", nil, auth(u)...)
	if r.Status != 200 || r.Str("token") != u.Token || r.Str("user_username") == "" || r.JSON()["user_token_lifetime"] != float64(43200) || r.Str("created") == "" {
		t.Fatalf("get token: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/"+u.UUID+"/token", nil, auth(staff)...); r.Str("token") != u.Token {
		t.Errorf("staff see the token: %s", r.Body)
	}
	r = env.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", nil, auth(u)...)
	fresh := r.Str("token")
	if r.Status != 200 || fresh == "" || fresh == u.Token {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != 401 {
		t.Errorf("old token after refresh: %d", r.Status)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+fresh); r.Status != 200 {
		t.Errorf("new token: %d", r.Status)
	}
	other := env.NewUser(t, "other")
	if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", nil, auth(other)...); r.Status != 404 {
		t.Errorf("another user refreshing: %d", r.Status)
	}
	t.Run("case=token_lifetime sets the expiry", func(t *testing.T) {
		u.Token = fresh
		if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"token_lifetime": 3600}, auth(u)...); r.Status != 200 {
			t.Fatalf("patch: %d %s", r.Status, r.Body)
		}
		r := env.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", nil, auth(u)...)
		if r.JSON()["user_token_lifetime"] != float64(3600) {
			t.Fatalf("refresh: %s", r.Body)
		}
		me := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+r.Str("token")).JSON()
		if me["token_lifetime"] != float64(3600) || me["token_expires_at"] == nil {
			t.Errorf("me: %v", me)
		}
	})
}

func TestEmailChange(t *testing.T) {
	u := env.NewUser(t, "ec")
	other := env.NewUser(t, "taker")
	newEmail := testenv.Email("new")
	base := "/api/users/" + u.UUID
	r := env.Do(t, "POST", base+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
	if r.Status != 200 || r.Str("requested_email") != newEmail || r.Str("email") != u.Email {
		t.Fatalf("change_email: %d %s", r.Status, r.Body)
	}
	if len(env.MailsTo(t, u.Email, "about to change")) != 1 {
		t.Error("no notice to the old address")
	}
	code := env.CodeFromMail(t, newEmail, "Confirm your new email")

	t.Run("case=someone else cannot use the code", func(t *testing.T) {
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(other)...); r.Status != 400 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	r = env.Do(t, "POST", "/api/users/confirm_email/", map[string]any{"code": code}, auth(u)...)
	if r.Status != 200 || r.Str("email") != newEmail || r.JSON()["requested_email"] != nil {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	// The confirmed change moved the credential epoch on: the token is over.
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != 401 {
		t.Errorf("the token after the email change: %d", r.Status)
	}
	u.Token = env.Login(t, newEmail, u.Password)
	if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...); r.Status != 400 {
		t.Errorf("code reused: %d", r.Status)
	}
	if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password}); r.Status != 401 {
		t.Errorf("old email still logs in: %d", r.Status)
	}

	t.Run("case=cancel makes the code stop working", func(t *testing.T) {
		e2 := testenv.Email("cancelled")
		env.Do(t, "POST", base+"/change_email", map[string]any{"email": e2}, auth(u)...)
		c2 := env.CodeFromMail(t, e2, "Confirm your new email")
		r := env.Do(t, "POST", base+"/cancel_change_email", nil, auth(u)...)
		if r.Status != 200 || r.JSON()["requested_email"] != nil {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": c2}, auth(u)...); r.Status != 400 {
			t.Fatalf("cancelled code: %d", r.Status)
		}
	})

	t.Run("case=confirming an address someone took meanwhile fails cleanly", func(t *testing.T) {
		e3 := testenv.Email("contested")
		env.Do(t, "POST", base+"/change_email", map[string]any{"email": e3}, auth(u)...)
		c3 := env.CodeFromMail(t, e3, "Confirm your new email")
		env.SignUp(t, e3)
		env.Activate(t, e3) // an unverified holder would be replaced
		r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": c3}, auth(u)...)
		if r.Status != 400 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if got := env.Do(t, "GET", "/api/users/me", nil, auth(u)...).Str("email"); got != newEmail {
			t.Errorf("email changed to %q", got)
		}
	})
}

func TestPasswordChangeAndReset(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	u := env.NewUser(t, "pw")
	base := "/api/users/" + u.UUID
	if r := env.Do(t, "POST", base+"/change_password", map[string]any{"new_password": "another-Secret-4321"}, auth(u)...); r.Status != 400 {
		t.Errorf("self without current_password: %d", r.Status)
	}
	if r := env.Do(t, "POST", base+"/change_password", map[string]any{"current_password": "wrong-one-123", "new_password": "another-Secret-4321"}, auth(u)...); r.Status != 400 {
		t.Errorf("self with a wrong current_password: %d", r.Status)
	}
	r := env.Do(t, "POST", base+"/change_password", map[string]any{"current_password": u.Password, "new_password": "another-Secret-4321"}, auth(u)...)
	if r.Status != 200 {
		t.Fatalf("self change: %d %s", r.Status, r.Body)
	}
	// Every password change moves the credential epoch on: the token is over.
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != 401 {
		t.Errorf("a self change must end the token: %d", r.Status)
	}
	u.Token = env.Login(t, u.Email, "another-Secret-4321")
	if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password}); r.Status != 401 {
		t.Errorf("old password still works: %d", r.Status)
	}
	r = env.Do(t, "POST", base+"/change_password", map[string]any{"new_password": "staff-Chosen-9876"}, auth(staff)...)
	if r.Status != 200 {
		t.Fatalf("staff change: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != 401 {
		t.Errorf("a staff change must revoke the token: %d", r.Status)
	}
	env.Login(t, u.Email, "staff-Chosen-9876")

	// Reset by email code.
	r = env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
	unknown := env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": testenv.Email("nobody")})
	if r.Status != 202 || unknown.Status != 202 || string(r.Body) != string(unknown.Body) {
		t.Fatalf("reset answers: %d %s / %d %s", r.Status, r.Body, unknown.Status, unknown.Body)
	}
	tok := env.Login(t, u.Email, "staff-Chosen-9876")
	code := env.CodeFromMail(t, u.Email, "Reset your password")
	if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "short"}); r.Status != 400 {
		t.Errorf("weak new password: %d", r.Status)
	}
	r = env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "reset-Chosen-5555"})
	if r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok); r.Status != 401 {
		t.Errorf("reset must revoke the token: %d", r.Status)
	}
	if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "reset-Again-6666"}); r.Status != 400 {
		t.Errorf("reset code reused: %d", r.Status)
	}
	env.Login(t, u.Email, "reset-Chosen-5555")
}

func TestStaffCreate(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	plain := env.NewUser(t, "plain")
	email := testenv.Email("created")
	body := map[string]any{"username": "created-" + strings.Split(email, "@")[0][8:], "email": email, "is_support": true, "first_name": "Kat"}
	if r := env.Do(t, "POST", "/api/users", body, auth(plain)...); r.Status != 403 {
		t.Errorf("non-staff create: %d %s", r.Status, r.Body)
	}
	r := env.Do(t, "POST", "/api/users", body, auth(staff)...)
	if r.Status != 201 || r.Str("status") != "ENABLED" || r.JSON()["is_support"] != true || r.Str("registration_method") != "admin" {
		t.Fatalf("staff create: %d %s", r.Status, r.Body)
	}
	code := env.CodeFromMail(t, email, "Your new account")
	if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "first-Password-777"}); r.Status != 200 {
		t.Fatalf("set password: %d %s", r.Status, r.Body)
	}
	env.Login(t, email, "first-Password-777")
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("nouser")}, auth(staff)...); r.Status != 400 {
		t.Errorf("staff create without username: %d", r.Status)
	}
}
