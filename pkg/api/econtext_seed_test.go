package api_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// newScope creates an application (app "") or a group of app through the
// service, as staff.
func newScope(t *testing.T, staff testenv.User, name, app string) string {
	t.Helper()
	st, err := env.API.Users.Get(context.Background(), staff.UUID)
	if err != nil {
		t.Fatal(err)
	}
	in := groups.ScopeInput{Name: &name}
	kind := groups.KindApplication
	if app != "" {
		kind, in.Application = groups.KindGroup, &app
	}
	v, err := env.API.Groups.Create(context.Background(), st, kind, in)
	if err != nil {
		t.Fatal(err)
	}
	switch s := v.(type) {
	case groups.Application:
		return s.ID
	case groups.Group:
		return s.ID
	}
	t.Fatalf("created %T", v)
	return ""
}

// grant gives user role on a scope, as staff.
func grant(t *testing.T, staff testenv.User, kind, scope, user, role string) {
	t.Helper()
	st, err := env.API.Users.Get(context.Background(), staff.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.API.Groups.AddUser(context.Background(), st, kind, scope, groups.MemberInput{User: user, Role: role}); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// eContext's time: "2017-05-08 19:21:13.381000+00:00".
var ecTimeForm = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$`)

// TestEContextSeedExample sends the eContext seed's own example request
// (its body with applications, with Basic credentials) and compares the
// answer with the seed's.
func TestEContextSeedExample(t *testing.T) {
	ctx := context.Background()
	// The seed's Basic credentials are ops@info.com:p1v0pr0s1m, a staff
	// member here.
	if _, err := env.API.Users.EnsureStaff(ctx, "ops@info.com", "p1v0pr0s1m", true, false); err != nil {
		t.Fatal(err)
	}
	staff := testenv.User{Email: "ops@info.com", Password: "p1v0pr0s1m"}
	st, err := env.API.Users.Get(ctx, mustLookup(t, "ops@info.com"))
	if err != nil {
		t.Fatal(err)
	}
	staff.UUID = st.UUID
	app := newScope(t, staff, "Test Application", "")

	r := env.Do(t, "POST", "/api/users/user", map[string]any{
		"name": "Test User", "email": "test-user@econtext.ai", "password": "a new password",
		"applications": []string{app},
	}, "authorization", "Basic b3BzQGluZm8uY29tOnAxdjBwcjBzMW0=", "cache-control", "no-cache")
	if r.Status != http.StatusCreated {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	u := ecUser(t, r)
	seedKeys := []string{"apikeys", "applications", "created_at", "custom_data", "email", "groups", "href", "id", "modified_at", "name", "status", "username"}
	if !slices.Equal(keys(u), seedKeys) {
		t.Errorf("user fields %v; the seed's %v", keys(u), seedKeys)
	}
	if u["username"] != "test-user@econtext.ai" || u["email"] != "test-user@econtext.ai" || u["status"] != "UNVERIFIED" ||
		u["name"] != "Test User" || u["custom_data"] != nil {
		t.Errorf("user %v", u)
	}
	for _, f := range []string{"created_at", "modified_at"} {
		if !ecTimeForm.MatchString(fmt.Sprint(u[f])) {
			t.Errorf("%s %v is not in eContext's form", f, u[f])
		}
	}
	apps, _ := u["applications"].([]any)
	if len(apps) != 1 {
		t.Fatalf("applications %v", u["applications"])
	}
	a := apps[0].(map[string]any)
	appKeys := []string{"created_at", "custom_data", "description", "href", "id", "modified_at", "name", "status"}
	if !slices.Equal(keys(a), appKeys) {
		t.Errorf("application fields %v; the seed's %v", keys(a), appKeys)
	}
	if a["id"] != app || a["name"] != "Test Application" || a["status"] != "ENABLED" || a["href"] != env.URL+"/api/applications/application/"+app {
		t.Errorf("application %v", a)
	}
	if g, _ := u["groups"].([]any); len(g) != 0 {
		t.Errorf("groups %v", u["groups"])
	}
	// The new user is a member of the application, from its first write.
	perms := waldurPermissions(t, staff, u["id"].(string))
	if len(perms) != 1 || perms[0]["scope_uuid"] != app || perms[0]["role_name"] != groups.RoleMember || perms[0]["scope_type"] != "application" {
		t.Errorf("permissions %v", perms)
	}
}

func mustLookup(t *testing.T, email string) string {
	t.Helper()
	h := claimHolder(t, "EMAIL#"+users.NormalizeEmail(email))
	if h == "" {
		t.Fatalf("no account holds %s", email)
	}
	return h
}

// waldurPermissions is the Waldur user object's permissions, read by staff.
func waldurPermissions(t *testing.T, staff testenv.User, id string) []map[string]any {
	t.Helper()
	tok := env.Login(t, staff.Email, staff.Password)
	r := env.Do(t, "GET", "/api/users/"+id, nil, "Authorization", "Token "+tok)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var out []map[string]any
	for _, p := range r.JSON()["permissions"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

func TestEContextCreateInScopes(t *testing.T) {
	staff := env.NewStaff(t, "ecscopestaff", false)
	owner := env.NewUser(t, "ecowner")
	member := env.NewUser(t, "ecmember")
	app := newScope(t, staff, "Owned", "")
	grp := newScope(t, staff, "Owned group", app)
	other := newScope(t, staff, "Not owned", "")
	grant(t, staff, groups.KindApplication, app, owner.UUID, groups.RoleOwner)
	grant(t, staff, groups.KindApplication, app, member.UUID, groups.RoleMember)
	grant(t, staff, groups.KindApplication, other, member.UUID, groups.RoleAdmin)

	create := func(t *testing.T, caller []string, body map[string]any) (*testenv.Resp, string) {
		email := testenv.Email("ecin")
		body["email"], body["password"] = email, testenv.DefaultPassword
		return env.Do(t, "POST", "/api/users/user", body, caller...), email
	}

	t.Run("case=an owner of the application creates a member of it and of its group", func(t *testing.T) {
		r, _ := create(t, auth(owner), map[string]any{"applications": []string{app}, "groups": []string{grp}})
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		u := ecUser(t, r)
		a, g := u["applications"].([]any), u["groups"].([]any)
		if len(a) != 1 || len(g) != 1 || g[0].(map[string]any)["application"] != app {
			t.Fatalf("%v", u)
		}
		perms := waldurPermissions(t, staff, u["id"].(string))
		if len(perms) != 2 {
			t.Fatalf("permissions %v", perms)
		}
		for _, p := range perms {
			if p["created_by_username"] != owner.Email || p["role_name"] != groups.RoleMember {
				t.Errorf("permission %v", p)
			}
		}
	})

	for _, tc := range []struct {
		desc   string
		caller []string
		body   map[string]any
		field  string
		names  string
	}{
		{"a member (not an owner or admin) of the application", auth(member), map[string]any{"applications": []string{app}}, "applications", app},
		{"an owner of one application naming another", auth(owner), map[string]any{"applications": []string{app, other}}, "applications", other},
		{"an anonymous sign-up naming an application", nil, map[string]any{"applications": []string{app}}, "applications", app},
		{"an unknown application", auth(staff), map[string]any{"applications": []string{"5fb6f5d6-3a6d-4e1d-83bb-7445274745bf"}}, "applications", "5fb6f5d6-3a6d-4e1d-83bb-7445274745bf"},
		{"an application id that is not a uuid", auth(staff), map[string]any{"applications": []string{"nope"}}, "applications", "nope"},
		{"a group id given as an application", auth(staff), map[string]any{"applications": []string{grp}}, "applications", grp},
		{"an unknown group", auth(staff), map[string]any{"groups": []string{"ec48dad3-ca61-4d74-a584-3ee3db4708ef"}}, "groups", "ec48dad3-ca61-4d74-a584-3ee3db4708ef"},
	} {
		t.Run("case="+tc.desc+" is a 400 naming it, and nothing is written", func(t *testing.T) {
			r, email := create(t, tc.caller, tc.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(tc.names)).Match(r.Body) || !regexp.MustCompile(`"`+tc.field+`"`).Match(r.Body) {
				t.Errorf("the answer does not name %s in %s: %s", tc.names, tc.field, r.Body)
			}
			if claimHolder(t, "EMAIL#"+email) != "" {
				t.Error("the refused create claimed the address")
			}
		})
	}

	t.Run("case=twenty scopes fit in the account's transaction, twenty-one are refused", func(t *testing.T) {
		var apps, grps []string
		for i := range 10 {
			a := newScope(t, staff, fmt.Sprintf("Many %d", i), "")
			apps = append(apps, a)
			grps = append(grps, newScope(t, staff, fmt.Sprintf("Many group %d", i), a))
		}
		r, _ := create(t, auth(staff), map[string]any{"applications": apps, "groups": grps})
		if r.Status != http.StatusCreated {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		u := ecUser(t, r)
		if len(u["applications"].([]any)) != 10 || len(u["groups"].([]any)) != 10 {
			t.Fatalf("%v", u)
		}
		r, email := create(t, auth(staff), map[string]any{"applications": append(apps, app), "groups": grps})
		if r.Status != http.StatusBadRequest || claimHolder(t, "EMAIL#"+email) != "" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("case=a scope deleted between the check and the write leaves nothing", func(t *testing.T) {
		gone := newScope(t, staff, "Going", "")
		st, _ := env.API.Users.Get(context.Background(), staff.UUID)
		as, gs, err := env.API.Groups.Scopes(context.Background(), []string{gone}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.API.Groups.Delete(context.Background(), st, groups.KindApplication, gone); err != nil {
			t.Fatal(err)
		}
		email := testenv.Email("ecraced")
		pw := testenv.DefaultPassword
		_, err = env.API.Users.RegisterJoining(context.Background(), users.ProfileInput{Email: &email, Password: &pw}, "198.51.100.7", users.Join{
			Items: func(u *users.User) []types.TransactWriteItem {
				return env.API.Groups.JoinItemsBy(u.UUID, st, as, gs, groups.RoleMember)
			},
			Failed: errScopeGone,
		})
		if err != errScopeGone {
			t.Fatalf("err %v; want the join's failure", err)
		}
		if claimHolder(t, "EMAIL#"+email) != "" {
			t.Error("the failed create claimed the address")
		}
	})
}

var errScopeGone = fmt.Errorf("scope gone")
