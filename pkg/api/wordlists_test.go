package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/ddbtest"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// wordTag is a fresh run of letters no other test's names start with.
func wordTag() string {
	const letters = "bcdfghjkmnpqrstvwxz"
	var b strings.Builder
	b.WriteString("wq")
	id := uuid.New()
	for _, c := range id[:4] {
		b.WriteByte(letters[int(c)%len(letters)])
	}
	return b.String()
}

// wordListState reads a word list's entries and its count shards and
// checks that every group's buckets add up to that group's entries: the
// stream's invariant, whatever it was delivered. It returns the usernames
// in the list for each group letter.
func wordListState(t *testing.T, prefix string) map[byte][]string {
	t.Helper()
	ctx := context.Background()
	entries := map[byte][]string{}
	perBucket := map[string]int64{}
	var start map[string]types.AttributeValue
	for {
		out, err := env.DB.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(env.Config.TableName),
			KeyConditionExpression:    aws.String("pk = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "SP#" + prefix}},
			ConsistentRead:            aws.Bool(true), ExclusiveStartKey: start})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			sk := it["sk"].(*types.AttributeValueMemberS).Value
			name, _, _ := strings.Cut(sk, "\x1f")
			for _, g := range []byte(it["g"].(*types.AttributeValueMemberS).Value) {
				entries[g] = append(entries[g], name)
				perBucket[string(g)+name[:min(3, len(name))]]++
			}
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	counted := map[string]int64{}
	for i := range 64 {
		sk := "COUNT"
		if i > 0 {
			sk += "#" + strconv.Itoa(i)
		}
		out, err := env.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "USERLIST#s:" + prefix}, "sk": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range out.Item {
			if n, ok := v.(*types.AttributeValueMemberN); ok && strings.HasPrefix(name, "b:") {
				x, _ := strconv.ParseInt(n.Value, 10, 64)
				counted[strings.TrimPrefix(name, "b:")] += x
			}
		}
	}
	for b, n := range counted {
		if n != perBucket[b] {
			t.Errorf("word list %q bucket %q: counted %d, %d entries", prefix, b, n, perBucket[b])
		}
	}
	for b, n := range perBucket {
		if counted[b] != n {
			t.Errorf("word list %q bucket %q: %d entries, counted %d", prefix, b, n, counted[b])
		}
	}
	return entries
}

// TestWordListsFromTheStream: accounts written through the API are found by
// any search value of up to 12 letters once the stream has handled them, as
// one page in 3 requests with an exact X-Result-Count, and follow renames,
// deactivation and deletion; a record delivered again, or a delivery that
// failed after it wrote, counts nothing twice.
func TestWordListsFromTheStream(t *testing.T) {
	// A stack that keeps word lists (the shared one does not, main_test.go);
	// the package's helpers use env, so it stands in for the shared one
	// while this test runs (the package's tests run one at a time).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	words, err := testenv.Start(ctx, testenv.Options{Env: map[string]string{"TABLE_NAME": "users-words", "WORD_LISTS": "1"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer words.Close()
	shared := env
	env = words
	defer func() { env = shared }()

	staff := env.NewStaff(t, "wordstaff", false)
	tag := wordTag()
	type person struct{ first, last, user string }
	people := []person{
		{"Ann", "Lee", "ann"}, {"Anna", "Leeds", "annal"}, {"Bob", "Lee", "blee"}, {"Ánne Marie", "Oddie", "am"},
		{"Carl", "Annan", "carl"}, {"Dee", "Lee-Smith", "dls"}, {"Eve", "Ann", "eve"},
	}
	made := map[string]listed{}
	for _, p := range people {
		made[p.user] = adminCreate(t, staff, map[string]any{"username": tag + "." + p.user, "email": testenv.Email(tag + p.user),
			"first_name": tag + p.first, "last_name": tag + p.last})
	}
	env.Drain(t)
	type user struct{ first, last, username, email string }
	current := map[string]*user{}
	for _, p := range people {
		current[p.user] = &user{strings.ToLower(tag + p.first), strings.ToLower(tag + p.last), made[p.user].username, made[p.user].email}
	}
	fold := func(s string) string { return users.Fold(s) }
	starts := func(s, seps string) []string {
		var out []string
		for i := 0; i < len(s); i++ {
			if (i == 0 || strings.IndexByte(seps, s[i-1]) >= 0) && strings.IndexByte(seps, s[i]) < 0 {
				out = append(out, s[i:])
			}
		}
		return out
	}
	match := func(u *user, field, v string) bool {
		v = fold(v)
		full := fold(u.first + " " + u.last)
		var texts []string
		switch field {
		case "first_name":
			texts = starts(fold(u.first), " ")
		case "last_name":
			texts = starts(fold(u.last), " ")
		case "full_name":
			texts = starts(full, " ")
		default:
			texts = append(starts(full, " "), append(starts(fold(u.username), " ._-+@"), starts(fold(u.email), " ._-+@")...)...)
		}
		return slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, v) })
	}
	cases := []struct{ field, value string }{
		{"query", tag}, {"query", tag + "ann"}, {"user_keyword", strings.ToUpper(tag) + "ANNE"}, {"query", tag + "lee"},
		{"query", tag + "ánn"}, {"full_name", tag + "ann " + tag[:2]}, {"first_name", tag + "ann"}, {"last_name", tag + "lee"},
		{"last_name", tag + "lee-s"}, {"full_name", tag + "anne m"}, {"first_name", tag[:1]}, {"query", tag + ".a"},
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		for _, tc := range cases {
			var want []string
			for _, u := range current {
				if match(u, tc.field, tc.value) {
					want = append(want, u.username)
				}
			}
			slices.Sort(want)
			q := tc.field + "=" + url.QueryEscape(tc.value) + "&page_size=2"
			if len([]rune(tc.value)) > 12 {
				t.Fatalf("%s: the case is longer than a word list", q)
			}
			if tc.value == tag[:1] {
				// One letter of first_name: every account's; only the count
				// of this run's is known, so just the budget.
				var r *testenv.Resp
				cost := env.Requests.Measure(func() { r, _ = list(t, staff, q) })
				if r.Status != 200 || cost.Requests > 3 {
					t.Errorf("%s %s: %d, %d requests %v", when, q, r.Status, cost.Requests, cost.ByOp)
				}
				continue
			}
			for page := 1; page <= max(1, (len(want)+1)/2); page++ {
				var r *testenv.Resp
				var objs []map[string]any
				cost := env.Requests.Measure(func() { r, objs = list(t, staff, q+"&page="+strconv.Itoa(page)) })
				if r.Status != 200 {
					t.Fatalf("%s %s: %d %s", when, q, r.Status, r.Body)
				}
				lo := min((page-1)*2, len(want))
				if got := usernames(objs); resultCount(t, r) != len(want) || !slices.Equal(got, want[lo:min(lo+2, len(want))]) {
					t.Errorf("%s %s page %d: %d %v, want %d %v", when, q, page, resultCount(t, r), got, len(want), want[lo:min(lo+2, len(want))])
				}
				if cost.Requests > 3 {
					t.Errorf("%s %s: %d requests %v, budget 3", when, q, cost.Requests, cost.ByOp)
				}
			}
		}
		for _, p := range []string{tag, tag + "ann", tag + "lee", tag + ".a", tag[:1]} {
			wordListState(t, fold(p))
		}
	}
	check(t, "created:")

	// A rename, a deactivation (still listed), a deletion.
	if r := env.Do(t, "PATCH", "/api/users/"+made["ann"].uuid, map[string]any{"first_name": tag + "Zed"}, auth(staff)...); r.Status != 200 {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	current["ann"].first = strings.ToLower(tag + "zed")
	if r := env.Do(t, "PATCH", "/api/users/"+made["blee"].uuid, map[string]any{"is_active": false}, auth(staff)...); r.Status != 200 {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "DELETE", "/api/users/"+made["eve"].uuid, nil, auth(staff)...); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	delete(current, "eve")
	env.Drain(t)
	check(t, "changed:")

	// Delivered again: what the stream made is not made twice.
	ctx = context.Background()
	carl, err := env.API.Users.Get(ctx, made["carl"].uuid)
	if err != nil {
		t.Fatal(err)
	}
	wl := &users.WordLists{DB: env.DB, Table: env.Config.TableName}
	for range 2 {
		if err := wl.Sync(ctx, nil, carl); err != nil {
			t.Fatalf("a redelivered insert: %v", err)
		}
	}
	check(t, "redelivered:")

	// A delivery that wrote and then failed (a timeout after the commit),
	// then its redelivery: a rename of carl and back.
	renamed := *carl
	renamed.FirstName, renamed.Username = tag+"Ann", tag+".zcarl"
	lost := &afterCommit{DB: env.DB}
	if err := (&users.WordLists{DB: lost, Table: env.Config.TableName}).Sync(ctx, carl, &renamed); err == nil {
		t.Fatal("the injected failure did not fail the sync")
	}
	if lost.calls == 0 {
		t.Fatal("nothing was written before the failure")
	}
	if err := wl.Sync(ctx, carl, &renamed); err != nil {
		t.Fatalf("the redelivery: %v", err)
	}
	current["carl"].first, current["carl"].username = strings.ToLower(tag+"ann"), tag+".zcarl"
	for _, p := range []string{tag + "ann", tag + ".z", tag} {
		wordListState(t, fold(p))
	}
	// Only the lists see the rename (the account is unchanged): check them
	// before putting them back.
	for _, v := range []string{tag + "ann", tag + ".z"} {
		n := 0
		for _, u := range current {
			if match(u, "query", v) {
				n++
			}
		}
		if r, _ := list(t, staff, "query="+url.QueryEscape(v)); resultCount(t, r) != n {
			t.Errorf("after the redelivered rename, query=%s counts %d, want %d", v, resultCount(t, r), n)
		}
	}
	if err := wl.Sync(ctx, &renamed, carl); err != nil {
		t.Fatal(err)
	}
	current["carl"].first, current["carl"].username = strings.ToLower(tag+"carl"), made["carl"].username
	check(t, "put back:")
}

// afterCommit writes each transaction, then answers the first as if it had
// failed (a Lambda timeout after DynamoDB committed).
type afterCommit struct {
	DB    *dynamodb.Client
	calls int
}

func (a *afterCommit) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	a.calls++
	if _, err := a.DB.TransactWriteItems(ctx, in, opts...); err != nil {
		return nil, err
	}
	return nil, errors.New("the function timed out after the write")
}

// TestWordListsUnderConflicts: the stream's writes of many users sharing
// their prefixes at once, through the double that cancels transactions as
// DynamoDB does, all land, and every count equals its entries.
func TestWordListsUnderConflicts(t *testing.T) {
	ctx := context.Background()
	dbl := ddbtest.New(env.DB, 5*time.Millisecond)
	dbl.InFlight = 4
	wl := &users.WordLists{DB: dbl, Table: env.Config.TableName}
	tag := wordTag()
	var us []*users.User
	for i := range 40 {
		us = append(us, &users.User{UUID: uuid.NewString(), Username: fmt.Sprintf("%s.u%02d", tag, i), Email: fmt.Sprintf("%s.u%02d@example.com", tag, i),
			FirstName: tag + "Maria", LastName: tag + "Garcia", Status: users.StatusEnabled})
	}
	run := func(f func(u *users.User) error) {
		var wg sync.WaitGroup
		errs := make(chan error, len(us))
		for _, u := range us {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(u); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	run(func(u *users.User) error { return wl.Sync(ctx, nil, u) })
	if dbl.Stats().Canceled == 0 {
		t.Error("the double canceled nothing: the writes did not overlap, so this proves nothing")
	}
	t.Logf("conflicts: %+v", dbl.Stats())
	for _, p := range []string{tag, tag + "maria", tag + "garcia", tag + "."} {
		got := wordListState(t, p)
		if len(got['q']) != len(us) {
			t.Errorf("word list %q holds %d of %d users", p, len(got['q']), len(us))
		}
	}
	run(func(u *users.User) error { return wl.Sync(ctx, u, nil) })
	for _, p := range []string{tag, tag + "maria", tag + "garcia"} {
		if got := wordListState(t, p); len(got) != 0 {
			t.Errorf("word list %q after the deletes: %v", p, got)
		}
	}
}
