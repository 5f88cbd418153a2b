package ownstacks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// The import's group commit (pkg/users/import.go: several users in one
// TransactWriteItems, their count deltas merged) on DynamoDB Local: a line
// of a group that loses a race to a sign-up gets its own result and the
// others are created; under DynamoDB's conflict rule (the ddbtest double)
// concurrent imports, admin creates and sign-ups end with no 5xx; the
// counts are exact after both.

// importResult is one line's answer.
type importResult = testenv.ImportResult

// raceDB counts the transactions that create more than one user (the
// import's groups) and, once, runs hook on the first of them before it is
// sent.
type raceDB struct {
	users.DB
	hook   atomic.Pointer[func(puts []map[string]types.AttributeValue)]
	groups atomic.Int64
}

func (r *raceDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	var puts []map[string]types.AttributeValue
	for _, it := range in.TransactItems {
		if it.Put != nil && strings.HasPrefix(attr(it.Put.Item, "pk"), "USER#") && attr(it.Put.Item, "sk") == "USER" {
			puts = append(puts, it.Put.Item)
		}
	}
	if len(puts) > 1 {
		r.groups.Add(1)
		if h := r.hook.Swap(nil); h != nil {
			(*h)(puts)
		}
	}
	return r.DB.TransactWriteItems(ctx, in, opts...)
}

// postImport sends NDJSON lines to the import as staff.
func (cs *conflictStack) postImport(lines []map[string]any) (int, importAnswer) {
	var b bytes.Buffer
	for _, l := range lines {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	req, err := http.NewRequest("POST", cs.env.URL+"/api/users/import", &b)
	if err != nil {
		return 0, importAnswer{}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", testenv.Token(cs.staff.Token))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, importAnswer{}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var a importAnswer
	_ = json.Unmarshal(body, &a)
	return res.StatusCode, a
}

// claim reads a claim's holder on the stack's table.
func (cs *conflictStack) claim(t *testing.T, pk string) string {
	t.Helper()
	out, err := cs.env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(cs.env.Config.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "CLAIM"}}})
	if err != nil {
		t.Fatal(err)
	}
	return attr(out.Item, "user")
}

func groupLines(tag string, n int) []map[string]any {
	lines := make([]map[string]any, n)
	for i := range lines {
		first, last := burstFirst[i%len(burstFirst)], burstLast[(i/3)%len(burstLast)]
		un := fmt.Sprintf("%s.%s.%s%d", first, last, tag, i)
		lines[i] = map[string]any{"email": un + "@example.org", "username": un, "first_name": first, "last_name": last,
			"organization": fmt.Sprintf("Org-%d", i%5), "is_staff": i%9 == 0, "is_support": i%7 == 0}
		if i%6 == 5 {
			lines[i]["status"] = "DISABLED"
		}
	}
	return lines
}

// TestImportGroupLineLosesARace: between the import's read of the claims
// and its group's write, one person signs up with the address of the
// group's first user and another with the username of its second. The
// group's transaction is canceled on those two claims; those lines are
// answered as a single create would be (skipped with the sign-up's uuid;
// refused, the username taken) and the rest of the group is created, with
// exact counts.
func TestImportGroupLineLosesARace(t *testing.T) {
	if testing.Short() {
		t.Skip("its own stack")
	}
	rdb := &raceDB{}
	cs := startConflictStack(t, 16, func(db users.DB) users.DB { rdb.DB = db; return rdb })
	var lostEmail, lostName string
	var signups []int
	hook := func(puts []map[string]types.AttributeValue) {
		lostEmail, lostName = attr(puts[0], "email"), attr(puts[1], "username")
		s1, _ := cs.send("POST", "/api/users", map[string]any{"email": lostEmail, "username": "racer.one", "password": testenv.DefaultPassword}, "")
		s2, _ := cs.send("POST", "/api/users", map[string]any{"email": "racer.two@example.org", "username": lostName, "password": testenv.DefaultPassword}, "")
		signups = append(signups, s1, s2)
	}
	rdb.hook.Store(&hook)
	lines := groupLines("r", 40)
	status, a := cs.postImport(lines)
	if status != 200 || len(a.Results) != len(lines) {
		t.Fatalf("import: %d %+v", status, a)
	}
	if lostEmail == "" || signups[0] != http.StatusCreated || signups[1] != http.StatusCreated {
		t.Fatalf("the race was not run: no group transaction (%d), or sign-ups %v", rdb.groups.Load(), signups)
	}
	signedUp := cs.claim(t, "EMAIL#"+lostEmail)
	for i, r := range a.Results {
		email, name := lines[i]["email"], lines[i]["username"]
		switch {
		case email == lostEmail:
			if r.Result != "skipped" || r.UUID != signedUp || signedUp == "" {
				t.Errorf("line %d, its address taken by a sign-up meanwhile: %+v, want skipped with %s", r.Line, r, signedUp)
			}
		case name == lostName:
			if r.Result != "refused" || len(r.Fields["username"]) != 1 || r.Fields["username"][0] != httpapi.DuplicateMessage {
				t.Errorf("line %d, its username taken by a sign-up meanwhile: %+v, want refused", r.Line, r)
			}
		default:
			if r.Result != "created" || cs.claim(t, "EMAIL#"+email.(string)) != r.UUID {
				t.Errorf("line %d: %+v, want created", r.Line, r)
			}
		}
	}
	if a.Totals.Created != len(lines)-2 || a.Totals.Skipped != 1 || a.Totals.Refused != 1 {
		t.Errorf("totals %+v", a.Totals)
	}
	// The canceled group was written again without its two lines, and the
	// request wrote its users in groups, not one by one.
	if g := rdb.groups.Load(); g < 3 {
		t.Errorf("%d group transactions for %d users", g, len(lines))
	}
	t.Logf("%d users, %d group transactions; double %+v", len(lines), rdb.groups.Load(), cs.dbl.Stats())
	cs.checkCounts(t, 16)
	// A rerun creates nothing.
	if status, again := cs.postImport(lines); status != 200 || again.Totals.Created != 0 || again.Totals.Skipped != len(lines)-1 {
		t.Errorf("rerun: %d %+v", status, again.Totals)
	}
}

// TestConcurrentImportsMeetNoHotItem: on DynamoDB's conflict rule, four
// imports of 150 users at once, with 60 admin creates and 60 sign-ups (20
// of them for addresses in the imports) at the same time, answer no 5xx;
// every line is created or, for an address a sign-up took first, skipped;
// and every count is exact.
func TestConcurrentImportsMeetNoHotItem(t *testing.T) {
	if testing.Short() {
		t.Skip("bursts on their own stack")
	}
	cs := startConflictStack(t, 16)
	const files, perFile, others = 4, 150, 60
	var all [][]map[string]any
	for f := range files {
		all = append(all, groupLines(fmt.Sprintf("c%d-", f), perFile))
	}
	answers := make([][]importResult, files)
	rounds := make([]int, files)
	var mu sync.Mutex
	statuses := atOnce(files+2*others, func(i int) int {
		switch {
		case i < files:
			// As cmd/import does: the lines not written within a request's
			// time (DynamoDB Local on a loaded machine) are sent again.
			results := make([]importResult, len(all[i]))
			todo := make([]int, len(all[i]))
			for k := range todo {
				todo[k] = k
			}
			s := 0
			for round := 0; len(todo) > 0 && round < 10; round++ {
				var lines []map[string]any
				for _, k := range todo {
					lines = append(lines, all[i][k])
				}
				var a importAnswer
				if s, a = cs.postImport(lines); s != http.StatusOK || len(a.Results) != len(lines) {
					return s
				}
				var again []int
				for n, r := range a.Results {
					if results[todo[n]] = r; r.Error == "service_unavailable" {
						again = append(again, todo[n])
					}
				}
				mu.Lock()
				rounds[i]++
				mu.Unlock()
				todo = again
			}
			mu.Lock()
			answers[i] = results
			mu.Unlock()
			return s
		case i < files+others:
			un := fmt.Sprintf("admin.create%d", i)
			s, _ := cs.send("POST", "/api/users", map[string]any{"username": un, "email": un + "@example.com", "is_active": i%3 != 0}, testenv.Token(cs.staff.Token))
			return s
		default:
			j := i - files - others
			email := fmt.Sprintf("signup%d@example.com", j)
			if j < 20 {
				email = all[j%files][j*7%perFile]["email"].(string) // an address an import brings too
			}
			s, _ := cs.send("POST", "/api/users", map[string]any{"email": email, "username": fmt.Sprintf("signup.%d", j), "password": testenv.DefaultPassword}, "")
			if s == http.StatusBadRequest { // the import took the address first
				return 0x400
			}
			return s
		}
	})
	t.Logf("statuses %v; requests per import %v; double %+v", statuses, rounds, cs.dbl.Stats())
	if n := fivexx(statuses); n > 0 {
		t.Errorf("%d answers 5xx or none: %v", n, statuses)
	}
	if statuses[http.StatusOK] != files {
		t.Errorf("imports: %v, want %d × 200", statuses, files)
	}
	created := 0
	for f, a := range answers {
		for i, r := range a {
			email := all[f][i]["email"].(string)
			switch r.Result {
			case "created":
				created++
				if cs.claim(t, "EMAIL#"+email) != r.UUID {
					t.Errorf("file %d line %d created as %s, but its address is held by another", f, r.Line, r.UUID)
				}
			case "skipped":
				if h := cs.claim(t, "EMAIL#"+email); h != r.UUID || h == "" {
					t.Errorf("file %d line %d skipped for %s, the address is held by %s", f, r.Line, r.UUID, h)
				}
			default:
				t.Errorf("file %d line %d: %+v", f, r.Line, r)
			}
		}
	}
	if created < files*perFile-20 {
		t.Errorf("%d lines created, want at least %d", created, files*perFile-20)
	}
	if cs.dbl.Stats().Canceled == 0 {
		t.Error("the double canceled no transaction: the writes did not overlap, so this proves nothing")
	}
	cs.checkCounts(t, 16)
}
