package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

// Attacks on applications, groups and role grants (issue 10).

// scopePath is the route of a scope kind ("application" or "group").
func atkPath(kind string) string {
	if kind == "group" {
		return "/api/groups/group"
	}
	return "/api/applications/application"
}

// ecScope reads the scope an eContext answer holds.
func atkECScope(t testing.TB, r *testenv.Resp, kind string) map[string]any {
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
	r := env.Do(t, "POST", atkPath("application"), map[string]any{"name": name}, auth(staff)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create application: %d %s", r.Status, r.Body)
	}
	return atkECScope(t, r, "application")["id"].(string)
}

func atkGroup(t testing.TB, caller testenv.User, app, name string) string {
	t.Helper()
	r := env.Do(t, "POST", atkPath("group"), map[string]any{"name": name, "application": app}, auth(caller)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create group: %d %s", r.Status, r.Body)
	}
	return atkECScope(t, r, "group")["id"].(string)
}

// member sends a membership action (add_user, update_user, delete_user).
func atkMember(t testing.TB, caller testenv.User, kind, scope, action string, body map[string]any) *testenv.Resp {
	t.Helper()
	return env.Do(t, "POST", atkPath(kind)+"/"+scope+"/"+action, body, auth(caller)...)
}

func atkGrant(t testing.TB, caller testenv.User, kind, scope, user, role string) {
	t.Helper()
	if r := atkMember(t, caller, kind, scope, "add_user", map[string]any{"user": user, "role": role}); r.Status != http.StatusCreated {
		t.Fatalf("add_user %s %s: %d %s", user, role, r.Status, r.Body)
	}
}

// permissionsOf reads a user's permissions as staff see them.
func atkPerms(t testing.TB, staff testenv.User, user string) []map[string]any {
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
		if r := atkMember(t, staff, sc.kind, sc.id, "add_user", map[string]any{"user": u.UUID, "role": "member", "expiration_time": exp}); r.Status != http.StatusCreated {
			t.Fatalf("add_user: %d %s", r.Status, r.Body)
		}
	}
	time.Sleep(3 * time.Second)
	if ps := atkPerms(t, staff, u.UUID); len(ps) != 0 {
		t.Fatalf("expired grants still shown: %v", ps)
	}
	for _, sc := range []struct{ kind, id string }{{"application", app}, {"group", grp}} {
		r := atkMember(t, staff, sc.kind, sc.id, "add_user", map[string]any{"user": u.UUID, "role": "admin"})
		if r.Status != http.StatusCreated {
			t.Fatalf("re-adding a user whose grant on the %s expired: %d %s", sc.kind, r.Status, r.Body)
		}
	}
	ps := atkPerms(t, staff, u.UUID)
	if len(ps) != 2 || ps[0]["role_name"] != "admin" || ps[1]["role_name"] != "admin" || ps[0]["expiration_time"] != nil {
		t.Fatalf("permissions after the re-add: %v", ps)
	}
	// The user-side count was not inflated: delete both, and n is back at 0.
	for _, sc := range []struct{ kind, id string }{{"application", app}, {"group", grp}} {
		if r := atkMember(t, staff, sc.kind, sc.id, "delete_user", map[string]any{"user": u.UUID}); r.Status != http.StatusNoContent {
			t.Fatalf("delete_user: %d %s", r.Status, r.Body)
		}
	}
	for _, it := range scanTable(t) {
		if attr(it, "pk") == "GRANTS#"+u.UUID && attr(it, "n") != "0" {
			t.Fatalf("grant count after removing every grant: %q", attr(it, "n"))
		}
	}
}

// Support users read everything and change nothing, even holding an admin
// grant on a scope.
func TestAttackGroupsSupportWithGrantChangesNothing(t *testing.T) {
	staff := env.NewStaff(t, "atkg-staff", false)
	sup := env.NewStaff(t, "atkg-support", true)
	victim := quickUser(t, "atkg-victim")
	app := atkApp(t, staff, "support app")
	grp := atkGroup(t, staff, app, "support group")
	atkGrant(t, staff, "application", app, sup.UUID, "admin")
	atkGrant(t, staff, "application", app, victim.UUID, "member")
	newcomer := quickUser(t, "atkg-new")
	checks := []struct {
		desc string
		r    *testenv.Resp
	}{
		{"add_user", atkMember(t, sup, "application", app, "add_user", map[string]any{"user": newcomer.UUID, "role": "owner"})},
		{"update_user", atkMember(t, sup, "application", app, "update_user", map[string]any{"user": victim.UUID, "role": "owner"})},
		{"delete_user", atkMember(t, sup, "application", app, "delete_user", map[string]any{"user": victim.UUID})},
		{"group add_user", atkMember(t, sup, "group", grp, "add_user", map[string]any{"user": newcomer.UUID, "role": "member"})},
		{"PATCH", env.Do(t, "PATCH", atkPath("application")+"/"+app, map[string]any{"name": "renamed by support"}, auth(sup)...)},
		{"create group", env.Do(t, "POST", atkPath("group"), map[string]any{"name": "by support", "application": app}, auth(sup)...)},
		{"delete group", env.Do(t, "DELETE", atkPath("group")+"/"+grp, nil, auth(sup)...)},
	}
	for _, c := range checks {
		if c.r.Status < 400 {
			t.Errorf("support %s: %d %s", c.desc, c.r.Status, c.r.Body)
		}
	}
	// eContext's create naming the application.
	email := testenv.Email("atkg-ecsup")
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"name": "Ec Sup", "email": email, "password": testenv.DefaultPassword, "applications": []string{app}}, auth(sup)...)
	if r.Status < 400 {
		t.Errorf("support's eContext create into the application: %d %s", r.Status, r.Body)
	}
	if ps := atkPerms(t, staff, newcomer.UUID); len(ps) != 0 {
		t.Errorf("support granted: %v", ps)
	}
}

// An admin may not make themselves or anyone an owner, nor demote or
// remove an owner: only owners (and staff) hand out or take away
// ownership.
func TestAttackGroupsAdminCannotTouchOwnership(t *testing.T) {
	staff := env.NewStaff(t, "atkg-staff", false)
	owner := quickUser(t, "atkg-owner")
	adm := quickUser(t, "atkg-admin")
	friend := quickUser(t, "atkg-friend")
	app := atkApp(t, staff, "ownership app")
	grp := atkGroup(t, staff, app, "ownership group")
	atkGrant(t, staff, "application", app, owner.UUID, "owner")
	atkGrant(t, staff, "application", app, adm.UUID, "admin")
	atkGrant(t, staff, "group", grp, owner.UUID, "owner")
	gadm := quickUser(t, "atkg-gadmin")
	atkGrant(t, staff, "group", grp, gadm.UUID, "admin")
	checks := []struct {
		desc string
		r    *testenv.Resp
	}{
		{"admin promotes themselves", atkMember(t, adm, "application", app, "update_user", map[string]any{"user": adm.UUID, "role": "owner"})},
		{"admin adds an owner", atkMember(t, adm, "application", app, "add_user", map[string]any{"user": friend.UUID, "role": "owner"})},
		{"admin demotes the owner", atkMember(t, adm, "application", app, "update_user", map[string]any{"user": owner.UUID, "role": "member"})},
		{"admin removes the owner", atkMember(t, adm, "application", app, "delete_user", map[string]any{"user": owner.UUID})},
		{"group admin promotes themselves", atkMember(t, gadm, "group", grp, "update_user", map[string]any{"user": gadm.UUID, "role": "owner"})},
		{"group admin removes the group's owner", atkMember(t, gadm, "group", grp, "delete_user", map[string]any{"user": owner.UUID})},
		{"application admin adds a group owner", atkMember(t, adm, "group", grp, "add_user", map[string]any{"user": friend.UUID, "role": "owner"})},
	}
	for _, c := range checks {
		if c.r.Status != http.StatusForbidden {
			t.Errorf("%s: %d %s", c.desc, c.r.Status, c.r.Body)
		}
	}
	for _, p := range atkPerms(t, staff, owner.UUID) {
		if p["role_name"] != "owner" {
			t.Errorf("owner's grant changed: %v", p)
		}
	}
	if ps := atkPerms(t, staff, friend.UUID); len(ps) != 0 {
		t.Errorf("friend got %v", ps)
	}
	// What admins may do still works: add and remove members and admins,
	// and leave.
	atkGrant(t, adm, "application", app, friend.UUID, "admin")
	if r := atkMember(t, adm, "application", app, "delete_user", map[string]any{"user": friend.UUID}); r.Status != http.StatusNoContent {
		t.Errorf("admin removes an admin: %d %s", r.Status, r.Body)
	}
	// Owners hand out ownership.
	if r := atkMember(t, owner, "application", app, "update_user", map[string]any{"user": adm.UUID, "role": "owner"}); r.Status != http.StatusOK {
		t.Errorf("owner promotes an admin: %d %s", r.Status, r.Body)
	}
}

// eContext's create of a user into a group (by an admin of its
// application, not naming the application) records the group's
// application name in the permission, as add_user does.
func TestAttackGroupsEContextJoinGroupCustomerName(t *testing.T) {
	staff := env.NewStaff(t, "atkg-staff", false)
	adm := quickUser(t, "atkg-ecadm")
	app := atkApp(t, staff, "ec named app")
	grp := atkGroup(t, staff, app, "ec group")
	atkGrant(t, staff, "application", app, adm.UUID, "admin")
	email := testenv.Email("atkg-ecjoin")
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"name": "Ec Join", "email": email, "password": testenv.DefaultPassword, "groups": []string{grp}}, auth(adm)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	ec, _ := r.JSON()["econtext"].(map[string]any)
	res, _ := ec["result"].(map[string]any)
	u, _ := res["user"].(map[string]any)
	ps := atkPerms(t, staff, u["id"].(string))
	if len(ps) != 1 || ps[0]["customer_uuid"] != app || ps[0]["customer_name"] != "ec named app" {
		t.Fatalf("permissions: %v", ps)
	}
}

// An expiration_time whose own offset writes it in 9999 but which is in the
// year 10000 in UTC is refused: stored, it would make every read of the
// member's grants fail (their /me, their permissions) for good.
func TestAttackGroupsExpiryPastYear9999(t *testing.T) {
	staff := env.NewStaff(t, "atk-y10k-staff", false)
	member := env.NewUser(t, "atk-y10k")
	app := atkApp(t, staff, "Y10K")
	for _, action := range []string{"add_user", "update_user"} {
		if action == "update_user" {
			atkGrant(t, staff, "application", app, member.UUID, "member")
		}
		r := atkMember(t, staff, "application", app, action, map[string]any{"user": member.UUID, "role": "member", "expiration_time": "9999-12-31T23:59:59-23:59"})
		if r.Status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", action, r.Status, r.Body)
		}
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(member)...); r.Status != http.StatusOK {
		t.Fatalf("the member's /me: %d %s", r.Status, r.Body)
	}
	if ps := atkPerms(t, staff, member.UUID); len(ps) != 1 || ps[0]["expiration_time"] != nil {
		t.Fatalf("permissions %v", ps)
	}
}

// A PATCH that repeats a group's application in upper case is no move.
func TestGroupApplicationRepeatedInAnyCase(t *testing.T) {
	staff := env.NewStaff(t, "grp-case-staff", false)
	app := atkApp(t, staff, "Case")
	grp := atkGroup(t, staff, app, "Case group")
	r := env.Do(t, "PATCH", "/api/groups/group/"+grp, map[string]any{"application": strings.ToUpper(app), "description": "same app"}, auth(staff)...)
	if r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	other := atkApp(t, staff, "Other")
	if r := env.Do(t, "PATCH", "/api/groups/group/"+grp, map[string]any{"application": other}, auth(staff)...); r.Status != http.StatusBadRequest {
		t.Fatalf("a move: %d %s", r.Status, r.Body)
	}
}
