package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/testenv"
)

// listFixture is a set of users sharing an organization no other test uses,
// so that lists filtered by it are exact whatever else the table holds.
type listFixture struct {
	org                      string
	staff, support, plain    testenv.User
	alice, bob, carol, dave  listed
	unverifiedEmail, tagName string
}

type listed struct{ uuid, username, email string }

// adminCreate makes an active account through POST /api/users as staff.
func adminCreate(t *testing.T, staff testenv.User, body map[string]any) listed {
	t.Helper()
	r := env.Do(t, "POST", "/api/users", body, auth(staff)...)
	if r.Status != http.StatusCreated {
		t.Fatalf("admin create %v: %d %s", body["username"], r.Status, r.Body)
	}
	return listed{r.Str("uuid"), r.Str("username"), r.Str("email")}
}

func newListFixture(t *testing.T) *listFixture {
	t.Helper()
	tag := "l" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	f := &listFixture{org: "Org " + tag, tagName: tag}
	f.staff = env.NewStaff(t, "liststaff", false)
	f.support = env.NewStaff(t, "listsupport", true)
	f.plain = env.NewUser(t, "listplain")
	mk := func(name string, extra map[string]any) listed {
		body := map[string]any{"username": tag + "-" + name, "email": testenv.Email(tag + name), "organization": f.org}
		for k, v := range extra {
			body[k] = v
		}
		return adminCreate(t, f.staff, body)
	}
	f.alice = mk("alice", map[string]any{"first_name": "Alice", "last_name": "Zimmer", "job_title": "Engineer",
		"phone_number": "+372 5550 1234", "civil_number": "C-100", "native_name": "Алиса", "description": "Writes Go daily"})
	f.bob = mk("bob", map[string]any{"first_name": "bob", "last_name": "Young", "job_title": "Manager", "is_staff": true})
	f.carol = mk("carol", map[string]any{"first_name": "Carol", "last_name": "Xu", "is_support": true})
	f.dave = mk("dave", map[string]any{"first_name": "Dave", "last_name": "Adams", "is_active": false})
	// An unactivated sign-up is never listed.
	f.unverifiedEmail = testenv.Email(tag + "pending")
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": f.unverifiedEmail, "password": testenv.DefaultPassword,
		"username": tag + "-pending", "organization": f.org}); r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	return f
}

// list GETs /api/users?query as caller and decodes the array.
func list(t *testing.T, caller testenv.User, query string) (*testenv.Resp, []map[string]any) {
	t.Helper()
	r := env.Do(t, "GET", "/api/users/?"+query, nil, auth(caller)...)
	var out []map[string]any
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatalf("body is not an array: %s", r.Body)
		}
	}
	return r, out
}

func usernames(objs []map[string]any) []string {
	out := []string{}
	for _, o := range objs {
		s, _ := o["username"].(string)
		out = append(out, s)
	}
	return out
}

func resultCount(t *testing.T, r *testenv.Resp) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("X-Result-Count"))
	if err != nil {
		t.Fatalf("X-Result-Count %q", r.Header.Get("X-Result-Count"))
	}
	return n
}

func TestListFiltersAndOrdering(t *testing.T) {
	f := newListFixture(t)
	a, b, c, d := f.alice.username, f.bob.username, f.carol.username, f.dave.username
	org := "organization=" + url.QueryEscape(f.org)
	for _, tc := range []struct {
		desc, query string
		want        []string
	}{
		{"organization is exact, case-insensitively", "organization=" + url.QueryEscape(strings.ToUpper(f.org)), []string{a, b, c, d}},
		{"organization does not match a part", "organization=" + url.QueryEscape(f.tagName), []string{}},
		{"the default order is username and unactivated accounts are not listed", org, []string{a, b, c, d}},
		{"email matches the address case-insensitively", "email=" + url.QueryEscape(strings.ToUpper(f.alice.email)), []string{a}},
		{"email does not match part of an address", "email=" + url.QueryEscape(f.alice.email[1:]), []string{}},
		{"email of an unactivated account matches nobody", "email=" + url.QueryEscape(f.unverifiedEmail), []string{}},
		{"username matches exactly", "username=" + b, []string{b}},
		{"username with another filter that excludes it", "username=" + b + "&is_staff=false", []string{}},
		{"username_list matches any of its names", "username_list=" + d + "," + a + ",nobody-" + f.tagName, []string{a, d}},
		{"username_list with email narrows to both", "username_list=" + a + "," + b + "&email=" + url.QueryEscape(f.bob.email), []string{b}},
		{"first_name", org + "&first_name=ALI", []string{a}},
		{"last_name", org + "&last_name=YOU", []string{b}},
		{"last_name does not match inside a word", org + "&last_name=oun", []string{}},
		{"full_name spans both names", org + "&full_name=" + url.QueryEscape("carol x"), []string{c}},
		{"job_title is exact, case-insensitively", org + "&job_title=ENGINEER", []string{a}},
		{"job_title does not match a part", org + "&job_title=engin", []string{}},
		{"phone_number", org + "&phone_number=" + url.QueryEscape("+372 5550 1234"), []string{a}},
		{"civil_number is exact", org + "&civil_number=C-100", []string{a}},
		{"civil_number ignores case", "civil_number=c-100&organization=" + url.QueryEscape(f.org), []string{a}},
		{"civil_number does not match a part", org + "&civil_number=C-10", []string{}},
		{"native_name, case-insensitively", org + "&native_name=" + url.QueryEscape("АЛИСА"), []string{a}},
		{"description", org + "&description=go", []string{a}},
		{"registration_method", org + "&registration_method=admin", []string{a, b, c, d}},
		{"registration_method of another kind", org + "&registration_method=default", []string{}},
		{"is_active=false lists the deactivated", org + "&is_active=false", []string{d}},
		{"is_active=true", org + "&is_active=true", []string{a, b, c}},
		{"is_staff=true", org + "&is_staff=true", []string{b}},
		{"is_staff=0", org + "&is_staff=0", []string{a, c, d}},
		{"is_support=true", org + "&is_support=true", []string{c}},
		{"two boolean filters", org + "&is_support=false&is_active=true", []string{a, b}},
		{"date_joined on or after", org + "&date_joined=2000-01-01", []string{a, b, c, d}},
		{"date_joined in the future", org + "&date_joined=2999-01-01T00:00:00Z", []string{}},
		{"modified on or after", org + "&modified=2000-01-01T00:00:00%2B02:00", []string{a, b, c, d}},
		{"query matches first name", org + "&query=CAR", []string{c}},
		{"query matches last name", org + "&query=adams", []string{d}},
		{"query matches username", org + "&query=" + f.tagName + "-bo", []string{b}},
		{"query matches email", "query=" + url.QueryEscape(f.alice.email), []string{a}},
		{"query matches a word start inside the username", org + "&query=bo", []string{b}},
		{"query matches without accents", org + "&query=" + url.QueryEscape("ÇÀRÔL"), []string{c}},
		{"query words all match", org + "&query=" + url.QueryEscape("dave ad"), []string{d}},
		{"query does not match inside a word", org + "&query=lice", []string{}},
		{"query with a flag", org + "&query=" + f.tagName + "&is_active=false", []string{d}},
		{"user_keyword matches the full name's words", org + "&user_keyword=zim", []string{a}},
		{"o=-username", org + "&o=-username", []string{d, c, b, a}},
		{"o=first_name is case-insensitive", org + "&o=first_name", []string{a, b, c, d}},
		{"o=-first_name", org + "&o=-first_name", []string{d, c, b, a}},
		{"o=last_name", org + "&o=last_name", []string{d, c, b, a}},
		{"o=full_name", org + "&o=full_name", []string{a, b, c, d}},
		{"o=is_staff then username", org + "&o=-is_staff", []string{b, a, c, d}},
		{"o=is_active,-username", org + "&o=is_active,-username", []string{d, c, b, a}},
		{"o repeated", org + "&o=is_support&o=-last_name", []string{a, b, d, c}},
		{"o=-date_joined puts the newest first", org + "&o=-date_joined,username", nil},
		{"o=email", org + "&o=email", nil},
		{"o=modified", org + "&o=modified", nil},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r, objs := list(t, f.staff, tc.query)
			if r.Status != http.StatusOK {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			got := usernames(objs)
			if tc.want == nil { // only checks it answers every user
				if len(got) != 4 {
					t.Fatalf("got %v", got)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if n := resultCount(t, r); n != len(tc.want) {
				t.Fatalf("X-Result-Count %d, want %d", n, len(tc.want))
			}
		})
	}
}

func TestListPaginationAndFields(t *testing.T) {
	f := newListFixture(t)
	org := "organization=" + url.QueryEscape(f.org)
	t.Run("case=a middle page links to first, prev, next and last", func(t *testing.T) {
		r, objs := list(t, f.staff, org+"&page_size=1&page=2&field=username")
		if r.Status != 200 || !slices.Equal(usernames(objs), []string{f.bob.username}) || resultCount(t, r) != 4 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		link := r.Header.Get("Link")
		base := env.URL + "/api/users/?field=username&organization=" + url.QueryEscape(f.org) + "&page="
		want := fmt.Sprintf(`<%s1&page_size=1>; rel="first", <%s1&page_size=1>; rel="prev", <%s3&page_size=1>; rel="next", <%s4&page_size=1>; rel="last"`, base, base, base, base)
		if link != want {
			t.Fatalf("Link\n%s\nwant\n%s", link, want)
		}
	})
	t.Run("case=the first page has no prev, the last no next", func(t *testing.T) {
		r, _ := list(t, f.staff, org+"&page_size=3")
		if l := r.Header.Get("Link"); strings.Contains(l, `rel="prev"`) || !strings.Contains(l, `page=2&page_size=3>; rel="next"`) {
			t.Fatalf("Link %s", l)
		}
		r, objs := list(t, f.staff, org+"&page_size=3&page=2")
		if l := r.Header.Get("Link"); strings.Contains(l, `rel="next"`) || !strings.Contains(l, `rel="prev"`) || len(objs) != 1 {
			t.Fatalf("Link %s, %d users", l, len(objs))
		}
	})
	t.Run("case=a page past the end is empty with the true count", func(t *testing.T) {
		r, objs := list(t, f.staff, org+"&page=9")
		if r.Status != 200 || len(objs) != 0 || resultCount(t, r) != 4 || string(r.Body) != "[]" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=an empty list has one page", func(t *testing.T) {
		r, _ := list(t, f.staff, "username=nobody-"+f.tagName)
		if resultCount(t, r) != 0 || strings.Count(r.Header.Get("Link"), "page=1") != 2 {
			t.Fatalf("Link %s", r.Header.Get("Link"))
		}
	})
	t.Run("case=field selection keeps only the named fields", func(t *testing.T) {
		r, objs := list(t, f.staff, org+"&field=username&field=email,is_staff")
		if r.Status != 200 || len(objs) != 4 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		for _, o := range objs {
			if len(o) != 3 || o["username"] == nil || o["email"] == nil || o["is_staff"] == nil {
				t.Fatalf("object %v", o)
			}
		}
	})
	t.Run("case=users are whole user objects without secrets", func(t *testing.T) {
		r, objs := list(t, f.staff, "username="+f.alice.username)
		if len(objs) != 1 {
			t.Fatalf("got %s", r.Body)
		}
		o := objs[0]
		if o["uuid"] != f.alice.uuid || o["url"] != env.URL+"/api/users/"+f.alice.uuid+"/" || o["full_name"] != "Alice Zimmer" ||
			o["status"] != "ENABLED" || o["permissions"] == nil || o["token"] != nil {
			t.Fatalf("object %v", o)
		}
		for _, secret := range []string{"password", "hash", "token_hash", "token_sealed", "code_"} {
			if strings.Contains(string(r.Body), secret) {
				t.Fatalf("body holds %q: %s", secret, r.Body)
			}
		}
	})
}

func TestListVisibility(t *testing.T) {
	f := newListFixture(t)
	org := "organization=" + url.QueryEscape(f.org)
	for _, tc := range []struct {
		desc   string
		caller testenv.User
		query  string
		want   []string
	}{
		{"staff see everyone", f.staff, org, []string{f.alice.username, f.bob.username, f.carol.username, f.dave.username}},
		{"support see everyone", f.support, org, []string{f.alice.username, f.bob.username, f.carol.username, f.dave.username}},
		{"a user sees only themselves", f.plain, "", nil},
		{"a user's filters apply to themselves", f.plain, "is_staff=true", []string{}},
		{"a user cannot find others by username", f.plain, "username=" + f.alice.username, []string{}},
		{"a user's second page is empty", f.plain, "page=2", []string{}}, // X-Result-Count stays 1
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			var r *testenv.Resp
			var objs []map[string]any
			cost := env.Requests.Measure(func() { r, objs = list(t, tc.caller, tc.query) })
			if r.Status != 200 {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			got := usernames(objs)
			if tc.want == nil {
				if len(objs) != 1 || objs[0]["uuid"] != tc.caller.UUID || resultCount(t, r) != 1 {
					t.Fatalf("got %s", r.Body)
				}
			} else if wantCount := len(tc.want) + strings.Count(tc.query, "page=2"); !slices.Equal(got, tc.want) || resultCount(t, r) != wantCount {
				t.Fatalf("got %v (count %s), want %v", got, r.Header.Get("X-Result-Count"), tc.want)
			}
			if tc.caller == f.plain && (cost.Requests != 1 || cost.ByOp["Query"] != 0) {
				t.Fatalf("a plain user's list cost %d requests %v, want only the authentication's", cost.Requests, cost.ByOp)
			}
		})
	}
	if r := env.Do(t, "GET", "/api/users", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d %s", r.Status, r.Body)
	}
}

func TestListBadParameters(t *testing.T) {
	staff := env.NewStaff(t, "liststaff", false)
	for _, tc := range []struct {
		desc, query, field string
	}{
		{"an unknown parameter is named", "colour=blue&page=1&search=x", "colour"},
		{"page 0", "page=0", "page"},
		{"page not a number", "page=two", "page"},
		{"page_size over 300", "page_size=301", "page_size"},
		{"page_size 0", "page_size=0", "page_size"},
		{"a boolean that is not one", "is_staff=maybe", "is_staff"},
		{"a date that is not one", "date_joined=yesterday", "date_joined"},
		{"an ordering by an unknown field", "o=password_hash", "o"},
		{"an unknown field to select", "field=password", "field"},
	} {
		t.Run("case="+tc.desc+" is refused", func(t *testing.T) {
			r, _ := list(t, staff, tc.query)
			body := r.JSON()
			fields, _ := body["fields"].(map[string]any)
			if r.Status != 400 || body["error"] != "bad_request" || fields[tc.field] == nil {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if tc.field == "colour" && (fields["search"] == nil || !strings.Contains(body["error_description"].(string), "colour, search")) {
				t.Fatalf("got %s", r.Body)
			}
		})
	}
	t.Run("case=page_size 300 is allowed", func(t *testing.T) {
		if r, _ := list(t, staff, "page_size=300"); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

// allCount is the number of listed users as the whole-partition read
// counts them (a date filter forces it), to check the count items against.
func allCount(t *testing.T, staff testenv.User, filter string) int {
	t.Helper()
	r, _ := list(t, staff, filter+"&date_joined=1970-01-01&page_size=1")
	if r.Status != 200 {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	return resultCount(t, r)
}

// TestListCountsFollowChanges checks the kept counts (X-Result-Count of an
// indexed page) against the users the index really holds, after every kind
// of change that moves a user in the lists.
func TestListCountsFollowChanges(t *testing.T) {
	f := newListFixture(t)
	check := func(t *testing.T) {
		t.Helper()
		org := "organization=" + url.QueryEscape(f.org)
		for _, filter := range []string{"", "is_active=true", "is_active=false", "is_staff=true", "is_staff=false", "is_support=true", "is_support=false",
			// two and three flags, and an exact value by them: counted by flag
			// combination in one count list (xc:*, xc:organization=…)
			"is_active=true&is_staff=false", "is_staff=true&is_support=true", "is_active=false&is_support=false",
			"is_active=true&is_staff=false&is_support=false", org, org + "&is_active=true", org + "&is_staff=true&is_support=true",
			org + "&is_active=true&is_staff=false&is_support=false", org + "&is_active=false&is_support=false"} {
			r, objs := list(t, f.staff, filter+"&page_size=300")
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", filter, r.Status, r.Body)
			}
			want := allCount(t, f.staff, filter)
			if got := resultCount(t, r); got != want {
				t.Fatalf("%s: kept count %d, index holds %d", filter, got, want)
			}
			if want <= 300 && len(objs) != want {
				t.Fatalf("%s: page has %d users, count %d", filter, len(objs), want)
			}
			if !slices.IsSorted(usernames(objs)) {
				t.Fatalf("%s: not in username order", filter)
			}
		}
	}
	check(t)
	patch := func(id string, body map[string]any) {
		t.Helper()
		if r := env.Do(t, "PATCH", "/api/users/"+id, body, auth(f.staff)...); r.Status != 200 {
			t.Fatalf("patch: %d %s", r.Status, r.Body)
		}
	}
	t.Run("case=staff change flags", func(t *testing.T) {
		before := allCount(t, f.staff, "is_staff=true")
		patch(f.alice.uuid, map[string]any{"is_staff": true, "is_support": true})
		patch(f.bob.uuid, map[string]any{"is_active": false})
		patch(f.dave.uuid, map[string]any{"is_active": true})
		check(t)
		if allCount(t, f.staff, "is_staff=true") != before+1 {
			t.Fatal("is_staff=true did not grow by one")
		}
	})
	t.Run("case=a username changes", func(t *testing.T) {
		patch(f.carol.uuid, map[string]any{"username": "zz" + f.tagName + "-carol"})
		check(t)
		if r, objs := list(t, f.staff, "username=zz"+f.tagName+"-carol"); len(objs) != 1 {
			t.Fatalf("renamed user not found: %s", r.Body)
		}
	})
	t.Run("case=a sign-up is listed once activated", func(t *testing.T) {
		before := allCount(t, f.staff, "")
		u := env.NewUser(t, "listed")
		if allCount(t, f.staff, "") != before+1 {
			t.Fatal("activation did not list the user")
		}
		check(t)
		if r := env.Do(t, "DELETE", "/api/users/"+u.UUID, nil, auth(u)...); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if allCount(t, f.staff, "") != before {
			t.Fatal("deletion did not unlist the user")
		}
	})
	t.Run("case=a username that follows a confirmed email change moves", func(t *testing.T) {
		u := env.NewUser(t, "aaa-follow") // the username is the email, so it follows it
		newEmail := testenv.Email("zzz-followed")
		if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...); r.Status != 200 {
			t.Fatalf("change_email: %d %s", r.Status, r.Body)
		}
		code := env.CodeFromMail(t, newEmail, "Confirm your new email")
		r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...)
		if r.Status != 200 || r.Str("username") != newEmail {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
		check(t)
		if _, objs := list(t, f.staff, "username="+url.QueryEscape(newEmail)); len(objs) != 1 {
			t.Fatal("the new username is not listed")
		}
	})
	t.Run("case=a user promoted to support by the bootstrap moves", func(t *testing.T) {
		u := env.NewUser(t, "promoted")
		if _, err := env.API.Users.EnsureStaff(context.Background(), u.Email, testenv.DefaultPassword, false, true); err != nil {
			t.Fatal(err)
		}
		check(t)
		if _, objs := list(t, f.staff, "is_support=true&username="+url.QueryEscape(strings.ToLower(u.Email))); len(objs) != 1 {
			t.Fatal("the promoted user is not listed as support")
		}
	})
	t.Run("case=staff delete a user", func(t *testing.T) {
		if r := env.Do(t, "DELETE", "/api/users/"+f.dave.uuid, nil, auth(f.staff)...); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		check(t)
	})
}

// TestListBudget holds list pages to the contract's budget of two DynamoDB
// requests (authentication included) for the indexed cases.
func TestListBudget(t *testing.T) {
	f := newListFixture(t)
	for _, q := range []string{
		"", "page=2&page_size=2", "o=-username&page=2&page_size=2", "o=username",
		"is_active=true", "is_active=false", "is_staff=true", "is_staff=false&page=2", "is_support=true", "is_support=false",
		"email=" + url.QueryEscape(f.bob.email), "username=" + f.carol.username, "username=" + f.carol.username + "&is_support=true",
		"username_list=" + f.alice.username + "," + f.dave.username,
		"email=" + url.QueryEscape(f.bob.email) + "&username=" + f.bob.username,
		"o=-date_joined", "o=date_joined&page=2&page_size=2",
	} {
		t.Run("case="+q+" costs at most 2 requests", func(t *testing.T) {
			var r *testenv.Resp
			cost := env.Requests.Measure(func() { r, _ = list(t, f.staff, q) })
			if r.Status != 200 {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if cost.Requests > 2+grantsRead(t, r) {
				t.Fatalf("%d requests %v", cost.Requests, cost.ByOp)
			}
			t.Logf("%d requests %v, %.1f capacity units", cost.Requests, cost.ByOp, cost.Capacity)
		})
	}
}

// TestListIndexedFilterBudget holds the exact filters (alone, with a flag,
// with two), the word searches (by one or two letters, by longer words,
// with flags and exact filters) to three DynamoDB requests a page: the
// authentication with the counts, one Query of the index entries, one
// BatchGetItem of the page's users. The answers are checked against the
// fixture.
func TestListIndexedFilterBudget(t *testing.T) {
	f := newListFixture(t)
	a, b, c, d := f.alice.username, f.bob.username, f.carol.username, f.dave.username
	org := "organization=" + url.QueryEscape(f.org)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{org, []string{a, b, c, d}},
		{org + "&page=2&page_size=3", []string{d}},
		{org + "&o=-username&page=2&page_size=3", []string{a}},
		{org + "&is_active=false", []string{d}},
		{org + "&is_staff=true", []string{b}},
		{org + "&is_support=false", []string{a, b, d}},
		{org + "&is_active=true&is_staff=false", []string{a, c}},
		{org + "&is_active=true&is_staff=false&is_support=false", []string{a}},
		{"job_title=Engineer&" + org, []string{a}},
		{"civil_number=C-100&" + org, []string{a}},
		{"native_name=" + url.QueryEscape("алиса") + "&is_active=true&" + org, []string{a}},
		{"phone_number=" + url.QueryEscape("+372 5550 1234") + "&" + org, []string{a}},
		{"registration_method=admin&" + org + "&is_staff=false", []string{a, c, d}},
		{"query=" + f.tagName, []string{a, b, c, d}},
		{"query=" + f.tagName + "&is_active=true&is_support=false", []string{a, b}},
		{"user_keyword=" + f.tagName + "-c", []string{c}},
		{"full_name=" + url.QueryEscape("Carol X") + "&" + org, []string{c}},
		{"first_name=ALI&" + org, []string{a}},
		{"last_name=adams&" + org, []string{d}},
		{"query=z&" + org, []string{a}},
		{"query=yo&" + org, []string{b}},
	} {
		t.Run("case="+tc.query+" costs at most 3 requests", func(t *testing.T) {
			var r *testenv.Resp
			var objs []map[string]any
			cost := env.Requests.Measure(func() { r, objs = list(t, f.staff, tc.query) })
			if r.Status != 200 {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if got := usernames(objs); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if cost.Requests > 3+grantsRead(t, r) {
				t.Errorf("%d requests %v", cost.Requests, cost.ByOp)
			}
			t.Logf("%d requests %v, %.1f capacity units", cost.Requests, cost.ByOp, cost.Capacity)
		})
	}
}
