package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// legacyVector is one of the hashes the real tools made
// (pkg/secret/testdata/legacy_hashes.py).
type legacyVector struct {
	Source, Hash, Password string
	Weak                   bool
}

func legacyVectors(t *testing.T) []legacyVector {
	t.Helper()
	b, err := os.ReadFile("../secret/testdata/legacy_hashes.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []legacyVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func importLines(t *testing.T, staff testenv.User, ctype string, lines ...any) *testenv.Resp {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		switch v := l.(type) {
		case string:
			b.WriteString(v)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(j)
		}
		b.WriteString("\n")
	}
	return env.Do(t, "POST", "/api/users/import", b.String(), append(auth(staff), "Content-Type", ctype)...)
}

type importAnswer = testenv.ImportAnswer

func decodeImport(t *testing.T, r *testenv.Resp) importAnswer {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var a importAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestImportIsForStaffOnly(t *testing.T) {
	plain := quickUser(t, "imp-plain")
	support := env.NewStaff(t, "imp-support", true)
	staff := env.NewStaff(t, "imp-staff", false)
	line := map[string]any{"email": testenv.Email("imp-nobody")}
	if r := env.Do(t, "POST", "/api/users/import", "{}\n", "Content-Type", "application/x-ndjson"); r.Status != 401 {
		t.Errorf("unauthenticated: %d %s", r.Status, r.Body)
	}
	if r := importLines(t, plain, "application/x-ndjson", line); r.Status != 403 {
		t.Errorf("plain user: %d %s", r.Status, r.Body)
	}
	if r := importLines(t, support, "application/x-ndjson", line); r.Status != 403 {
		t.Errorf("support: %d %s", r.Status, r.Body)
	}
	if r := importLines(t, staff, "text/csv", line); r.Status != 415 {
		t.Errorf("CSV body: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/api/users/import", "[{", auth(staff)...); r.Status != 400 || !strings.Contains(string(r.Body), "bad_request") {
		t.Errorf("broken JSON array: %d %s", r.Status, r.Body)
	}
	var many strings.Builder
	for i := range 1001 {
		fmt.Fprintf(&many, "{\"email\":\"too-many-%d@example.com\"}\n", i)
	}
	if r := env.Do(t, "POST", "/api/users/import", many.String(), append(auth(staff), "Content-Type", "application/x-ndjson")...); r.Status != 400 {
		t.Errorf("1,001 users: %d %s", r.Status, r.Body)
	}
}

func TestImportCreatesSkipsAndRefusesPerLine(t *testing.T) {
	staff := env.NewStaff(t, "imp-staff", false)
	existing := quickUser(t, "imp-existing")
	vs := legacyVectors(t)
	weak, strong := vs[0], vs[5] // Django's pbkdf2_sha256 at 260,000 and at 600,000 iterations
	if !weak.Weak || strong.Weak {
		t.Fatal("vectors moved")
	}
	e := func(p string) string { return testenv.Email(p) }
	enabled, pendingEmail, disabled, nohash, dup := e("imp-enabled"), e("imp-pending"), e("imp-disabled"), e("imp-nohash"), e("imp-dup")
	lines := []any{
		map[string]any{"email": enabled, "username": "imp-" + strings.Split(enabled, "@")[0], "first_name": "Grace", "status": "ENABLED",
			"date_joined": "2019-04-01T09:30:00Z", "password_hash": strong.Hash, "job_title": "Admiral", "uuid": "ignored", "url": "ignored"},
		map[string]any{"email": pendingEmail, "status": "UNVERIFIED", "password_hash": weak.Hash},
		map[string]any{"email": disabled, "status": "DISABLED", "password_hash": vs[10].Hash},
		map[string]any{"email": nohash},
		"", // a blank line is no user, but keeps its number
		map[string]any{"email": existing.Email, "first_name": "Again"},
		map[string]any{"email": e("imp-taken-name"), "username": strings.ToLower(existing.Email)},
		map[string]any{"email": "not an address"},
		map[string]any{"email": e("imp-unknown"), "favourite_colour": "green"},
		map[string]any{"email": e("imp-badhash"), "password_hash": "md5$0123$abcdef"},
		map[string]any{"email": e("imp-plainpw"), "password": "correct horse battery staple"},
		`{"email": "broken@example.com",`,
		map[string]any{"email": dup},
		map[string]any{"email": strings.ToUpper(dup)},
		map[string]any{"email": e("imp-future"), "date_joined": "2999-01-01T00:00:00Z"},
		map[string]any{"email": e("imp-status"), "status": "ACTIVE"},
		map[string]any{"email": e("imp-unv-nohash"), "status": "UNVERIFIED"},
	}
	r := importLines(t, staff, "application/x-ndjson", lines...)
	for _, v := range vs {
		if strings.Contains(string(r.Body), v.Hash) {
			t.Fatalf("the answer echoes a hash: %s", r.Body)
		}
	}
	a := decodeImport(t, r)
	want := map[int]string{1: "created", 2: "created", 3: "created", 4: "created", 6: "skipped", 7: "refused:username",
		8: "refused:email", 9: "refused:favourite_colour", 10: "refused:password_hash", 11: "refused:password", 12: "refused:",
		13: "created", 14: "refused:email", 15: "refused:date_joined", 16: "refused:status", 17: "refused:password_hash"}
	if len(a.Results) != len(want) {
		t.Fatalf("%d results for %d lines: %s", len(a.Results), len(want), r.Body)
	}
	byLine := map[int]int{}
	for i, res := range a.Results {
		byLine[res.Line] = i
		w, ok := want[res.Line]
		if !ok {
			t.Errorf("result for line %d", res.Line)
			continue
		}
		kind, field, _ := strings.Cut(w, ":")
		if res.Result != kind {
			t.Errorf("line %d: %s (%s %v), want %s", res.Line, res.Result, res.ErrorDescription, res.Fields, w)
		}
		if kind == "refused" && (res.Error != "bad_request" || res.ErrorDescription == "" || (field != "" && len(res.Fields[field]) == 0)) {
			t.Errorf("line %d: refusal %+v, want the contract's error with fields[%s]", res.Line, res, field)
		}
		if kind == "created" && len(res.UUID) != 36 {
			t.Errorf("line %d: no uuid", res.Line)
		}
	}
	if got := a.Results[byLine[6]].UUID; got != existing.UUID {
		t.Errorf("the existing user's line is skipped with uuid %q, want %q", got, existing.UUID)
	}
	if w := a.Results[byLine[2]].Warnings; len(w) != 1 || !strings.Contains(w[0], "260000") {
		t.Errorf("a weak hash's warnings: %v", w)
	}
	if len(a.Results[byLine[1]].Warnings) != 0 {
		t.Errorf("a strong hash warned: %v", a.Results[byLine[1]].Warnings)
	}
	if a.Totals.Created != 5 || a.Totals.Skipped != 1 || a.Totals.Refused != 10 || a.Totals.Warnings != 1 {
		t.Errorf("totals %+v", a.Totals)
	}
	// What was stored.
	u1 := userItem(t, a.Results[byLine[1]].UUID)
	if attr(u1, "status") != "ENABLED" || !strings.HasPrefix(attr(u1, "date_joined"), "2019-04-01T09:30:00") || attr(u1, "job_title") != "Admiral" ||
		attr(u1, "password_hash") != strong.Hash || attr(u1, "registration_method") != "admin" {
		t.Errorf("enabled user stored as %v", u1)
	}
	if u := userItem(t, a.Results[byLine[2]].UUID); attr(u, "status") != "UNVERIFIED" || attr(u, "ttl") == "" {
		t.Errorf("pending user stored as %v", u)
	}
	if u := userItem(t, a.Results[byLine[3]].UUID); attr(u, "status") != "DISABLED" || u["is_active"].(*types.AttributeValueMemberBOOL).Value {
		t.Errorf("disabled user stored as %v", u)
	}
	if u := userItem(t, a.Results[byLine[4]].UUID); attr(u, "password_hash") != "" || attr(u, "username") != strings.ToLower(nohash) {
		t.Errorf("user without a hash stored as %v", u)
	}
	if u := userItem(t, existing.UUID); attr(u, "first_name") == "Again" {
		t.Error("a skipped line changed the existing user")
	}
	if got := claimHolder(t, "EMAIL#"+enabled); got != a.Results[byLine[1]].UUID {
		t.Errorf("email claim held by %q", got)
	}
	// Staff see the imported user as any other, with no hash.
	g := env.Do(t, "GET", "/api/users/"+a.Results[byLine[1]].UUID, nil, auth(staff)...)
	if g.Status != 200 || g.Str("first_name") != "Grace" || g.Str("date_joined") != "2019-04-01T09:30:00Z" || strings.Contains(string(g.Body), "pbkdf2") {
		t.Errorf("GET imported user: %d %s", g.Status, g.Body)
	}
	// A rerun of the same file creates nothing twice: every created line
	// is skipped with the uuid it got the first time.
	again := decodeImport(t, importLines(t, staff, "application/x-ndjson", lines...))
	if again.Totals.Created != 0 || again.Totals.Skipped != 6 {
		t.Errorf("rerun totals %+v", again.Totals)
	}
	for i, res := range a.Results {
		if res.Result == "created" && (again.Results[i].Result != "skipped" || again.Results[i].UUID != res.UUID) {
			t.Errorf("rerun of line %d: %+v, want skipped with %s", res.Line, again.Results[i], res.UUID)
		}
	}
	auditClaims(t)
}

func TestImportTakesAJSONArray(t *testing.T) {
	staff := env.NewStaff(t, "imp-staff", false)
	body := []map[string]any{{"email": testenv.Email("imp-arr1")}, {"email": "bad"}, {"email": testenv.Email("imp-arr2"), "status": "DISABLED"}}
	a := decodeImport(t, env.Do(t, "POST", "/api/users/import", body, auth(staff)...))
	if len(a.Results) != 3 || a.Results[0].Result != "created" || a.Results[1].Result != "refused" || a.Results[1].Line != 2 || a.Results[2].Result != "created" {
		t.Fatalf("array import: %+v", a)
	}
}

// Every recognised format logs in (JSON login, Waldur's route, Basic), and
// the first success replaces the hash with the service's argon2id in the
// same write; the old password keeps working and a wrong one counts toward
// the lockout.
func TestImportedHashesLogInAndAreUpgraded(t *testing.T) {
	realHashing(t) // the upgrade is to the service's own argon2id
	staff := env.NewStaff(t, "imp-staff", false)
	vs := legacyVectors(t)
	var lines []any
	emails := make([]string, len(vs))
	for i, v := range vs {
		emails[i] = testenv.Email("imp-login" + strconv.Itoa(i))
		lines = append(lines, map[string]any{"email": emails[i], "password_hash": v.Hash})
	}
	a := decodeImport(t, importLines(t, staff, "application/jsonl", lines...))
	if a.Totals.Created != len(vs) {
		t.Fatalf("import of every format: %+v", a)
	}
	for i, v := range vs {
		t.Run(v.Source, func(t *testing.T) {
			id := a.Results[i].UUID
			// A wrong password: refused, counted, the legacy hash kept.
			if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": emails[i], "password": "wrong-" + v.Password}); r.Status != 401 {
				t.Fatalf("wrong password: %d %s", r.Status, r.Body)
			}
			u := userItem(t, id)
			if attr(u, "failed_logins") != "1" || strings.HasPrefix(attr(u, "password_hash"), "$argon2id$") {
				t.Fatalf("after a wrong password: failed_logins %q, hash %.12q", attr(u, "failed_logins"), attr(u, "password_hash"))
			}
			epoch := attr(u, "cred_epoch")
			switch i % 3 {
			case 0:
				env.Login(t, emails[i], v.Password)
			case 1:
				if r := env.Do(t, "POST", "/api-auth/password/", map[string]any{"username": emails[i], "password": v.Password}); r.Status != 200 || r.Str("token") == "" {
					t.Fatalf("Waldur's login: %d %s", r.Status, r.Body)
				}
			default:
				if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(emails[i], v.Password)); r.Status != 200 {
					t.Fatalf("Basic: %d %s", r.Status, r.Body)
				}
			}
			u = userItem(t, id)
			if h := attr(u, "password_hash"); !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
				t.Fatalf("after the login the hash is %.20q, want the service's argon2id", h)
			}
			if attr(u, "failed_logins") != "" || attr(u, "cred_epoch") != epoch {
				t.Errorf("the upgrade cleared failures %q and kept the epoch %q (was %s)", attr(u, "failed_logins"), attr(u, "cred_epoch"), epoch)
			}
			env.Login(t, emails[i], v.Password) // the same password, now against argon2id
			if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": emails[i], "password": "wrong-" + v.Password}); r.Status != 401 {
				t.Fatalf("wrong password after the upgrade: %d", r.Status)
			}
		})
	}
}

// An imported account waiting for activation activates with a resent code
// and its imported password, which the activation upgrades.
func TestImportedPendingUserActivates(t *testing.T) {
	staff := env.NewStaff(t, "imp-staff", false)
	v := legacyVectors(t)[10] // passlib bcrypt $2b$
	email := testenv.Email("imp-activate")
	a := decodeImport(t, importLines(t, staff, "application/x-ndjson", map[string]any{"email": email, "status": "UNVERIFIED", "password_hash": v.Hash}))
	if a.Totals.Created != 1 {
		t.Fatalf("%+v", a)
	}
	if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": v.Password}); r.Status != 401 {
		t.Fatalf("login before activation: %d", r.Status)
	}
	if r := env.Do(t, "POST", "/api/auth/activation/resend", map[string]any{"email": email}); r.Status != 202 {
		t.Fatalf("resend: %d", r.Status)
	}
	code := env.CodeFromMail(t, email, "Activate")
	if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": v.Password}); r.Status != 200 || r.Str("status") != "ENABLED" {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	if h := attr(userItem(t, a.Results[0].UUID), "password_hash"); !strings.HasPrefix(h, argon2idPrefix()) {
		t.Fatalf("activation left the hash %.12q", h)
	}
	env.Login(t, email, v.Password)
}

// An import that runs out of its request's time starts no more creates and
// answers the lines it left as service_unavailable, to be sent again.
func TestImportLeavesWhatItHasNoTimeForToBeSentAgain(t *testing.T) {
	email := testenv.Email("imp-late")
	lines, pre, err := users.ParseImport([]byte(`{"email":"`+email+`"}`), false, users.ReadOnlyFields)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // less than the 3 s it keeps for the answer
	defer cancel()
	rep, err := env.API.Users.Import(ctx, lines, pre)
	if err != nil || len(rep.Results) != 1 || rep.Results[0].Result != "refused" || rep.Results[0].Error != "service_unavailable" {
		t.Fatalf("late import: %+v %v", rep, err)
	}
	if claimHolder(t, "EMAIL#"+email) != "" {
		t.Fatal("a line answered 'send again' was written")
	}
	rep, err = env.API.Users.Import(context.Background(), lines, pre)
	if err != nil || rep.Totals.Created != 1 {
		t.Fatalf("sent again: %+v %v", rep, err)
	}
}

// Concurrent first logins with an imported hash all succeed: one replaces
// the hash, the others find it replaced, check their password against the
// new one and go on.
func TestImportedHashConcurrentFirstLogins(t *testing.T) {
	staff := env.NewStaff(t, "imp-staff", false)
	v := legacyVectors(t)[6] // passlib pbkdf2_sha256, 29,000 rounds: quick
	email := testenv.Email("imp-race")
	a := decodeImport(t, importLines(t, staff, "application/x-ndjson", map[string]any{"email": email, "password_hash": v.Hash}))
	if a.Totals.Created != 1 {
		t.Fatalf("%+v", a)
	}
	const n = 4 // what the lockout's reservation lets through at once
	status := make([]int, n)
	together(n, func(i int) {
		r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": v.Password})
		status[i] = r.Status
	})
	for i, s := range status {
		if s != 200 {
			t.Errorf("login %d: %d", i, s)
		}
	}
	if h := attr(userItem(t, a.Results[0].UUID), "password_hash"); !strings.HasPrefix(h, argon2idPrefix()) {
		t.Fatalf("hash %.12q", h)
	}
}
