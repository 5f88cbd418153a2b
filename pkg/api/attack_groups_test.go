package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

// Attacks on applications, groups and role grants (issue 10).

// scopePath is the route of a scope kind ("application" or "group").
func scopePath(kind string) string {
	if kind == "group" {
		return "/api/groups/group"
	}
	return "/api/applications/application"
}

// ecScope reads the scope an eContext answer holds.
func ecScope(t testing.TB, r *testenv.Resp, kind string) map[string]any {
	t.Helper()
	ec, _ := r.JSON()["econtext"].(map[string]any)
	res, _ := ec["result"].(map[string]any)
	sc, _ := res[kind].(map[string]any)
	if sc == nil {
		t.Fatalf("no %s in %d %s", kind, r.Status, r.Body)
	}
	return sc
}

func atkApp(t testing.TB, staff testenv.User, name string) string {
	t.Helper()
	r := env.Do(t, "POST", scopePath("application"), map[string]any{"name": name}, auth(staff)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create application: %d %s", r.Status, r.Body)
	}
	return ecScope(t, r, "application")["id"].(string)
}

func atkGroup(t testing.TB, caller testenv.User, app, name string) string {
	t.Helper()
	r := env.Do(t, "POST", scopePath("group"), map[string]any{"name": name, "application": app}, auth(caller)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create group: %d %s", r.Status, r.Body)
	}
	return ecScope(t, r, "group")["id"].(string)
}

// member sends a membership action (add_user, update_user, delete_user).
func member(t testing.TB, caller testenv.User, kind, scope, action string, body map[string]any) *testenv.Resp {
	t.Helper()
	return env.Do(t, "POST", scopePath(kind)+"/"+scope+"/"+action, body, auth(caller)...)
}

func atkGrant(t testing.TB, caller testenv.User, kind, scope, user, role string) {
	t.Helper()
	if r := member(t, caller, kind, scope, "add_user", map[string]any{"user": user, "role": role}); r.Status != http.StatusCreated {
		t.Fatalf("add_user %s %s: %d %s", user, role, r.Status, r.Body)
	}
}

// permissionsOf reads a user's permissions as staff see them.
func permissionsOf(t testing.TB, staff testenv.User, user string) []map[string]any {
	t.Helper()
	r := env.Do(t, "GET", "/api/users/"+user, nil, auth(staff)...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET user: %d %s", r.Status, r.Body)
	}
	var out []map[string]any
	ps, _ := r.JSON()["permissions"].([]any)
	for _, p := range ps {
		out = append(out, p.(map[string]any))
	}
	return out
}

// An expired grant stops counting at once: its holder can be added again
// at once, without waiting for TTL to remove the old item.
func TestAttackGroupsExpiredGrantBlocksReAdd(t *testing.T) {
	staff := env.NewStaff(t, "atkg-staff", false)
	u := quickUser(t, "atkg-exp")
	app := atkApp(t, staff, "expiry app")
	grp := atkGroup(t, staff, app, "expiry group")
	exp := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	for _, sc := range []struct{ kind, id string }{{"application", app}, {"group", grp}} {
		if r := member(t, staff, sc.kind, sc.id, "add_user", map[string]any{"user": u.UUID, "role": "member", "expiration_time": exp}); r.Status != http.StatusCreated {
			t.Fatalf("add_user: %d %s", r.Status, r.Body)
		}
	}
	time.Sleep(3 * time.Second)
	if ps := permissionsOf(t, staff, u.UUID); len(ps) != 0 {
		t.Fatalf("expired grants still shown: %v", ps)
	}
	for _, sc := range []struct{ kind, id string }{{"application", app}, {"group", grp}} {
		r := member(t, staff, sc.kind, sc.id, "add_user", map[string]any{"user": u.UUID, "role": "admin"})
		if r.Status != http.StatusCreated {
			t.Fatalf("re-adding a user whose grant on the %s expired: %d %s", sc.kind, r.Status, r.Body)
		}
	}
	ps := permissionsOf(t, staff, u.UUID)
	if len(ps) != 2 || ps[0]["role_name"] != "admin" || ps[1]["role_name"] != "admin" || ps[0]["expiration_time"] != nil {
		t.Fatalf("permissions after the re-add: %v", ps)
	}
	// The user-side count was not inflated: delete both, and n is back at 0.
	for _, sc := range []struct{ kind, id string }{{"application", app}, {"group", grp}} {
		if r := member(t, staff, sc.kind, sc.id, "delete_user", map[string]any{"user": u.UUID}); r.Status != http.StatusNoContent {
			t.Fatalf("delete_user: %d %s", r.Status, r.Body)
		}
	}
	for _, it := range scanTable(t) {
		if attr(it, "pk") == "GRANTS#"+u.UUID && attr(it, "n") != "0" {
			t.Fatalf("grant count after removing every grant: %q", attr(it, "n"))
		}
	}
}
