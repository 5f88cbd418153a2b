package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

// TestScopePagesInTwoRequests: with a group of 5,000 members, a list_users
// page and a scope-filtered GET /api/users page cost 2 DynamoDB requests
// (the Query of the scope, then one BatchGetItem that authenticates the
// caller and reads the page), with a token and with an API key, at any
// depth; an application's admin listing a group they are not in costs
// the same; a non-member learns nothing (404 / an empty page) and a
// forged token gets its 401.
func TestScopePagesInTwoRequests(t *testing.T) {
	f := newGroupFixture(t)
	for _, u := range []testenv.User{f.owner, f.member, f.plain} {
		addUser(t, f.admin, groups.KindGroup, f.group, u, "member")
	}
	bulkMembers(t, f.app, f.group, 4997)
	keyOf := func(u testenv.User) []string {
		key, _ := newKey(t, u, "lists")["key"].(string)
		if keyStatus(t, key) != http.StatusOK { // its first use records last_used_at: not measured
			t.Fatal("the key does not authenticate")
		}
		return keyAuth(key)
	}
	tokenOf := func(u testenv.User) []string { return []string{"Authorization", testenv.Token(u.Token)} }
	memberKey, adminKey := keyOf(f.member), keyOf(f.admin)
	grp := scopePath(groups.KindGroup, f.group) + "/list_users"
	for _, tc := range []struct {
		desc        string
		hdr         []string
		path        string
		count       string
		n           int  // entries on the page (GET /api/users shows users, and only 3 of the 5,000 exist)
		wantsMember bool // the member's own row is on the page (read beside their authentication)
	}{
		{"staff: list_users page 1", tokenOf(f.staff), grp + "?page_size=10", "5000", 10, true},
		{"staff: list_users deep page", tokenOf(f.staff), grp + "?page=100&page_size=50", "5000", 50, false},
		{"staff: list_users with role", tokenOf(f.staff), grp + "?role=member&page=3&page_size=40", "5000", 40, false},
		{"staff: project_uuid page", tokenOf(f.staff), "/api/users?project_uuid=" + f.group + "&page_size=10", "5000", 3, true},
		{"staff: customer_uuid page", tokenOf(f.staff), "/api/users?customer_uuid=" + f.app + "&page=50&page_size=20", "5001", 0, false},
		{"member (token): list_users page 1, their own row on it", tokenOf(f.member), grp, "5000", 10, true},
		{"member (token): project_uuid deep page", tokenOf(f.member), "/api/users?project_uuid=" + f.group + "&page=200&page_size=25", "5000", 0, false},
		{"member (token): customer_uuid page 1", tokenOf(f.member), "/api/users?customer_uuid=" + f.app, "5001", 4, true},
		{"member (Api-Key): list_users page 1", memberKey, grp, "5000", 10, true},
		{"member (Api-Key): list_users deep page with role", memberKey, grp + "?role=member&page=99&page_size=50", "5000", 50, false},
		{"member (Api-Key): project_uuid page", memberKey, "/api/users?project_uuid=" + f.group, "5000", 3, true},
		{"member (Api-Key): customer_uuid page", memberKey, "/api/users?customer_uuid=" + f.app + "&project_roles=member&page=3", "5000", 0, false},
		{"application admin, not in the group (token): list_users", tokenOf(f.admin), grp + "?page=7&page_size=50", "5000", 50, false},
		{"application admin, not in the group (Api-Key): list_users", adminKey, grp, "5000", 10, true},
		// They manage the group's grants, so its members are theirs to read
		// by project_uuid as by list_users.
		{"application admin, not in the group (token): project_uuid page", tokenOf(f.admin), "/api/users?project_uuid=" + f.group, "5000", 3, true},
		{"application admin, not in the group (Api-Key): project_uuid deep page", adminKey, "/api/users?project_uuid=" + f.group + "&page=40&page_size=25", "5000", 0, false},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			var r *testenv.Resp
			got := env.Requests.Measure(func() { r = env.Do(t, "GET", tc.path, nil, tc.hdr...) })
			if r.Status != http.StatusOK || r.Header.Get("X-Result-Count") != tc.count {
				t.Fatalf("%d count %s %s", r.Status, r.Header.Get("X-Result-Count"), r.Body)
			}
			var rows []any
			if err := json.Unmarshal(r.Body, &rows); err != nil || len(rows) != tc.n {
				t.Errorf("%d entries, want %d", len(rows), tc.n)
			}
			if has := strings.Contains(string(r.Body), f.member.Email); has != tc.wantsMember {
				t.Errorf("the member's row (with their email) on the page: %v, want %v", has, tc.wantsMember)
			}
			if got.Requests != 2 || got.ByOp["Query"] != 1 || got.ByOp["BatchGetItem"] != 1 {
				t.Fatalf("%d requests %v, budget 2 (one Query, one BatchGetItem)", got.Requests, got.ByOp)
			}
			t.Logf("%d requests %v, %.1f capacity units", got.Requests, got.ByOp, got.Capacity)
		})
	}

	t.Run("case=a non-member gets the 404 of an unknown scope, and nothing read", func(t *testing.T) {
		out := env.NewUser(t, "goutsider")
		outKey := keyOf(out)
		for _, hdr := range [][]string{tokenOf(out), outKey} {
			var r *testenv.Resp
			got := env.Requests.Measure(func() { r = env.Do(t, "GET", grp, nil, hdr...) })
			unknown := env.Do(t, "GET", scopePath(groups.KindGroup, "00000000-0000-4000-8000-000000000000")+"/list_users", nil, hdr...)
			if r.Status != http.StatusNotFound || string(r.Body) != string(unknown.Body) || r.Header.Get("X-Result-Count") != "" {
				t.Errorf("list_users: %d %s (an unknown group: %d %s)", r.Status, r.Body, unknown.Status, unknown.Body)
			}
			if got.Requests > 2 {
				t.Errorf("%d requests %v", got.Requests, got.ByOp)
			}
			r = env.Do(t, "GET", "/api/users?project_uuid="+f.group, nil, hdr...)
			if r.Status != http.StatusOK || r.Header.Get("X-Result-Count") != "0" || strings.TrimSpace(string(r.Body)) != "[]" {
				t.Errorf("project_uuid: %d %s %s", r.Status, r.Header.Get("X-Result-Count"), r.Body)
			}
			for _, leak := range []string{f.member.Email, f.member.UUID, f.owner.Email} {
				if strings.Contains(string(r.Body), leak) || strings.Contains(r.Header.Get("Link"), leak) {
					t.Errorf("the empty page names %s: %s", leak, r.Body)
				}
			}
		}
	})

	t.Run("case=a forged token is a 401 after the Query; a malformed one costs nothing", func(t *testing.T) {
		forged, err := secret.NewToken(f.member.UUID)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{grp, "/api/users?project_uuid=" + f.group} {
			var r *testenv.Resp
			got := env.Requests.Measure(func() { r = env.Do(t, "GET", path, nil, "Authorization", testenv.Token(forged.Value)) })
			if r.Status != http.StatusUnauthorized {
				t.Errorf("forged: %d %s", r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), f.member.Email) || got.Requests != 2 {
				t.Errorf("forged: %d requests %v, %s", got.Requests, got.ByOp, r.Body)
			}
			for _, hdr := range []string{"", "Token not-a-token", "Api-Key ak_short", "Basic %%%", "Negotiate x"} {
				got := env.Requests.Measure(func() { r = env.Do(t, "GET", path, nil, "Authorization", hdr) })
				if r.Status != http.StatusUnauthorized || got.Requests != 0 {
					t.Errorf("%q: %d, %d requests %v", hdr, r.Status, got.Requests, got.ByOp)
				}
			}
		}
	})

	t.Run("case=Basic still works (its budget is not promised)", func(t *testing.T) {
		for _, c := range []struct {
			who  testenv.User
			path string
		}{{f.admin, grp}, {f.member, "/api/users?project_uuid=" + f.group}} {
			r := env.Do(t, "GET", c.path, nil, "Authorization", testenv.Basic(c.who.Email, c.who.Password))
			if r.Status != http.StatusOK || r.Header.Get("X-Result-Count") != "5000" {
				t.Errorf("%s: %d %s", c.path, r.Status, r.Body)
			}
		}
		out := env.NewUser(t, "gbasicout")
		if r := env.Do(t, "GET", grp, nil, "Authorization", testenv.Basic(out.Email, out.Password)); r.Status != http.StatusNotFound {
			t.Errorf("non-member with Basic: %d %s", r.Status, r.Body)
		}
	})
}

// TestCustomerFilterForAGroupMember: a caller holding grants only on some
// of an application's groups belongs to those groups, not to the
// application: customer_uuid shows them those groups' members, not the
// application's own members nor another group's; on every path (the
// plain page, with another filter, with an ordering).
func TestCustomerFilterForAGroupMember(t *testing.T) {
	f := newGroupFixture(t)
	other := scopeID(t, f.admin, groups.KindGroup, map[string]any{"name": "Other Group", "application": f.app})
	stranger := env.NewUser(t, "gother")
	addUser(t, f.admin, groups.KindGroup, other, stranger, "member")
	peer := env.NewUser(t, "gpeer")
	addUser(t, f.admin, groups.KindGroup, f.group, f.plain, "member")
	addUser(t, f.admin, groups.KindGroup, f.group, peer, "admin")
	for _, q := range []string{"", "&is_active=true", "&o=-date_joined", "&project_roles=member,admin"} {
		var r *testenv.Resp
		got := env.Requests.Measure(func() { r = as(t, f.plain, "GET", "/api/users?customer_uuid="+f.app+q, nil) })
		if q == "" && got.Requests != 2 {
			// The plain scope page: their narrowed page is read beside the
			// authentication, as every scope page is.
			t.Errorf("the plain page: %d requests %v, budget 2", got.Requests, got.ByOp)
		}
		if r.Status != http.StatusOK || r.Header.Get("X-Result-Count") != "2" {
			t.Errorf("customer_uuid%s: %d count %s %s", q, r.Status, r.Header.Get("X-Result-Count"), r.Body)
			continue
		}
		var rows []map[string]any
		if err := json.Unmarshal(r.Body, &rows); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, row := range rows {
			id, _ := row["uuid"].(string)
			seen[id] = true
		}
		if !seen[f.plain.UUID] || !seen[peer.UUID] {
			t.Errorf("customer_uuid%s: their group's members are missing: %s", q, r.Body)
		}
		for _, u := range []testenv.User{f.owner, f.admin, f.member, stranger} {
			if seen[u.UUID] {
				t.Errorf("customer_uuid%s shows %s, who is not in their group", q, u.Email)
			}
		}
	}
	// With Basic credentials (no claimant before the password check) the
	// same page, read after it.
	if r := env.Do(t, "GET", "/api/users?customer_uuid="+f.app, nil, "Authorization", testenv.Basic(f.plain.Email, f.plain.Password)); r.Status != http.StatusOK || r.Header.Get("X-Result-Count") != "2" ||
		strings.Contains(string(r.Body), `"uuid":"`+stranger.UUID+`"`) || !strings.Contains(string(r.Body), `"uuid":"`+peer.UUID+`"`) {
		t.Errorf("with Basic: %d count %s %s", r.Status, r.Header.Get("X-Result-Count"), r.Body)
	}
	// The application's own members still see all of it.
	if r := as(t, f.member, "GET", "/api/users?customer_uuid="+f.app, nil); r.Header.Get("X-Result-Count") != "6" {
		t.Errorf("an application member's customer_uuid: count %s %s", r.Header.Get("X-Result-Count"), r.Body)
	}
}
