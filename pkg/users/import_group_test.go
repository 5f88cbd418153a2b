package users

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Unit tests of the import's group commit (import.go): the packing and the
// merged count updates. The group path on DynamoDB Local, with lines that
// lose races and under the conflict double, is tested in pkg/api
// (import_group_test.go).

func groupTestUsers(t *testing.T) []pending {
	t.Helper()
	now := time.Now()
	firsts := []string{"Maria", "John", "Anna", "José", "Zoë", "Ömer", "Elena", "Pavel"}
	lasts := []string{"García", "Smith", "Tamm", "Müller", "Núñez"}
	ascii := []string{"maria", "john", "anna", "jose", "zoe", "omer", "elena", "pavel"}
	var todo []pending
	add := func(in ImportInput) {
		u, _, err := importUser(in, now)
		if err != nil {
			t.Fatal(*in.Email, err)
		}
		todo = append(todo, pending{idx: len(todo), user: u})
	}
	s := func(v string) *string { return &v }
	for i := range 300 {
		in := ImportInput{}
		in.Email = s(fmt.Sprintf("%s.%s.%d@example.org", ascii[i%8], []string{"garcia", "smith", "tamm", "muller", "nunez"}[(i+2)%5], i))
		in.FirstName, in.LastName = s(firsts[i%8]), s(lasts[(i/8)%5])
		in.Organization, in.JobTitle = s(fmt.Sprintf("Org-%d", i%20)), s(fmt.Sprintf("Job %d", i%7))
		if i%20 == 19 {
			in.Status = s(StatusDisabled)
		}
		add(in)
	}
	// Usernames whose derived slugs coincide (all three make slug-twin).
	for _, un := range []string{"slug.twin", "slug+twin", "slug@twin"} {
		in := ImportInput{}
		in.Email, in.Username = s(un[:4]+fmt.Sprint(len(todo))+"@example.net"), s(un)
		add(in)
	}
	// The largest footprint TestAllWordStartsIndexed builds.
	in := ImportInput{}
	in.Email, in.Username = s("qa.ra.sa.ta.ua.va.wa.xa.ya.za@zz.zz"), s("pa")
	in.FirstName, in.LastName = s("aa ba ca da ea fa ga ha ia ib"), s("ja ka la ma na oa")
	in.Organization, in.JobTitle, in.PhoneNumber, in.NativeName, in.CivilNumber = s("o"), s("j"), s("1"), s("n"), s("c")
	add(in)
	return todo
}

func TestImportGroupsFitOneTransactionEach(t *testing.T) {
	st := &store{table: "t", countShards: 16}
	todo := groupTestUsers(t)
	groups := st.importGroups(todo)
	seen := map[int]bool{}
	perUser := 0
	grouped := 0
	for _, g := range groups {
		items, spans, err := st.groupItems(g, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > maxTransactItems {
			t.Errorf("a group of %d users has %d items", len(g), len(items))
		}
		// No item twice in one transaction (DynamoDB refuses it).
		keys := map[string]bool{}
		for _, it := range items {
			var k map[string]types.AttributeValue
			switch {
			case it.Put != nil:
				k = it.Put.Item
			case it.Update != nil:
				k = it.Update.Key
			}
			id := pkOf(k) + " " + k["sk"].(*types.AttributeValueMemberS).Value
			if keys[id] {
				t.Errorf("%s twice in one group's transaction", id)
			}
			keys[id] = true
		}
		// The users' own items, in order, then the merged counts; every
		// count update on one shard.
		for k, p := range g {
			if seen[p.idx] {
				t.Errorf("user %d in two groups", p.idx)
			}
			seen[p.idx] = true
			if pkOf(items[spans[k][0]].Put.Item) != "USER#"+p.user.UUID {
				t.Errorf("span %v of user %d does not start with its item", spans[k], p.idx)
			}
			perUser += len(st.countItems(nil, p.user))
		}
		shard := -1
		for _, it := range items[spans[len(g)-1][1]:] {
			if _, ok := isCountKey(it.Update.Key); !ok {
				t.Fatalf("a non-count item after the users: %v", it)
			}
			if i := countShardIndex(it.Update.Key); shard >= 0 && i != shard {
				t.Errorf("count updates on shards %d and %d", shard, i)
			} else {
				shard = i
			}
			grouped++
		}
	}
	if len(seen) != len(todo) {
		t.Errorf("%d of %d users grouped", len(seen), len(todo))
	}
	for _, p := range todo {
		if p.user.Slug != "" {
			t.Errorf("user %s: slug %q set by the grouping", p.user.Username, p.user.Slug)
		}
	}
	t.Logf("%d users in %d groups; %d count updates grouped, %d one user at a time", len(todo), len(groups), grouped, perUser)
	if len(groups)*3 > len(todo) {
		t.Errorf("%d groups for %d users: under 3 users a group", len(groups), len(todo))
	}
	if grouped*2 > perUser {
		t.Errorf("grouped count updates %d, not under half of %d", grouped, perUser)
	}
}

// The merged deltas add up to the users' own: the counts of a group equal
// those of its users created one by one.
func TestImportGroupCountsAreTheUsersSum(t *testing.T) {
	st := &store{table: "t", countShards: 16}
	todo := groupTestUsers(t)
	for _, g := range st.importGroups(todo) {
		want := map[string]map[string]int64{}
		for _, p := range g {
			for id, bs := range countDeltas(nil, p.user) {
				if want[id] == nil {
					want[id] = map[string]int64{}
				}
				for b, v := range bs {
					want[id][b] += v
				}
			}
		}
		items, spans, _ := st.groupItems(g, time.Now())
		got := map[string]map[string]int64{}
		for _, it := range items[spans[len(g)-1][1]:] {
			id, _ := isCountKey(it.Update.Key)
			got[id] = map[string]int64{}
			var total int64
			for name, attr := range it.Update.ExpressionAttributeNames {
				v := it.Update.ExpressionAttributeValues[":"+name[1:]].(*types.AttributeValueMemberN).Value
				var x int64
				fmt.Sscan(v, &x)
				if attr == "n" {
					total = x
					continue
				}
				got[id][attr[len(bucketAttr):]] = x
			}
			var sum int64
			for _, v := range got[id] {
				sum += v
			}
			if sum != total {
				t.Errorf("list %s: n %d, buckets sum to %d", id, total, sum)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("group counts\n%v\nwant\n%v", got, want)
		}
	}
}
