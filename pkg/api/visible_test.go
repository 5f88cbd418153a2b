package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/testenv"
)

// visibleFixture: application A with group G, application B with group H.
// alice is a member of A, bob its admin, carol a member of G only, erin of
// G and H, dave of H only; frank was a member of A and left; gina's grant
// on A expires in an hour (the tests move the clock); ursula was created into A by bob and is
// not activated (UNVERIFIED); plain holds nothing.
type visibleFixture struct {
	staff, support                                    testenv.User
	alice, bob, carol, dave, erin, frank, gina, plain testenv.User
	ursula                                            string // uuid
	appA, groupG, appB, groupH                        string
	ginaExpires                                       time.Time
}

func newVisibleFixture(t *testing.T) *visibleFixture {
	t.Helper()
	f := &visibleFixture{staff: env.NewStaff(t, "visstaff", false), support: env.NewStaff(t, "vissupport", true)}
	for _, u := range []struct {
		dst    *testenv.User
		prefix string
	}{{&f.alice, "visalice"}, {&f.bob, "visbob"}, {&f.carol, "viscarol"}, {&f.dave, "visdave"}, {&f.erin, "viserin"},
		{&f.frank, "visfrank"}, {&f.gina, "visgina"}, {&f.plain, "visplain"}} {
		*u.dst = quickUser(t, u.prefix)
	}
	f.appA = scopeID(t, f.staff, groups.KindApplication, map[string]any{"name": "Visible A"})
	f.groupG = scopeID(t, f.staff, groups.KindGroup, map[string]any{"name": "Visible G", "application": f.appA})
	f.appB = scopeID(t, f.staff, groups.KindApplication, map[string]any{"name": "Visible B"})
	f.groupH = scopeID(t, f.staff, groups.KindGroup, map[string]any{"name": "Visible H", "application": f.appB})
	addUser(t, f.staff, groups.KindApplication, f.appA, f.alice, "member")
	addUser(t, f.staff, groups.KindApplication, f.appA, f.bob, "admin")
	addUser(t, f.staff, groups.KindGroup, f.groupG, f.carol, "member")
	addUser(t, f.staff, groups.KindGroup, f.groupG, f.erin, "member")
	addUser(t, f.staff, groups.KindGroup, f.groupH, f.erin, "admin")
	addUser(t, f.staff, groups.KindGroup, f.groupH, f.dave, "member")
	addUser(t, f.staff, groups.KindApplication, f.appA, f.frank, "member")
	if r := as(t, f.frank, "POST", scopePath(groups.KindApplication, f.appA)+"/delete_user", map[string]any{"user": f.frank.UUID}); r.Status != http.StatusNoContent {
		t.Fatalf("frank leaves: %d %s", r.Status, r.Body)
	}
	f.ginaExpires = time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if r := as(t, f.staff, "POST", scopePath(groups.KindApplication, f.appA)+"/add_user",
		map[string]any{"user": f.gina.UUID, "role": "member", "expiration_time": f.ginaExpires.Format(time.RFC3339)}); r.Status != http.StatusCreated {
		t.Fatalf("gina joins: %d %s", r.Status, r.Body)
	}
	r := env.Do(t, "POST", "/api/users/user", map[string]any{"name": "Ursula Unverified", "email": testenv.Email("visursula"),
		"password": testenv.DefaultPassword, "applications": []string{f.appA}}, "Authorization", testenv.Token(f.bob.Token))
	if r.Status != http.StatusCreated {
		t.Fatalf("bob creates ursula into A: %d %s", r.Status, r.Body)
	}
	u, _ := result(t, r)["user"].(map[string]any)
	if f.ursula, _ = u["id"].(string); f.ursula == "" || u["status"] != "UNVERIFIED" {
		t.Fatalf("ursula: %s", r.Body)
	}
	// bob and dave share an organization.
	for _, u := range []testenv.User{f.bob, f.dave} {
		if r := as(t, f.staff, "PATCH", "/api/users/"+u.UUID, map[string]any{"organization": "Visible Org Seven"}); r.Status != 200 {
			t.Fatalf("organization: %d %s", r.Status, r.Body)
		}
	}
	return f
}

// visList is GET /api/users?query as u: the answer and the uuids listed.
func visList(t *testing.T, u testenv.User, query string) (*testenv.Resp, []string) {
	t.Helper()
	r := as(t, u, "GET", "/api/users?"+query, nil)
	var page []map[string]any
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatalf("not a page: %s", r.Body)
		}
	}
	ids := []string{}
	for _, o := range page {
		id, _ := o["uuid"].(string)
		ids = append(ids, id)
	}
	return r, ids
}

func sameSet(got, want []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

// TestVisibleMembers: a caller who is neither staff nor support lists
// themselves and the members of their scopes (docs/GROUPS.md "Who is
// listed"), whatever the other filters, ordering and page, with exact
// counts and links; not strangers, not who left, not an expired grant.
func TestVisibleMembers(t *testing.T) {
	f := newVisibleFixture(t)
	uid := func(us ...testenv.User) []string {
		out := []string{}
		for _, u := range us {
			out = append(out, u.UUID)
		}
		return out
	}
	for _, tc := range []struct {
		desc  string
		who   testenv.User
		query string
		want  []string
	}{
		{"an application's member sees its members and its groups', the unactivated too", f.alice, "page_size=100",
			append(uid(f.alice, f.bob, f.carol, f.erin, f.gina), f.ursula)},
		{"a group's member sees its members only", f.carol, "page_size=100", uid(f.carol, f.erin)},
		{"a member of two groups sees both", f.erin, "page_size=100", uid(f.erin, f.carol, f.dave)},
		{"a member of another application's group", f.dave, "", uid(f.dave, f.erin)},
		{"who left sees only themselves", f.frank, "", uid(f.frank)},
		{"a user without grants sees only themselves", f.plain, "", uid(f.plain)},
		{"is_active=false: the unactivated co-member", f.alice, "is_active=false", []string{f.ursula}},
		{"a search finds a co-member", f.alice, "query=viscarol", uid(f.carol)},
		{"a search does not find a stranger", f.alice, "query=visdave", []string{}},
		{"an exact filter keeps the co-members that match", f.alice, "organization=visible+org+seven", uid(f.bob)},
		{"is_staff=false&o=email", f.erin, "is_staff=false&o=email", uid(f.erin, f.carol, f.dave)},
		{"staff see strangers", f.staff, "username_list=" + username(t, f.alice) + "," + username(t, f.dave), uid(f.alice, f.dave)},
		{"support see strangers", f.support, "organization=visible+org+seven", uid(f.bob, f.dave)},
		{"a scope filter with other filters: active members of A", f.alice, "customer_uuid=" + f.appA + "&is_active=true&o=-date_joined",
			uid(f.alice, f.bob, f.carol, f.erin, f.gina)},
		{"the same for staff", f.staff, "customer_uuid=" + f.appA + "&is_active=true&o=-date_joined", uid(f.alice, f.bob, f.carol, f.erin, f.gina)},
		{"a scope filter's unactivated member", f.staff, "customer_uuid=" + f.appA + "&is_active=false", []string{f.ursula}},
		{"the plain scope page lists the unactivated member too", f.alice, "customer_uuid=" + f.appA + "&page_size=100",
			append(uid(f.alice, f.bob, f.carol, f.erin, f.gina), f.ursula)},
		{"a scope filter with a search", f.dave, "project_uuid=" + f.groupH + "&query=viserin", uid(f.erin)},
		{"roles with other filters", f.alice, "customer_uuid=" + f.appA + "&organization_roles=admin&is_staff=false", uid(f.bob)},
		{"a scope the caller is not in, with filters, is empty", f.dave, "customer_uuid=" + f.appA + "&is_active=true", []string{}},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r, ids := visList(t, tc.who, tc.query)
			if r.Status != http.StatusOK {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if !sameSet(ids, tc.want) || r.Header.Get("X-Result-Count") != strconv.Itoa(len(tc.want)) {
				t.Fatalf("got %v (count %s), want %v", ids, r.Header.Get("X-Result-Count"), tc.want)
			}
		})
	}

	t.Run("case=orderings and pages apply to the visible set, with exact links", func(t *testing.T) {
		for _, q := range []string{"o=-date_joined", "o=username", "customer_uuid=" + f.appA + "&is_active=true&o=-date_joined"} {
			r := as(t, f.alice, "GET", "/api/users?"+q+"&page_size=100", nil)
			var objs []map[string]any
			if err := json.Unmarshal(r.Body, &objs); err != nil || len(objs) < 5 {
				t.Fatalf("%s: %d %s", q, r.Status, r.Body)
			}
			all := []string{}
			for i, o := range objs {
				all = append(all, o["uuid"].(string))
				if i == 0 {
					continue
				}
				p := objs[i-1]
				if strings.Contains(q, "date_joined") {
					a, _ := time.Parse(time.RFC3339, p["date_joined"].(string))
					b, _ := time.Parse(time.RFC3339, o["date_joined"].(string))
					if a.Before(b) || (a.Equal(b) && p["username"].(string) > o["username"].(string)) {
						t.Errorf("%s: %v before %v", q, p["username"], o["username"])
					}
				} else if strings.ToLower(p["username"].(string)) > strings.ToLower(o["username"].(string)) {
					t.Errorf("%s: %v before %v", q, p["username"], o["username"])
				}
			}
			r, page2 := visList(t, f.alice, q+"&page_size=2&page=2")
			if !slices.Equal(page2, all[2:4]) || r.Header.Get("X-Result-Count") != strconv.Itoa(len(all)) {
				t.Errorf("%s page 2: %v of %v, count %s", q, page2, all, r.Header.Get("X-Result-Count"))
			}
			last := (len(all) + 1) / 2
			link := r.Header.Get("Link")
			for _, want := range []string{"page=1&page_size=2>; rel=\"first\"", "page=1&page_size=2>; rel=\"prev\"", "page=3&page_size=2>; rel=\"next\"",
				"page=" + strconv.Itoa(last) + "&page_size=2>; rel=\"last\""} {
				if !strings.Contains(link, want) {
					t.Errorf("%s: Link %s lacks %s", q, link, want)
				}
			}
		}
	})

	t.Run("case=HEAD gives the count alone", func(t *testing.T) {
		r := env.Do(t, "HEAD", "/api/users?customer_uuid="+f.appA+"&is_active=true", nil, "Authorization", testenv.Token(f.alice.Token))
		if r.Status != 200 || r.Header.Get("X-Result-Count") != "5" {
			t.Errorf("%d %s", r.Status, r.Header.Get("X-Result-Count"))
		}
	})

	t.Run("case=Basic credentials see the same", func(t *testing.T) {
		r := env.Do(t, "GET", "/api/users?page_size=100", nil, "Authorization", testenv.Basic(f.carol.Email, f.carol.Password))
		if r.Status != 200 || r.Header.Get("X-Result-Count") != "2" {
			t.Errorf("%d %s %s", r.Status, r.Header.Get("X-Result-Count"), r.Body)
		}
	})

	t.Run("case=an API key sees the same, its grants read with the key", func(t *testing.T) {
		key, _ := newKey(t, f.erin, "visible")["key"].(string)
		var r *testenv.Resp
		got := env.Requests.Measure(func() { r = env.Do(t, "GET", "/api/users?page_size=100", nil, keyAuth(key)...) })
		var page []map[string]any
		_ = json.Unmarshal(r.Body, &page)
		if r.Status != 200 || r.Header.Get("X-Result-Count") != "3" || len(page) != 3 {
			t.Fatalf("%d %s %s", r.Status, r.Header.Get("X-Result-Count"), r.Body)
		}
		if got.ByOp["Query"] != 2 || got.ByOp["GetItem"] != 0 {
			t.Errorf("%d requests %v", got.Requests, got.ByOp)
		}
		t.Logf("%d requests %v", got.Requests, got.ByOp)
	})

	t.Run("case=costs", func(t *testing.T) {
		for _, tc := range []struct {
			desc    string
			who     testenv.User
			query   string
			budget  int
			queries int
		}{
			// The authentication's read only, as before groups.
			{"a user never granted a role", f.plain, "", 1, 0},
			// Authentication with the grants, one Query of A (G is in it),
			// one BatchGetItem of the users, one of the page's permissions.
			{"a member of one application", f.alice, "", 4, 1},
			// Two scopes: two Queries.
			{"a member of two groups in two applications", f.erin, "o=-date_joined", 5, 2},
		} {
			t.Run("case="+tc.desc, func(t *testing.T) {
				var r *testenv.Resp
				got := env.Requests.Measure(func() { r = as(t, tc.who, "GET", "/api/users", nil) })
				if r.Status != 200 {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				if got.Requests > tc.budget || got.ByOp["Query"] != tc.queries || got.ByOp["GetItem"] != 0 {
					t.Fatalf("%d requests %v, budget %d with %d Query and no GetItem (the grants ride in the authentication's read)",
						got.Requests, got.ByOp, tc.budget, tc.queries)
				}
				t.Logf("%d requests %v, %.1f capacity units", got.Requests, got.ByOp, got.Capacity)
			})
		}
	})

	t.Run("case=an expired grant stops showing its scope's members at once", func(t *testing.T) {
		svc := env.API.Groups
		svc.Now = func() time.Time { return f.ginaExpires.Add(time.Second) }
		defer func() { svc.Now = time.Now }()
		want := append([]string{f.alice.UUID, f.bob.UUID, f.carol.UUID, f.erin.UUID}, f.ursula)
		if r, ids := visList(t, f.alice, "page_size=100"); !sameSet(ids, want) || r.Header.Get("X-Result-Count") != "5" {
			t.Errorf("alice after gina's expiry: %v", ids)
		}
		if r, ids := visList(t, f.gina, ""); !sameSet(ids, []string{f.gina.UUID}) || r.Header.Get("X-Result-Count") != "1" {
			t.Errorf("gina after her expiry: %v", ids)
		}
		if r, ids := visList(t, f.alice, "customer_uuid="+f.appA+"&is_active=true"); !sameSet(ids, want[:4]) || r.Header.Get("X-Result-Count") != "4" {
			t.Errorf("alice's filtered scope after gina's expiry: %v", ids)
		}
	})
}

// TestVisibleBound: past users.Service.VisibleLimit (LIST_SCAN_LIMIT/20, at
// least 100: 1,000 in the tests) users to read, the unfiltered list of a
// member and a scope filter with other filters answer 400 in the contract's
// envelope, naming what to add; the plain scope page still answers.
func TestVisibleBound(t *testing.T) {
	staff := env.NewStaff(t, "visbstaff", false)
	hank := quickUser(t, "vishank")
	app := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "Visible big"})
	grp := scopeID(t, staff, groups.KindGroup, map[string]any{"name": "Visible big group", "application": app})
	addUser(t, staff, groups.KindGroup, grp, hank, "member")
	limit := env.API.Users.VisibleLimit()
	bulkMembers(t, app, grp, limit) // with hank: one more than the bound
	for _, tc := range []struct {
		desc, query, field string
		who                testenv.User
	}{
		{"a member's unfiltered list", "", "customer_uuid", hank},
		{"a member's list with a filter", "is_active=true", "customer_uuid", hank},
		{"a scope filter with another filter", "project_uuid=" + grp + "&is_active=true", "is_active", staff},
		{"a scope filter with an ordering", "customer_uuid=" + app + "&is_active=true&o=-date_joined", "o", hank},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r, _ := visList(t, tc.who, tc.query)
			fields, _ := r.JSON()["fields"].(map[string]any)
			if r.Status != http.StatusBadRequest || r.JSON()["error"] != "bad_request" || fields[tc.field] == nil ||
				!strings.Contains(r.Str("error_description"), strconv.Itoa(limit)) {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	}
	t.Run("case=the plain scope page still answers", func(t *testing.T) {
		if r, _ := visList(t, hank, "project_uuid="+grp+"&page_size=5"); r.Status != 200 || r.Header.Get("X-Result-Count") != strconv.Itoa(limit+1) {
			t.Fatalf("%d %s", r.Status, r.Header.Get("X-Result-Count"))
		}
	})
}

// username is u's username, as staff read it.
func username(t *testing.T, u testenv.User) string {
	t.Helper()
	return usernamesOf(t, u.UUID)[0]
}

func usernamesOf(t *testing.T, ids ...string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		got, err := env.API.Users.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, url.QueryEscape(got.Username))
	}
	return out
}
