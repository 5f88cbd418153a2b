package api_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/ddbtest"
	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// Membership under concurrency (issue 10): the cascade against add_user,
// the last owner, and the grant limit with expired grants. The cascade
// runs here from its own groups.Service over a wrapped client (the
// stream's, with a fault injected), on the suite's DynamoDB Local.

// afterScopeRead runs then once, right after the n-th Query of scope's
// partition has returned (the cascade's reads: 1 its decision, 2 the read
// under its mark, 3 for an application with groups the read after the
// groups' marks).
type afterScopeRead struct {
	table.DB
	scope string
	n     int
	then  func()
	// fail, when set, is the n-th read's error instead (a cascade that
	// dies there).
	fail error

	mu    sync.Mutex
	reads int
}

func (w *afterScopeRead) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := w.DB.Query(ctx, in, opts...)
	if pk, _ := in.ExpressionAttributeValues[":pk"].(*types.AttributeValueMemberS); pk != nil && pk.Value == "SCOPE#"+w.scope {
		w.mu.Lock()
		w.reads++
		fire := w.reads == w.n
		w.mu.Unlock()
		if fire && w.fail != nil {
			return nil, w.fail
		}
		if fire {
			w.then()
		}
	}
	return out, err
}

// quiet is the log of the services the tests build.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// scopeGone reports whether nothing in the table names id any more.
func scopeGone(t *testing.T, id string) bool {
	t.Helper()
	return len(scanFor(t, id)) == 0
}

// holds reports whether user holds a grant on scope, both sides.
func holds(t *testing.T, user, scope string) (scopeSide, userSide bool) {
	t.Helper()
	return getItem(t, "SCOPE#"+scope, "M#"+user) != nil, getItem(t, "GRANTS#"+user, "GRANTS")["g_"+scope] != nil
}

// TestCascadeRaceAddUser: an add_user committing while the cascade closes
// a scope its last member left, at each of the cascade's reads. Before
// the mark (read 1) the newcomer is in and the scope stays with them;
// after it the add_user is a 404 and the scope goes whole. Never a
// newcomer's grant deleted with a scope they never left.
func TestCascadeRaceAddUser(t *testing.T) {
	staff := env.NewStaff(t, "racestaff", false)
	for _, tc := range []struct {
		desc string
		// into: the scope the newcomer is added to; watched: the scope
		// whose reads are counted; n: after which read.
		kind  string
		group bool // the newcomer joins a group of the closing application
		n     int
		stays bool
	}{
		{"case=application, add_user after the decision's read: it stays", groups.KindApplication, false, 1, true},
		{"case=application, add_user after the mark: refused, it goes", groups.KindApplication, false, 2, false},
		{"case=group, add_user after the decision's read: it stays", groups.KindGroup, false, 1, true},
		{"case=group, add_user after the mark: refused, it goes", groups.KindGroup, false, 2, false},
		{"case=application, its group's add_user after the decision's read: it stays", groups.KindApplication, true, 1, true},
		{"case=application, its group's add_user after the application's mark: it stays", groups.KindApplication, true, 2, true},
		{"case=application, its group's add_user after the groups' marks: refused, both go", groups.KindApplication, true, 3, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			alone, newcomer, other := env.NewUser(t, "racealone"), env.NewUser(t, "racenew"), env.NewUser(t, "raceother")
			app := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "race app"})
			closing, into := app, app
			switch {
			case tc.kind == groups.KindGroup:
				// The application stays (other is in it); the group closes.
				addUser(t, staff, groups.KindApplication, app, other, "member")
				closing = scopeID(t, staff, groups.KindGroup, map[string]any{"name": "race group", "application": app})
				into = closing
				addUser(t, staff, groups.KindGroup, closing, alone, "owner")
			case tc.group:
				addUser(t, staff, groups.KindApplication, app, alone, "owner")
				into = scopeID(t, staff, groups.KindGroup, map[string]any{"name": "empty group", "application": app})
			default:
				addUser(t, staff, groups.KindApplication, app, alone, "owner")
			}
			intoKind := tc.kind
			if tc.group {
				intoKind = groups.KindGroup
			}
			var added *testenv.Resp
			db := &afterScopeRead{DB: env.DB, scope: closing, n: tc.n, then: func() {
				added = as(t, staff, "POST", scopePath(intoKind, into)+"/add_user", map[string]any{"user": newcomer.UUID, "role": "member"})
			}}
			cascade := groups.New(db, env.Config.TableName, nil, quiet)
			if err := cascade.RemoveUser(context.Background(), alone.UUID); err != nil {
				t.Fatal(err)
			}
			env.Drain(t)
			if added == nil {
				t.Fatalf("the add_user was never injected (%d reads of the scope)", db.reads)
			}
			scopeSide, userSide := holds(t, newcomer.UUID, into)
			if tc.stays {
				if added.Status != http.StatusCreated {
					t.Fatalf("add_user: %d %s", added.Status, added.Body)
				}
				if r := as(t, newcomer, "GET", scopePath(tc.kind, closing), nil); r.Status != 200 {
					t.Errorf("the scope the newcomer joined is gone: %d %s", r.Status, r.Body)
				}
				if !scopeSide || !userSide {
					t.Errorf("the newcomer's grant was purged (scope side %v, user side %v)", scopeSide, userSide)
				}
				if r := as(t, newcomer, "GET", scopePath(intoKind, into)+"/list_users", nil); r.Header.Get("X-Result-Count") != "1" {
					t.Errorf("the scope's members: %s %s", r.Header.Get("X-Result-Count"), r.Body)
				}
				if held := getItem(t, "SCOPE#"+closing, "#SCOPE"); held["closing"] != nil {
					t.Errorf("the scope is left marked: %v", flatten(held))
				}
			} else {
				if added.Status != http.StatusNotFound {
					t.Fatalf("add_user to a scope being closed: %d %s", added.Status, added.Body)
				}
				for _, id := range []string{closing, into} {
					if !scopeGone(t, id) {
						t.Errorf("%s is still named: %v", id, scanFor(t, id))
					}
				}
				if scopeSide || userSide {
					t.Errorf("a refused add_user left a grant (scope side %v, user side %v)", scopeSide, userSide)
				}
			}
			if s, u := holds(t, alone.UUID, closing); s || u {
				t.Errorf("the deleted user's grant stays (scope side %v, user side %v)", s, u)
			}
		})
	}
}

// TestCascadeRedelivered: a cascade that dies under its mark leaves the
// scope refusing new members; the record's redelivery resumes its own
// mark and deletes the scope. A mark nobody resumes ends by itself
// (closing_until): add_user works again after it.
func TestCascadeRedelivered(t *testing.T) {
	staff := env.NewStaff(t, "redelstaff", false)
	for _, resumed := range []bool{true, false} {
		alone, newcomer := env.NewUser(t, "redelalone"), env.NewUser(t, "redelnew")
		app := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "dies under its mark"})
		addUser(t, staff, groups.KindApplication, app, alone, "owner")
		dies := &afterScopeRead{DB: env.DB, scope: app, n: 2, fail: errors.New("the cascade's function timed out")}
		if err := groups.New(dies, env.Config.TableName, nil, quiet).RemoveUser(context.Background(), alone.UUID); err == nil {
			t.Fatal("the injected failure did not fail the cascade")
		}
		if held := getItem(t, "SCOPE#"+app, "#SCOPE"); held == nil || held["closing"] == nil {
			t.Fatalf("the scope is not marked: %v", held)
		}
		add := func() *testenv.Resp {
			return as(t, staff, "POST", scopePath(groups.KindApplication, app)+"/add_user", map[string]any{"user": newcomer.UUID, "role": "member"})
		}
		if r := add(); r.Status != http.StatusNotFound {
			t.Errorf("add_user to a marked scope: %d %s", r.Status, r.Body)
		}
		if resumed {
			if err := groups.New(env.DB, env.Config.TableName, nil, quiet).RemoveUser(context.Background(), alone.UUID); err != nil {
				t.Fatal(err)
			}
			env.Drain(t)
			if !scopeGone(t, app) {
				t.Errorf("the redelivered cascade left %v", scanFor(t, app))
			}
			continue
		}
		svc := env.API.Groups
		svc.Now = func() time.Time { return time.Now().Add(3 * time.Minute) }
		r := add()
		svc.Now = time.Now
		if r.Status != http.StatusCreated {
			t.Errorf("add_user once the mark has ended: %d %s", r.Status, r.Body)
		}
	}
}

// TestCascadeRaceConcurrent: the cascade and an add_user to the closing
// scope (or to a group of the closing application) at once, many times,
// on DynamoDB's conflict rule (the ddbtest double in front of DynamoDB
// Local, both services behind it). Whatever the order: either the
// add_user succeeded and the newcomer is in a scope that stays, or it was
// a 404 and nothing of the scope remains.
func TestCascadeRaceConcurrent(t *testing.T) {
	staff := env.NewStaff(t, "racecstaff", false)
	caller := &users.User{UUID: staff.UUID, IsStaff: true, Username: "racecstaff"}
	dbl := ddbtest.New(env.DB, 5*time.Millisecond)
	cascade := groups.New(dbl, env.Config.TableName, nil, quiet)
	adder := groups.New(dbl, env.Config.TableName, env.API.Users, quiet)
	outcomes := map[string]int{}
	for round := range 16 {
		alone, newcomer := env.NewUser(t, "racecalone"), env.NewUser(t, "racecnew")
		app := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "race app"})
		addUser(t, staff, groups.KindApplication, app, alone, "owner")
		into, kind := app, groups.KindApplication
		if round%2 == 1 {
			into, kind = scopeID(t, staff, groups.KindGroup, map[string]any{"name": "race group", "application": app}), groups.KindGroup
		}
		var (
			wg          sync.WaitGroup
			cascadeErr  error
			addErr      error
			delay       = time.Duration(rand.IntN(80)) * time.Millisecond
			cascadeWait = time.Duration(rand.IntN(25)) * time.Millisecond
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(cascadeWait)
			cascadeErr = cascade.RemoveUser(context.Background(), alone.UUID)
		}()
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			_, addErr = adder.AddUser(context.Background(), caller, kind, into, groups.MemberInput{User: newcomer.UUID, Role: "member"})
		}()
		wg.Wait()
		if cascadeErr != nil {
			t.Fatalf("round %d: the cascade: %v", round, cascadeErr)
		}
		env.Drain(t)
		scopeSide, userSide := holds(t, newcomer.UUID, into)
		var he *httpapi.Error
		switch {
		case addErr == nil:
			outcomes["joined"]++
			if getItem(t, "SCOPE#"+app, "#SCOPE") == nil || getItem(t, "SCOPE#"+into, "#SCOPE") == nil || !scopeSide || !userSide {
				t.Errorf("round %d: the newcomer joined, yet the scope or their grant is gone (grant: scope side %v, user side %v)", round, scopeSide, userSide)
			}
		case errors.As(addErr, &he) && he.Status == http.StatusNotFound:
			outcomes["refused"]++
			if !scopeGone(t, app) || !scopeGone(t, into) || scopeSide || userSide {
				t.Errorf("round %d: add_user refused, yet something stays: %v %v", round, scanFor(t, app), scanFor(t, into))
			}
		default:
			t.Fatalf("round %d: add_user: %v", round, addErr)
		}
	}
	t.Logf("outcomes %v; double: %+v", outcomes, dbl.Stats())
}

// TestLastOwner: the last owner of a scope others are in cannot leave or
// be demoted or removed (409 naming what to do), except by staff; with
// another owner, or alone in it, they can.
func TestLastOwner(t *testing.T) {
	f := newGroupFixture(t) // f.owner is the application's only owner; admin and member are in it
	app := scopePath(groups.KindApplication, f.app)
	refused := func(t *testing.T, r *testenv.Resp, what string) {
		t.Helper()
		if r.Status != http.StatusConflict || r.Str("error") != "conflict" || !strings.Contains(r.Str("error_description"), "make another member an owner first") {
			t.Errorf("%s: %d %s", what, r.Status, r.Body)
		}
	}
	refused(t, as(t, f.owner, "POST", app+"/delete_user", map[string]any{"user": f.owner.UUID}), "the last owner leaves")
	refused(t, as(t, f.owner, "POST", app+"/update_user", map[string]any{"user": f.owner.UUID, "role": "admin"}), "the last owner demotes themselves")
	if s, u := holds(t, f.owner.UUID, f.app); !s || !u {
		t.Fatalf("a refused change ended the grant (scope side %v, user side %v)", s, u)
	}
	if r := as(t, f.owner, "GET", app+"/list_users?role=owner", nil); r.Header.Get("X-Result-Count") != "1" {
		t.Errorf("owners after the refusals: %s %s", r.Header.Get("X-Result-Count"), r.Body)
	}
	// An expired owner grant is no other owner.
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if r := as(t, f.owner, "POST", app+"/update_user", map[string]any{"user": f.admin.UUID, "role": "owner", "expiration_time": exp.Format(time.RFC3339)}); r.Status != 200 {
		t.Fatalf("make the admin an owner for an hour: %d %s", r.Status, r.Body)
	}
	svc := env.API.Groups
	svc.Now = func() time.Time { return exp.Add(time.Second) }
	refused(t, as(t, f.owner, "POST", app+"/delete_user", map[string]any{"user": f.owner.UUID}), "the last active owner leaves")
	svc.Now = time.Now
	// With another owner, the first may go.
	if r := as(t, f.owner, "POST", app+"/update_user", map[string]any{"user": f.admin.UUID, "role": "owner"}); r.Status != 200 {
		t.Fatalf("a second owner: %d %s", r.Status, r.Body)
	}
	if r := as(t, f.owner, "POST", app+"/update_user", map[string]any{"user": f.owner.UUID, "role": "member"}); r.Status != 200 || r.Str("role_name") != "member" {
		t.Errorf("an owner demotes themselves beside another: %d %s", r.Status, r.Body)
	}
	refused(t, as(t, f.admin, "POST", app+"/delete_user", map[string]any{"user": f.admin.UUID}), "the new last owner leaves")
	// Staff still do anything: remove the last owner.
	if r := as(t, f.staff, "POST", app+"/delete_user", map[string]any{"user": f.admin.UUID}); r.Status != 204 {
		t.Errorf("staff remove the last owner: %d %s", r.Status, r.Body)
	}
	// Alone in a scope, its owner may leave.
	solo := scopeID(t, f.staff, groups.KindGroup, map[string]any{"name": "solo", "application": f.app})
	addUser(t, f.staff, groups.KindGroup, solo, f.plain, "owner")
	if r := as(t, f.plain, "POST", scopePath(groups.KindGroup, solo)+"/delete_user", map[string]any{"user": f.plain.UUID}); r.Status != 204 {
		t.Errorf("the only member (an owner) leaves: %d %s", r.Status, r.Body)
	}
	// A group's last owner, removed by an owner of its application (not
	// staff): refused too, the group keeps an owner of its own.
	grp := scopeID(t, f.staff, groups.KindGroup, map[string]any{"name": "owned", "application": f.app})
	addUser(t, f.staff, groups.KindGroup, grp, f.plain, "owner")
	addUser(t, f.staff, groups.KindGroup, grp, f.member, "member")
	addUser(t, f.staff, groups.KindApplication, f.app, f.plain, "owner")
	refused(t, as(t, f.plain, "POST", scopePath(groups.KindGroup, grp)+"/delete_user", map[string]any{"user": f.plain.UUID}), "a group's last owner leaves")
}

// TestLastOwnerConcurrent: the two owners of a scope with a member leave,
// or one leaves while the other demotes themselves, at once: exactly one
// succeeds, and an owner remains.
func TestLastOwnerConcurrent(t *testing.T) {
	staff := env.NewStaff(t, "ownstaff", false)
	for _, how := range []string{"both leave", "one leaves, one demotes"} {
		t.Run("case="+how, func(t *testing.T) {
			for round := range 6 {
				a, b, m := env.NewUser(t, "owna"), env.NewUser(t, "ownb"), env.NewUser(t, "ownm")
				app := scopeID(t, staff, groups.KindApplication, map[string]any{"name": "two owners"})
				addUser(t, staff, groups.KindApplication, app, a, "owner")
				addUser(t, staff, groups.KindApplication, app, b, "owner")
				addUser(t, staff, groups.KindApplication, app, m, "member")
				path := scopePath(groups.KindApplication, app)
				statuses := testenv.AtOnce(2, func(i int) int {
					u := []testenv.User{a, b}[i]
					if i == 1 && how != "both leave" {
						return env.Do(t, "POST", path+"/update_user", map[string]any{"user": u.UUID, "role": "member"}, "Authorization", testenv.Token(u.Token)).Status
					}
					return env.Do(t, "POST", path+"/delete_user", map[string]any{"user": u.UUID}, "Authorization", testenv.Token(u.Token)).Status
				})
				if statuses[http.StatusConflict] != 1 || statuses[http.StatusNoContent]+statuses[http.StatusOK] != 1 {
					t.Errorf("round %d: statuses %v", round, statuses)
				}
				if r := as(t, m, "GET", path+"/list_users?role=owner", nil); r.Header.Get("X-Result-Count") != "1" {
					t.Errorf("round %d: owners left: %s %s", round, r.Header.Get("X-Result-Count"), r.Body)
				}
			}
		})
	}
}

// TestGrantLimitExpired: a user at the 500-grant limit some of whose
// grants are expired gets the new one (the expired ones are dropped in
// the same transaction, both sides); with none expired it is still a
// 400; two adds at once with room for one after the drop: exactly one.
func TestGrantLimitExpired(t *testing.T) {
	f := newGroupFixture(t)
	svc := env.API.Groups
	defer func() { svc.Now = time.Now }()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	// plain holds two grants expiring in an hour (the application and its
	// group) and, by the count, 498 more.
	for _, sc := range [][2]string{{groups.KindApplication, f.app}, {groups.KindGroup, f.group}} {
		if r := as(t, f.owner, "POST", scopePath(sc[0], sc[1])+"/add_user", map[string]any{"user": f.plain.UUID, "role": "member", "expiration_time": exp.Format(time.RFC3339)}); r.Status != 201 {
			t.Fatalf("add_user: %d %s", r.Status, r.Body)
		}
	}
	setN(t, "GRANTS#"+f.plain.UUID, "GRANTS", "n", groups.MaxGrantsPerUser)
	other := scopeID(t, f.owner, groups.KindGroup, map[string]any{"name": "another", "application": f.app})
	third := scopeID(t, f.owner, groups.KindGroup, map[string]any{"name": "a third", "application": f.app})
	add := func(scope string) *testenv.Resp {
		return as(t, f.owner, "POST", scopePath(groups.KindGroup, scope)+"/add_user", map[string]any{"user": f.plain.UUID, "role": "member"})
	}
	if r := add(other); r.Status != 400 || !strings.Contains(r.Str("error_description"), "at most 500 role grants") {
		t.Fatalf("at the limit, none expired: %d %s", r.Status, r.Body)
	}
	svc.Now = func() time.Time { return exp.Add(time.Second) }
	if r := add(other); r.Status != 201 {
		t.Fatalf("at the limit, two expired: %d %s", r.Status, r.Body)
	}
	g := getItem(t, "GRANTS#"+f.plain.UUID, "GRANTS")
	if n := g["n"].(*types.AttributeValueMemberN).Value; n != "499" {
		t.Errorf("the count after dropping two and adding one: %s", n)
	}
	for _, k := range [][2]string{{"SCOPE#" + f.app, "M#" + f.plain.UUID}, {"SCOPE#" + f.group, "M#" + f.plain.UUID}, {"SCOPE#" + f.app, "N#" + f.plain.UUID + "#" + f.group}} {
		if getItem(t, k[0], k[1]) != nil {
			t.Errorf("the expired grant's %v stays", k)
		}
	}
	if g["g_"+f.app] != nil || g["g_"+f.group] != nil || g["g_"+other] == nil {
		t.Errorf("the user's side: %v", flatten(g))
	}
	// Exactly at the limit again with one expired grant; two adds at once.
	if r := as(t, f.owner, "POST", scopePath(groups.KindApplication, f.app)+"/add_user", map[string]any{"user": f.plain.UUID, "role": "member", "expiration_time": exp.Add(time.Hour).Format(time.RFC3339)}); r.Status != 201 {
		t.Fatalf("add_user: %d %s", r.Status, r.Body)
	}
	setN(t, "GRANTS#"+f.plain.UUID, "GRANTS", "n", groups.MaxGrantsPerUser)
	svc.Now = func() time.Time { return exp.Add(time.Hour + time.Second) }
	fourth := scopeID(t, f.owner, groups.KindGroup, map[string]any{"name": "a fourth", "application": f.app})
	statuses := testenv.AtOnce(2, func(i int) int { return add([]string{third, fourth}[i]).Status })
	if statuses[201] != 1 || statuses[400] != 1 {
		t.Errorf("two adds with room for one: %v", statuses)
	}
	if n := getItem(t, "GRANTS#"+f.plain.UUID, "GRANTS")["n"].(*types.AttributeValueMemberN).Value; n != "500" {
		t.Errorf("the count after the two adds: %s", n)
	}
}
