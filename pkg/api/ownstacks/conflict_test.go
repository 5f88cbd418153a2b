package ownstacks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/ddbtest"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// The list counts under concurrent writes, on DynamoDB's conflict rule.
// DynamoDB Local serialises transactions and never reports a conflict; the
// ddbtest double in front of it cancels a transaction that touches an item
// another ongoing transaction holds, as DynamoDB does. Each stack below
// has its own DynamoDB Local, the double (each transaction holding its items
// for the real call plus conflictHold) and the service's own conflict retry
// (pkg/users/retry.go) above it.

const (
	burst        = 200
	conflictHold = 20 * time.Millisecond
	// conflictInFlight transactions at DynamoDB Local at once (see
	// ddbtest.Conflicts.InFlight).
	conflictInFlight = 4
)

// conflictStack is a stack whose DynamoDB client is the conflict double.
type conflictStack struct {
	env   *testenv.Env
	dbl   *ddbtest.Conflicts
	staff testenv.User
}

// outer, when given, wraps the double (to inject a race, say).
func startConflictStack(t *testing.T, shards int, outer ...func(users.DB) users.DB) *conflictStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Cheap password hashes for these stacks' 400 sign-ups and activations
	// (CPU the bursts need, and not what is under test; a hash records its
	// parameters, so it is checked with the ones it was made with).
	params := secret.PasswordParams
	secret.PasswordParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	t.Cleanup(func() { secret.PasswordParams = params })
	cs := &conflictStack{}
	e, err := testenv.Start(ctx, testenv.Options{
		// Without word lists: these tests are the request path's; the
		// stream's word lists are TestWordListsUnderConflicts'.
		Env: map[string]string{"TABLE_NAME": "users-conflicts", "COUNT_SHARDS": strconv.Itoa(shards), "WORD_LISTS": "0"},
		App: app.Options{WrapDB: func(db users.DB) users.DB {
			cs.dbl = ddbtest.New(db, conflictHold)
			cs.dbl.InFlight = conflictInFlight
			var db2 users.DB = cs.dbl
			for _, w := range outer {
				db2 = w(db2)
			}
			return db2
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cs.env = e
	cs.staff = e.NewStaff(t, "conflictstaff", false)
	return cs
}

// send makes one request and returns its status (0 when it did not get
// through), for use from many goroutines.
func (cs *conflictStack) send(method, path string, body any, auth string) (int, http.Header) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, cs.env.URL+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var sink bytes.Buffer
	_, _ = sink.ReadFrom(res.Body)
	return res.StatusCode, res.Header
}

var atOnce = testenv.AtOnce

func fivexx(statuses map[int]int) int {
	n := 0
	for s, c := range statuses {
		if s >= 500 || s == 0 {
			n += c
		}
	}
	return n
}

// burstName is a username as people have them, spread over many buckets.
func burstName(rng *rand.Rand, tag string, i int) string {
	return fmt.Sprintf("%s.%s%s%d", burstFirst[rng.IntN(len(burstFirst))], burstLast[rng.IntN(len(burstLast))], tag, i)
}

var (
	burstFirst = []string{"maria", "john", "anna", "peter", "elena", "james", "sofia", "david", "laura", "michael",
		"olga", "robert", "ines", "thomas", "yuki", "carlos", "fatima", "liam", "nora", "ahmed", "katrin", "pavel"}
	burstLast = []string{"garcia", "smith", "tamm", "ivanova", "muller", "rossi", "kim", "novak", "silva", "jensen"}
)

// adminCreates creates burst accounts at once, with every combination of
// the flags, and returns the statuses.
func (cs *conflictStack) adminCreates(t *testing.T, tag string) map[int]int {
	rng := rand.New(rand.NewPCG(1, uint64(len(tag))))
	type in struct{ body map[string]any }
	ins := make([]in, burst)
	for i := range ins {
		un := burstName(rng, tag, i)
		ins[i].body = map[string]any{"username": un, "email": un + "@example.com",
			"is_staff": i%7 == 0, "is_support": i%5 == 0, "is_active": i%4 != 0}
	}
	return atOnce(burst, func(i int) int {
		s, _ := cs.send("POST", "/api/users", ins[i].body, testenv.Token(cs.staff.Token))
		return s
	})
}

var activationCode = regexp.MustCompile(`[?&]code=([A-Za-z0-9_-]+)`)

// activations signs burst people up (a few at a time: sign-up touches no
// shared item), then activates them all at once, and returns the statuses.
func (cs *conflictStack) activations(t *testing.T, tag string) map[int]int {
	t.Helper()
	began := time.Now()
	emails := make([]string, burst)
	signups := make(chan int)
	var wg sync.WaitGroup
	failed := make(chan string, burst)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range signups {
				un := burstName(rng2(i, tag), tag, i)
				emails[i] = un + "@example.com"
				if s, _ := cs.send("POST", "/api/users", map[string]any{"email": emails[i], "username": un, "password": testenv.DefaultPassword}, ""); s != http.StatusCreated {
					failed <- fmt.Sprintf("sign-up %s: %d", un, s)
				}
			}
		}()
	}
	for i := range burst {
		signups <- i
	}
	close(signups)
	wg.Wait()
	close(failed)
	for f := range failed {
		t.Fatal(f)
	}
	t.Logf("%d sign-ups in %s", burst, time.Since(began).Round(time.Millisecond))
	// Every activation mail, read once from the local SES once the stream
	// has sent them.
	cs.env.Drain(t)
	mails, err := cs.env.Inbox.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, m := range mails {
		if sm := activationCode.FindStringSubmatch(m.Text); sm != nil && strings.Contains(m.Subject, "Activate") && len(m.To) == 1 {
			codes[strings.ToLower(m.To[0])] = sm[1]
		}
	}
	for _, e := range emails {
		if codes[e] == "" {
			t.Fatalf("no activation mail to %s", e)
		}
	}
	return atOnce(burst, func(i int) int {
		s, _ := cs.send("POST", "/api/auth/activate", map[string]any{"code": codes[emails[i]], "password": testenv.DefaultPassword}, "")
		return s
	})
}

func rng2(i int, tag string) *rand.Rand { return rand.New(rand.NewPCG(uint64(i), uint64(len(tag)))) }

// listedUsers are the listed users in the table (a Scan: the truth).
func (cs *conflictStack) listedUsers(t *testing.T) []*users.User {
	t.Helper()
	var out []*users.User
	p := dynamodb.NewScanPaginator(cs.env.DB, &dynamodb.ScanInput{TableName: aws.String(cs.env.Config.TableName), ConsistentRead: aws.Bool(true),
		// The users' own items (sk USER), not their list index entries.
		FilterExpression: aws.String("begins_with(pk, :u) AND sk = :sk"), ExpressionAttributeValues: map[string]types.AttributeValue{
			":u": &types.AttributeValueMemberS{Value: "USER#"}, ":sk": &types.AttributeValueMemberS{Value: "USER"}}})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			var u users.User
			if err := attributevalue.UnmarshalMap(it, &u); err != nil {
				t.Fatal(err)
			}
			if u.Status != users.StatusUnverified {
				out = append(out, &u)
			}
		}
	}
	return out
}

// checkCounts holds X-Result-Count of the list and of every filter, and
// every list's buckets summed over its shards, to the truth.
func (cs *conflictStack) checkCounts(t *testing.T, shards int) {
	t.Helper()
	truth := cs.listedUsers(t)
	lists := map[string]func(*users.User) bool{
		"":                 func(*users.User) bool { return true },
		"is_active=true":   func(u *users.User) bool { return u.IsActive },
		"is_active=false":  func(u *users.User) bool { return !u.IsActive },
		"is_staff=true":    func(u *users.User) bool { return u.IsStaff },
		"is_staff=false":   func(u *users.User) bool { return !u.IsStaff },
		"is_support=true":  func(u *users.User) bool { return u.IsSupport },
		"is_support=false": func(u *users.User) bool { return !u.IsSupport },
	}
	ids := map[string]string{"": "all", "is_active=true": "status#ENABLED", "is_active=false": "status#DISABLED",
		"is_staff=true": "staff#1", "is_staff=false": "staff#0", "is_support=true": "support#1", "is_support=false": "support#0"}
	for q, keep := range lists {
		want := 0
		buckets := map[string]int64{}
		for _, u := range truth {
			if keep(u) {
				want++
				b := u.Username
				if len(b) > 3 {
					b = b[:3]
				}
				buckets[b]++
			}
		}
		r := cs.env.Do(t, "GET", "/api/users?page_size=1&"+q, nil, "Authorization", testenv.Token(cs.staff.Token))
		if r.Status != 200 || r.Header.Get("X-Result-Count") != strconv.Itoa(want) {
			t.Errorf("GET /api/users?%s: %d, X-Result-Count %s, want %d", q, r.Status, r.Header.Get("X-Result-Count"), want)
		}
		got, n, used := cs.shardSums(t, ids[q])
		if n != int64(want) {
			t.Errorf("list %s: n summed over its shards %d, want %d", ids[q], n, want)
		}
		for b, c := range buckets {
			if got[b] != c {
				t.Errorf("list %s bucket %q: %d over the shards, want %d", ids[q], b, got[b], c)
			}
		}
		for b, c := range got {
			if c != 0 && buckets[b] == 0 {
				t.Errorf("list %s bucket %q: %d over the shards, want 0", ids[q], b, c)
			}
		}
		if used > shards {
			t.Errorf("list %s has %d shard items, more than %d", ids[q], used, shards)
		}
	}
}

// shardSums reads every shard of a list's count straight from the table.
func (cs *conflictStack) shardSums(t *testing.T, id string) (map[string]int64, int64, int) {
	t.Helper()
	out, err := cs.env.DB.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(cs.env.Config.TableName), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "USERLIST#" + id}}})
	if err != nil {
		t.Fatal(err)
	}
	buckets := map[string]int64{}
	var total int64
	for _, it := range out.Items {
		for name, v := range it {
			num, ok := v.(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			x, _ := strconv.ParseInt(num.Value, 10, 64)
			switch {
			case name == "n":
				total += x
			case strings.HasPrefix(name, "b:"):
				buckets[strings.TrimPrefix(name, "b:")] += x
			}
		}
	}
	return buckets, total, len(out.Items)
}

// TestConcurrentWritesMeetNoHotItem: with the count shards, 200 admin
// creates at once and 200 activations at once all succeed on DynamoDB's
// conflict rule, and every count is exact.
func TestConcurrentWritesMeetNoHotItem(t *testing.T) {
	if testing.Short() {
		t.Skip("bursts of 200 on their own stack")
	}
	cs := startConflictStack(t, 16)
	start := time.Now()
	created := cs.adminCreates(t, "c")
	t.Logf("16 shards, %d admin creates at once: %v in %s; double %+v", burst, created, time.Since(start).Round(time.Millisecond), cs.dbl.Stats())
	if fivexx(created) > 0 || created[http.StatusCreated] != burst {
		t.Errorf("admin creates: %v, want %d × 201", created, burst)
	}
	before := cs.dbl.Stats()
	start = time.Now()
	activated := cs.activations(t, "a")
	t.Logf("16 shards, %d activations at once: %v in %s; double %+v", burst, activated, time.Since(start).Round(time.Millisecond), cs.dbl.Stats())
	if fivexx(activated) > 0 || activated[http.StatusOK] != burst {
		t.Errorf("activations: %v, want %d × 200", activated, burst)
	}
	if cs.dbl.Stats().Canceled == 0 && before.Canceled == 0 {
		t.Error("the double canceled no transaction: the bursts did not overlap, so this proves nothing")
	}
	cs.checkCounts(t, 16)
}

// TestConcurrentWritesOnOneCountItemFail: the same bursts on one shard per
// list (the design before shards) meet the conflicts: some requests answer
// 503 even after the service's retries. The counts stay exact (a canceled
// transaction writes nothing): only availability suffers.
func TestConcurrentWritesOnOneCountItemFail(t *testing.T) {
	if testing.Short() {
		t.Skip("bursts of 200 on their own stack")
	}
	cs := startConflictStack(t, 1)
	created := cs.adminCreates(t, "c")
	t.Logf("1 shard, %d admin creates at once: %v; double %+v", burst, created, cs.dbl.Stats())
	activated := cs.activations(t, "a")
	t.Logf("1 shard, %d activations at once: %v; double %+v", burst, activated, cs.dbl.Stats())
	if created[http.StatusServiceUnavailable] == 0 {
		t.Errorf("admin creates on one count item: %v, want some 503s", created)
	}
	if activated[http.StatusServiceUnavailable] == 0 {
		t.Errorf("activations on one count item: %v, want some 503s", activated)
	}
	for s, n := range created {
		if s != http.StatusCreated && s != http.StatusServiceUnavailable {
			t.Errorf("admin creates: %d × %d", n, s)
		}
	}
	for s, n := range activated {
		if s != http.StatusOK && s != http.StatusServiceUnavailable {
			t.Errorf("activations: %d × %d", n, s)
		}
	}
	cs.checkCounts(t, 1)
}
