package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// as sends a request with u's token.
func as(t *testing.T, u testenv.User, method, path string, body any) *testenv.Resp {
	t.Helper()
	return env.Do(t, method, path, body, "Authorization", testenv.Token(u.Token))
}

// result is the eContext envelope's result.
func result(t *testing.T, r *testenv.Resp) map[string]any {
	t.Helper()
	ec, _ := r.JSON()["econtext"].(map[string]any)
	if ec == nil {
		t.Fatalf("no econtext envelope: %d %s", r.Status, r.Body)
	}
	if _, ok := ec["elapsed"].(float64); !ok {
		t.Errorf("no elapsed seconds: %s", r.Body)
	}
	res, _ := ec["result"].(map[string]any)
	return res
}

// scopeID creates a scope as u and returns its id.
func scopeID(t *testing.T, u testenv.User, kind string, body map[string]any) string {
	t.Helper()
	path := "/api/applications/application"
	if kind == groups.KindGroup {
		path = "/api/groups/group"
	}
	r := as(t, u, "POST", path, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", kind, r.Status, r.Body)
	}
	obj, _ := result(t, r)[kind].(map[string]any)
	id, _ := obj["id"].(string)
	if id == "" {
		t.Fatalf("no id: %s", r.Body)
	}
	return id
}

func scopePath(kind, id string) string {
	if kind == groups.KindGroup {
		return "/api/groups/group/" + id
	}
	return "/api/applications/application/" + id
}

func addUser(t *testing.T, by testenv.User, kind, id string, who testenv.User, role string) {
	t.Helper()
	if r := as(t, by, "POST", scopePath(kind, id)+"/add_user", map[string]any{"user": who.UUID, "role": role}); r.Status != http.StatusCreated {
		t.Fatalf("add_user %s as %s: %d %s", who.Email, role, r.Status, r.Body)
	}
}

// groupFixture is an application with an owner, an admin and a member,
// and a group in it; plain holds nothing.
type groupFixture struct {
	staff, support, owner, admin, member, plain testenv.User
	app, group                                  string
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	f := &groupFixture{
		staff: env.NewStaff(t, "gstaff", false), support: env.NewStaff(t, "gsupport", true),
		owner: env.NewUser(t, "gowner"), admin: env.NewUser(t, "gadmin"), member: env.NewUser(t, "gmember"), plain: env.NewUser(t, "gplain"),
	}
	f.app = scopeID(t, f.staff, groups.KindApplication, map[string]any{"name": "Test Application", "description": "Test application for use in this round of tests"})
	addUser(t, f.staff, groups.KindApplication, f.app, f.owner, "owner")
	addUser(t, f.owner, groups.KindApplication, f.app, f.admin, "admin")
	addUser(t, f.admin, groups.KindApplication, f.app, f.member, "member")
	f.group = scopeID(t, f.admin, groups.KindGroup, map[string]any{"name": "Test Group", "application": f.app, "custom_data": map[string]any{"tier_depth": 9}})
	return f
}

func TestScopeRules(t *testing.T) {
	f := newGroupFixture(t)
	app, grp := scopePath(groups.KindApplication, f.app), scopePath(groups.KindGroup, f.group)
	for _, tc := range []struct {
		desc   string
		who    testenv.User
		method string
		path   string
		body   any
		want   int
	}{
		{"a plain user may not create an application", f.plain, "POST", "/api/applications/application", map[string]any{"name": "x"}, 403},
		{"support may not create an application", f.support, "POST", "/api/applications/application", map[string]any{"name": "x"}, 403},
		{"an application's member may not create a group in it", f.member, "POST", "/api/groups/group", map[string]any{"name": "x", "application": f.app}, 400},
		{"a plain user may not create a group", f.plain, "POST", "/api/groups/group", map[string]any{"name": "x", "application": f.app}, 400},
		{"a group needs an application", f.staff, "POST", "/api/groups/group", map[string]any{"name": "x"}, 400},
		{"a name is required", f.staff, "POST", "/api/applications/application", map[string]any{"description": "x"}, 400},
		{"custom_data is an object", f.staff, "POST", "/api/applications/application", map[string]any{"name": "x", "custom_data": []int{1}}, 400},
		{"custom_data is at most 16 KiB", f.staff, "POST", "/api/applications/application", map[string]any{"name": "x", "custom_data": map[string]any{"a": strings.Repeat("x", 17<<10)}}, 400},
		{"a member reads the application", f.member, "GET", app, nil, 200},
		{"support reads the application", f.support, "GET", app, nil, 200},
		{"a plain user does not see the application", f.plain, "GET", app, nil, 404},
		{"a member reads the application's group", f.member, "GET", grp, nil, 200},
		{"a plain user does not see the group", f.plain, "GET", grp, nil, 404},
		{"a member may not change the application", f.member, "PATCH", app, map[string]any{"description": "no"}, 403},
		{"support may not change the application", f.support, "PATCH", app, map[string]any{"description": "no"}, 403},
		{"an admin changes the application", f.admin, "PATCH", app, map[string]any{"description": "Changed by its admin"}, 200},
		{"an owner replaces the group", f.owner, "PUT", grp, map[string]any{"name": "Test Group", "application": f.app, "custom_data": map[string]any{"tier_depth": 9}}, 200},
		{"a group cannot move", f.owner, "PATCH", grp, map[string]any{"application": uuid.NewString()}, 400},
		{"a member may not add users", f.member, "POST", app + "/add_user", map[string]any{"user": f.plain.UUID, "role": "member"}, 403},
		{"support may not add users", f.support, "POST", app + "/add_user", map[string]any{"user": f.plain.UUID, "role": "member"}, 403},
		{"a plain user may not add users", f.plain, "POST", app + "/add_user", map[string]any{"user": f.plain.UUID, "role": "owner"}, 404},
		{"an unknown role is refused", f.owner, "POST", app + "/add_user", map[string]any{"user": f.plain.UUID, "role": "king"}, 400},
		{"an unknown user is refused", f.owner, "POST", app + "/add_user", map[string]any{"user": uuid.NewString(), "role": "member"}, 400},
		{"a grant twice is refused", f.owner, "POST", app + "/add_user", map[string]any{"user": f.member.UUID, "role": "member"}, 400},
		{"a past expiry is refused", f.owner, "POST", app + "/add_user", map[string]any{"user": f.plain.UUID, "role": "member", "expiration_time": "2001-01-01T00:00:00Z"}, 400},
		{"the application's admin adds to its group", f.admin, "POST", grp + "/add_user", map[string]any{"user": f.plain.UUID, "role": "member"}, 201},
		{"a group member reads its members", f.plain, "GET", grp + "/list_users", nil, 200},
		{"a group member may not read the application's members", f.plain, "GET", app + "/list_users", nil, 404},
		{"a group member reads the application", f.plain, "GET", app, nil, 200},
		{"a member may not delete the group", f.member, "DELETE", grp, nil, 403},
		{"support may not delete an application", f.support, "DELETE", app, nil, 403},
		{"an owner may not delete the application", f.owner, "DELETE", app, nil, 403},
		{"a member may not remove another", f.member, "POST", app + "/delete_user", map[string]any{"user": f.admin.UUID}, 403},
		{"an admin changes a role", f.admin, "POST", app + "/update_user", map[string]any{"user": f.member.UUID, "role": "member", "expiration_time": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)}, 200},
		{"update_user of a non-member is refused", f.admin, "POST", app + "/update_user", map[string]any{"user": f.plain.UUID, "role": "admin"}, 400},
		{"a member leaves", f.member, "POST", app + "/delete_user", map[string]any{"user": f.member.UUID}, 204},
		{"who left no longer sees it", f.member, "GET", app, nil, 404},
		{"leaving twice is a 404", f.member, "POST", app + "/delete_user", map[string]any{"user": f.member.UUID}, 404},
		{"the application's admin deletes its group", f.admin, "DELETE", grp, nil, 204},
		{"the deleted group is gone", f.staff, "GET", grp, nil, 404},
		{"staff delete the application", f.staff, "DELETE", app, nil, 204},
		{"the deleted application is gone", f.owner, "GET", app, nil, 404},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r := as(t, tc.who, tc.method, tc.path, tc.body)
			if r.Status != tc.want {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.Status, r.Body, tc.want)
			}
			if r.Status >= 400 && r.JSON()["error"] == nil {
				t.Errorf("no error envelope: %s", r.Body)
			}
		})
	}
}

func TestScopeEnvelopesAndLists(t *testing.T) {
	f := newGroupFixture(t)
	r := as(t, f.member, "GET", scopePath(groups.KindGroup, f.group), nil)
	g, _ := result(t, r)["group"].(map[string]any)
	if g["application"] != f.app || g["name"] != "Test Group" || g["status"] != "ENABLED" ||
		!strings.HasSuffix(g["href"].(string), "/api/groups/group/"+f.group) || g["custom_data"].(map[string]any)["tier_depth"] != float64(9) {
		t.Errorf("group: %s", r.Body)
	}
	a, _ := result(t, as(t, f.owner, "GET", scopePath(groups.KindApplication, f.app), nil))["application"].(map[string]any)
	if a["custom_data"] != nil || a["description"] != "Test application for use in this round of tests" {
		t.Errorf("application: %v", a)
	}
	for _, tc := range []struct {
		who  testenv.User
		path string
		key  string
		want string
	}{
		{f.member, "/api/applications/application", "applications", f.app},
		{f.plain, "/api/applications/application", "applications", ""},
		{f.staff, "/api/groups/group?application=" + f.app, "groups", f.group},
	} {
		res := result(t, as(t, tc.who, "GET", tc.path, nil))
		items, _ := res[tc.key].([]any)
		found := false
		for _, it := range items {
			found = found || it.(map[string]any)["id"] == tc.want
		}
		if (tc.want != "") != found || (tc.want == "" && res["count"] != float64(0)) {
			t.Errorf("%s as %s: %v", tc.path, tc.who.Email, res)
		}
	}
	// Basic credentials (eContext's) work on every route.
	basic := func(method, path string, body any, want int) *testenv.Resp {
		t.Helper()
		r := env.Do(t, method, path, body, "Authorization", testenv.Basic(f.staff.Email, f.staff.Password))
		if r.Status != want {
			t.Fatalf("Basic %s %s: %d %s", method, path, r.Status, r.Body)
		}
		return r
	}
	id := result(t, basic("POST", "/api/applications/application", map[string]any{"name": "Basic app"}, 201))["application"].(map[string]any)["id"].(string)
	basic("GET", "/api/applications/application?page=1&page_size=5", nil, 200)
	basic("GET", scopePath(groups.KindApplication, id), nil, 200)
	basic("PATCH", scopePath(groups.KindApplication, id), map[string]any{"status": "DISABLED"}, 200)
	basic("POST", scopePath(groups.KindApplication, id)+"/add_user", map[string]any{"user": f.plain.UUID, "role": "admin"}, 201)
	lr := basic("GET", scopePath(groups.KindApplication, id)+"/list_users?role=admin", nil, 200)
	if lr.Header.Get("X-Result-Count") != "1" || lr.Header.Get("Link") == "" {
		t.Errorf("list_users headers: %v", lr.Header)
	}
	basic("POST", scopePath(groups.KindApplication, id)+"/delete_user", map[string]any{"user": f.plain.UUID}, 204)
	basic("DELETE", scopePath(groups.KindApplication, id), nil, 204)
	env.Drain(t)
}

func TestPermissionsInUserObject(t *testing.T) {
	f := newGroupFixture(t)
	addUser(t, f.owner, groups.KindGroup, f.group, f.member, "admin")
	r := as(t, f.member, "GET", "/api/users/me", nil)
	checkWaldurUser(t, "me with grants", decodeAny(t, r))
	perms, _ := r.JSON()["permissions"].([]any)
	if len(perms) != 2 {
		t.Fatalf("permissions: %s", r.Body)
	}
	byScope := map[string]map[string]any{}
	for _, p := range perms {
		m := p.(map[string]any)
		byScope[m["scope_type"].(string)] = m
		if len(m) != 15 {
			t.Errorf("a permission has %d fields, want Waldur's 15: %v", len(m), m)
		}
	}
	a, g := byScope["application"], byScope["group"]
	if a["scope_uuid"] != f.app || a["role_name"] != "member" || a["customer_uuid"] != f.app || a["customer_name"] != "Test Application" ||
		a["created_by_username"] == "" || a["user_uuid"] != f.member.UUID || a["role_uuid"] == "" {
		t.Errorf("application permission: %v", a)
	}
	if g["scope_uuid"] != f.group || g["role_name"] != "admin" || g["customer_uuid"] != f.app || g["scope_name"] != "Test Group" {
		t.Errorf("group permission: %v", g)
	}
	// Staff see them on GET /api/users/{uuid} and in the list.
	if got := as(t, f.staff, "GET", "/api/users/"+f.member.UUID, nil).JSON()["permissions"].([]any); len(got) != 2 {
		t.Errorf("GET /api/users/{uuid}: %v", got)
	}
	lr := as(t, f.staff, "GET", "/api/users?email="+f.member.Email, nil)
	var list []map[string]any
	if err := json.Unmarshal(lr.Body, &list); err != nil || len(list) != 1 || len(list[0]["permissions"].([]any)) != 2 {
		t.Errorf("list: %s", lr.Body)
	}
	// A rename reaches the permissions once the stream ran.
	if r := as(t, f.owner, "PATCH", scopePath(groups.KindApplication, f.app), map[string]any{"name": "Renamed Application"}); r.Status != 200 {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	env.Drain(t)
	for _, p := range as(t, f.member, "GET", "/api/users/me", nil).JSON()["permissions"].([]any) {
		if m := p.(map[string]any); m["customer_name"] != "Renamed Application" || (m["scope_type"] == "application" && m["scope_name"] != "Renamed Application") {
			t.Errorf("after the rename: %v", m)
		}
	}
}

func TestExpiredGrantStopsCounting(t *testing.T) {
	f := newGroupFixture(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	r := as(t, f.owner, "POST", scopePath(groups.KindApplication, f.app)+"/add_user", map[string]any{"user": f.plain.UUID, "role": "admin", "expiration_time": exp.Format(time.RFC3339)})
	if r.Status != 201 || r.Str("expiration_time") != exp.Format(time.RFC3339) {
		t.Fatalf("add_user: %d %s", r.Status, r.Body)
	}
	if ps := as(t, f.plain, "GET", "/api/users/me", nil).JSON()["permissions"].([]any); len(ps) != 1 || ps[0].(map[string]any)["expiration_time"] != exp.Format(time.RFC3339) {
		t.Fatalf("before expiry: %v", ps)
	}
	item := getItem(t, "SCOPE#"+f.app, "M#"+f.plain.UUID)
	if ttl, _ := item["ttl"].(*types.AttributeValueMemberN); ttl == nil || ttl.Value != strconv.FormatInt(exp.Unix(), 10) {
		t.Errorf("the grant's TTL: %v", item["ttl"])
	}
	svc := env.API.Groups
	svc.Now = func() time.Time { return exp.Add(time.Second) }
	defer func() { svc.Now = time.Now }()
	if ps := as(t, f.plain, "GET", "/api/users/me", nil).JSON()["permissions"].([]any); len(ps) != 0 {
		t.Errorf("an expired grant still shows: %v", ps)
	}
	if r := as(t, f.plain, "GET", scopePath(groups.KindApplication, f.app), nil); r.Status != 404 {
		t.Errorf("an expired grant still reads: %d", r.Status)
	}
	if r := as(t, f.plain, "POST", scopePath(groups.KindApplication, f.app)+"/add_user", map[string]any{"user": f.member.UUID, "role": "admin"}); r.Status != 404 {
		t.Errorf("an expired admin still manages: %d", r.Status)
	}
	lr := as(t, f.owner, "GET", scopePath(groups.KindApplication, f.app)+"/list_users", nil)
	if lr.Header.Get("X-Result-Count") != "3" || strings.Contains(string(lr.Body), f.plain.UUID) {
		t.Errorf("list_users counts the expired grant: %s %s", lr.Header.Get("X-Result-Count"), lr.Body)
	}
	// TTL's removal (the stream's follow-up) clears the user's side.
	if err := svc.GrantExpired(context.Background(), item); err != nil {
		t.Fatal(err)
	}
	if g := getItem(t, "GRANTS#"+f.plain.UUID, "GRANTS"); g["g_"+f.app] != nil || g["n"].(*types.AttributeValueMemberN).Value != "0" {
		t.Errorf("user side after expiry: %v", g)
	}
}

func TestGrantAndGroupLimits(t *testing.T) {
	f := newGroupFixture(t)
	setN(t, "GRANTS#"+f.plain.UUID, "GRANTS", "n", groups.MaxGrantsPerUser)
	r := as(t, f.owner, "POST", scopePath(groups.KindApplication, f.app)+"/add_user", map[string]any{"user": f.plain.UUID, "role": "member"})
	if r.Status != 400 || !strings.Contains(r.Str("error_description"), "at most 500 role grants") {
		t.Errorf("past the grant limit: %d %s", r.Status, r.Body)
	}
	setN(t, "SCOPE#"+f.app, "#SCOPE", "groups", groups.MaxGroupsPerApplication)
	r = as(t, f.owner, "POST", "/api/groups/group", map[string]any{"name": "one too many", "application": f.app})
	if r.Status != 400 || !strings.Contains(r.Str("error_description"), "at most 1000 groups") {
		t.Errorf("past the group limit: %d %s", r.Status, r.Body)
	}
}

func TestMembershipBudgets(t *testing.T) {
	f := newGroupFixture(t)
	for _, tc := range []struct {
		desc     string
		budget   int
		txs      int
		run      func() *testenv.Resp
		wantCode int
	}{
		{"add_user: one transaction", 4, 1, func() *testenv.Resp {
			return as(t, f.admin, "POST", scopePath(groups.KindGroup, f.group)+"/add_user", map[string]any{"user": f.plain.UUID, "role": "member"})
		}, 201},
		{"GET /api/users/me with grants", 2, 0, func() *testenv.Resp { return as(t, f.plain, "GET", "/api/users/me", nil) }, 200},
		{"list_users page", 2, 0, func() *testenv.Resp {
			return as(t, f.member, "GET", scopePath(groups.KindApplication, f.app)+"/list_users", nil)
		}, 200},
		{"list_users of a group by its application's owner", 2, 0, func() *testenv.Resp {
			return as(t, f.owner, "GET", scopePath(groups.KindGroup, f.group)+"/list_users", nil)
		}, 200},
		{"GET /api/users?customer_uuid= page", 2, 0, func() *testenv.Resp { return as(t, f.member, "GET", "/api/users?customer_uuid="+f.app, nil) }, 200},
		{"delete_user: one transaction", 4, 1, func() *testenv.Resp {
			return as(t, f.admin, "POST", scopePath(groups.KindGroup, f.group)+"/delete_user", map[string]any{"user": f.plain.UUID})
		}, 204},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			var r *testenv.Resp
			got := env.Requests.Measure(func() { r = tc.run() })
			if r.Status != tc.wantCode {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if got.Requests > tc.budget || got.ByOp["TransactWriteItems"] != tc.txs {
				t.Fatalf("%d requests %v, budget %d with %d transaction(s)", got.Requests, got.ByOp, tc.budget, tc.txs)
			}
			t.Logf("%d requests %v", got.Requests, got.ByOp)
		})
	}
	// Ending an owner's grant beside another owner (the last-owner rule's
	// guard) is one transaction too: the grant's role is read with the
	// scope, so the first transaction carries the guard.
	app := scopePath(groups.KindApplication, f.app)
	for _, tc := range []struct{ desc, promoted, by string }{
		{"an owner leaves beside another", f.admin.UUID, "self"},
		{"an owner removes another owner", f.member.UUID, "owner"},
	} {
		t.Run("case=delete_user of an owner: one transaction: "+tc.desc, func(t *testing.T) {
			if r := as(t, f.owner, "POST", app+"/update_user", map[string]any{"user": tc.promoted, "role": "owner"}); r.Status != 200 {
				t.Fatalf("promote: %d %s", r.Status, r.Body)
			}
			caller := f.owner
			if tc.by == "self" {
				caller = f.admin
			}
			var r *testenv.Resp
			got := env.Requests.Measure(func() {
				r = as(t, caller, "POST", app+"/delete_user", map[string]any{"user": tc.promoted})
			})
			if r.Status != 204 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if got.Requests > 4 || got.ByOp["TransactWriteItems"] != 1 {
				t.Fatalf("%d requests %v, budget 4 with 1 transaction", got.Requests, got.ByOp)
			}
			t.Logf("%d requests %v", got.Requests, got.ByOp)
		})
	}
}

// TestLargeGroupPages: a group of 5,000 members (three real ones and
// 4,997 grants written straight to the table) answers list_users and the
// scope-filtered GET /api/users in 2 requests a page (the Query of the
// scope, then the authentication reading the page), with the right counts.
func TestLargeGroupPages(t *testing.T) {
	f := newGroupFixture(t)
	for _, u := range []testenv.User{f.owner, f.member, f.plain} {
		addUser(t, f.admin, groups.KindGroup, f.group, u, "member")
	}
	bulkMembers(t, f.app, f.group, 4997)
	for _, tc := range []struct{ path, count string }{
		{scopePath(groups.KindGroup, f.group) + "/list_users?page_size=3", "5000"},
		{scopePath(groups.KindGroup, f.group) + "/list_users?role=member&page=2&page_size=50", "5000"},
		{"/api/users?project_uuid=" + f.group + "&page_size=3", "5000"},
		{"/api/users?customer_uuid=" + f.app + "&project_roles=member&page_size=3", "5000"},
		{"/api/users?customer_uuid=" + f.app + "&organization_roles=owner,admin", "2"},
	} {
		t.Run("case="+tc.path, func(t *testing.T) {
			var r *testenv.Resp
			got := env.Requests.Measure(func() { r = as(t, f.staff, "GET", tc.path, nil) })
			if r.Status != 200 || r.Header.Get("X-Result-Count") != tc.count {
				t.Fatalf("%d count %s %s", r.Status, r.Header.Get("X-Result-Count"), r.Body)
			}
			if got.Requests > 2 {
				t.Fatalf("%d requests %v", got.Requests, got.ByOp)
			}
			t.Logf("%d requests %v, %.1f capacity units", got.Requests, got.ByOp, got.Capacity)
		})
	}
	t.Run("case=a member sees the group's members, an outsider does not", func(t *testing.T) {
		if r := as(t, f.plain, "GET", "/api/users?project_uuid="+f.group, nil); r.Header.Get("X-Result-Count") != "5000" {
			t.Errorf("member: %s", r.Header.Get("X-Result-Count"))
		}
		out := env.NewUser(t, "goutsider")
		if r := as(t, out, "GET", "/api/users?project_uuid="+f.group, nil); r.Status != 200 || r.Header.Get("X-Result-Count") != "0" {
			t.Errorf("outsider: %d %s", r.Status, r.Header.Get("X-Result-Count"))
		}
		if r := as(t, f.plain, "GET", "/api/users?project_uuid="+f.group+"&is_staff=true", nil); r.Status != 400 {
			t.Errorf("a combination the scope filter does not serve: %d", r.Status)
		}
		if r := as(t, f.plain, "GET", "/api/users?project_roles=admin", nil); r.Status != 400 {
			t.Errorf("roles without a scope: %d", r.Status)
		}
	})
}

// TestDeletionCascade: deleting a user (self, and by staff) removes their
// grants and the scopes they were alone in, with their groups and grants;
// a shared scope stays. The whole table is scanned for what names them.
func TestDeletionCascade(t *testing.T) {
	staff := env.NewStaff(t, "cstaff", false)
	for _, by := range []string{"self", "staff"} {
		t.Run("case=deleted by "+by, func(t *testing.T) {
			alone, other := env.NewUser(t, "calone"), env.NewUser(t, "cother")
			solo := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "solo"})
			addUser(t, staff, groups.KindApplication, solo, alone, "owner")
			soloGroup := scopeID(t, alone, groups.KindGroup, map[string]any{"name": "solo group", "application": solo})
			addUser(t, alone, groups.KindGroup, soloGroup, alone, "owner")
			shared := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "shared"})
			addUser(t, staff, groups.KindApplication, shared, alone, "admin")
			addUser(t, staff, groups.KindApplication, shared, other, "member")
			sharedGroup := scopeID(t, staff, groups.KindGroup, map[string]any{"name": "group of two", "application": shared})
			addUser(t, staff, groups.KindGroup, sharedGroup, alone, "member")
			addUser(t, staff, groups.KindGroup, sharedGroup, other, "member")
			lonelyGroup := scopeID(t, staff, groups.KindGroup, map[string]any{"name": "lonely", "application": shared})
			addUser(t, staff, groups.KindGroup, lonelyGroup, alone, "member")

			if by == "self" {
				if r := as(t, alone, "DELETE", "/api/users", nil); r.Status != 200 {
					t.Fatalf("delete self: %d %s", r.Status, r.Body)
				}
			} else if r := as(t, staff, "DELETE", "/api/users/"+alone.UUID, nil); r.Status != 204 {
				t.Fatalf("staff delete: %d %s", r.Status, r.Body)
			}
			env.Drain(t)
			for _, id := range []string{alone.UUID, solo, soloGroup, lonelyGroup} {
				if items := scanFor(t, id); len(items) > 0 {
					t.Errorf("%s is still named by %d item(s): %v", id, len(items), items)
				}
			}
			if r := as(t, other, "GET", scopePath(groups.KindApplication, shared), nil); r.Status != 200 {
				t.Errorf("the shared application: %d", r.Status)
			}
			if r := as(t, other, "GET", scopePath(groups.KindGroup, sharedGroup)+"/list_users", nil); r.Header.Get("X-Result-Count") != "1" {
				t.Errorf("the shared group's members: %s %s", r.Header.Get("X-Result-Count"), r.Body)
			}
			if r := as(t, staff, "GET", scopePath(groups.KindApplication, solo), nil); r.Status != 404 {
				t.Errorf("the sole-member application: %d", r.Status)
			}
		})
	}
}

// scanFor returns the keys of the items that mention s anywhere.
func scanFor(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	p := dynamodb.NewScanPaginator(env.DB, &dynamodb.ScanInput{TableName: aws.String(env.Config.TableName)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if strings.Contains(fmt.Sprint(flatten(it)), s) {
				out = append(out, fmt.Sprint(flatten(map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]})))
			}
		}
	}
	return out
}

func flatten(it map[string]types.AttributeValue) map[string]any {
	out := map[string]any{}
	for k, v := range it {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out[k] = v.Value
		case *types.AttributeValueMemberN:
			out[k] = v.Value
		case *types.AttributeValueMemberM:
			out[k] = flatten(v.Value)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func getItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Config.TableName),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func setN(t *testing.T, pk, sk, attr string, v int) {
	t.Helper()
	_, err := env.DB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(env.Config.TableName),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
		UpdateExpression: aws.String("SET #a = :v"), ExpressionAttributeNames: map[string]string{"#a": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.Itoa(v)}}})
	if err != nil {
		t.Fatal(err)
	}
}

// bulkMembers writes n member grants of users that sort after every real
// uuid (ffffffff-…) on group, and their mirrors in app, straight to the
// table.
func bulkMembers(t *testing.T, app, group string, n int) {
	t.Helper()
	now := time.Now().UTC().Format(time.RFC3339)
	var reqs []types.WriteRequest
	flush := func() {
		for len(reqs) > 0 {
			out, err := env.DB.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{env.Config.TableName: reqs}})
			if err != nil {
				t.Fatal(err)
			}
			reqs = out.UnprocessedItems[env.Config.TableName]
		}
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	for i := range n {
		user := fmt.Sprintf("ffffffff-0000-4000-8000-%012d", i)
		for _, k := range [][2]string{{"SCOPE#" + group, "M#" + user}, {"SCOPE#" + app, "N#" + user + "#" + group}} {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"pk": s(k[0]), "sk": s(k[1]), "r": s("member"), "c": s(now)}}})
			if len(reqs) == 25 {
				flush()
			}
		}
	}
	flush()
}

// The authorization matrix's entries for the groups routes: "self" is an
// owner of the application (and so a manager of its group), "other" a
// user with no grant.
func init() {
	bg := context.Background()
	staffUser := &users.User{UUID: uuid.NewString(), IsStaff: true}
	scopes := func(t *testing.T, owner testenv.User) (app, grp string) {
		t.Helper()
		a, err := env.API.Groups.Create(bg, staffUser, groups.KindApplication, groups.ScopeInput{Name: aws.String("authz app")})
		if err != nil {
			t.Fatal(err)
		}
		app = a.(groups.Application).ID
		if _, err := env.API.Groups.AddUser(bg, staffUser, groups.KindApplication, app, groups.MemberInput{User: owner.UUID, Role: "owner"}); err != nil {
			t.Fatal(err)
		}
		g, err := env.API.Groups.Create(bg, staffUser, groups.KindGroup, groups.ScopeInput{Name: aws.String("authz group"), Application: &app})
		if err != nil {
			t.Fatal(err)
		}
		return app, g.(groups.Group).ID
	}
	member := func(t *testing.T, kind, id string) string {
		t.Helper()
		u := quickUser(t, "authz-member")
		if _, err := env.API.Groups.AddUser(bg, staffUser, kind, id, groups.MemberInput{User: u.UUID, Role: "member"}); err != nil {
			t.Fatal(err)
		}
		return u.UUID
	}
	on := func(kind, suffix string, body func(t *testing.T, kind, id string) func(role string) any) func(*testing.T, testenv.User) func(string) (string, any) {
		return func(t *testing.T, owner testenv.User) func(string) (string, any) {
			app, grp := scopes(t, owner)
			id := app
			if kind == groups.KindGroup {
				id = grp
			}
			var b func(string) any
			if body != nil {
				b = body(t, kind, id)
			}
			return func(role string) (string, any) {
				if b == nil {
					return scopePath(kind, id) + suffix, nil
				}
				return scopePath(kind, id) + suffix, b(role)
			}
		}
	}
	read := map[string]int{anon: 401, self: 200, other: 404, support: 200, staff: 200}
	change := map[string]int{anon: 401, self: 200, other: 404, support: 403, staff: 200}
	authzPolicy["POST /api/applications/application"] = authzCase{want: map[string]int{anon: 401, self: 403, other: 403, support: 403, staff: 201},
		prepare: fixed("/api/applications/application", func(testenv.User) any { return map[string]any{"name": "authz"} })}
	authzPolicy["POST /api/groups/group"] = authzCase{want: map[string]int{anon: 401, self: 201, other: 400, support: 403, staff: 201},
		prepare: func(t *testing.T, owner testenv.User) func(string) (string, any) {
			app, _ := scopes(t, owner)
			return func(string) (string, any) {
				return "/api/groups/group", map[string]any{"name": "authz", "application": app}
			}
		}}
	for _, kind := range []string{groups.KindApplication, groups.KindGroup} {
		base := strings.TrimSuffix(scopePath(kind, ""), "/")
		authzPolicy["GET "+base] = authzCase{want: everyone(401, 200), prepare: fixed(base, nil)}
		authzPolicy["GET "+base+"/{id}"] = authzCase{want: read, prepare: on(kind, "", nil)}
		authzPolicy["GET "+base+"/{id}/list_users"] = authzCase{want: read, prepare: on(kind, "/list_users", nil)}
		authzPolicy["PATCH "+base+"/{id}"] = authzCase{want: change, prepare: on(kind, "", func(*testing.T, string, string) func(string) any {
			return func(string) any { return map[string]any{"description": "authz"} }
		})}
		authzPolicy["PUT "+base+"/{id}"] = authzCase{want: change, prepare: on(kind, "", func(_ *testing.T, kind, id string) func(string) any {
			return func(string) any { return map[string]any{"name": "authz"} }
		})}
		del := map[string]int{anon: 401, self: 204, other: 404, support: 403, staff: 204}
		if kind == groups.KindApplication {
			del[self] = 403 // only staff delete applications
		}
		authzPolicy["DELETE "+base+"/{id}"] = authzCase{want: del, prepare: on(kind, "", nil), freshTarget: true}
		authzPolicy["POST "+base+"/{id}/add_user"] = authzCase{want: map[string]int{anon: 401, self: 201, other: 404, support: 403, staff: 201},
			prepare: on(kind, "/add_user", func(t *testing.T, _, _ string) func(string) any {
				return func(string) any { return map[string]any{"user": quickUser(t, "authz-joiner").UUID, "role": "member"} }
			})}
		authzPolicy["POST "+base+"/{id}/update_user"] = authzCase{want: change,
			prepare: on(kind, "/update_user", func(t *testing.T, kind, id string) func(string) any {
				m := member(t, kind, id)
				return func(string) any { return map[string]any{"user": m, "role": "admin"} }
			})}
		authzPolicy["POST "+base+"/{id}/delete_user"] = authzCase{want: map[string]int{anon: 401, self: 204, other: 404, support: 403, staff: 204}, freshTarget: true,
			prepare: on(kind, "/delete_user", func(t *testing.T, kind, id string) func(string) any {
				m := member(t, kind, id)
				return func(string) any { return map[string]any{"user": m} }
			})}
	}
}

// grantsRead is the request a list page costs for its users' permissions
// (docs/GROUPS.md "Budgets"): 1 when a user on the page was ever granted a
// role, else 0.
func grantsRead(t *testing.T, r *testenv.Resp) int {
	t.Helper()
	var page []map[string]any
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatalf("not a page: %s", r.Body)
	}
	for _, u := range page {
		id, _ := u["uuid"].(string)
		if got, err := env.API.Users.Get(context.Background(), id); err == nil && got.HasGrants {
			return 1
		}
	}
	return 0
}
