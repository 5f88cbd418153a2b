package users

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestWordPrefixes(t *testing.T) {
	u := &User{UUID: "u1", Username: "mgarcia", Email: "maria.garcia@example.com", FirstName: "María", LastName: "García",
		Status: StatusEnabled}
	ps := wordPrefixes(u)
	for p, want := range map[string]string{
		// One or two letters: the name groups only (the query group's are
		// the in-transaction lists).
		"m": "nf", "ma": "nf", "g": "nl", "ga": "nl",
		"mar": "qnf", "maria": "qnf", "maria g": "qn", "maria garcia": "qn", "garcia": "qnl",
		"mga": "q", "mgarcia": "q", "maria.": "q", "maria.garcia": "q", "garcia@": "q", "exa": "q", "example.com": "q",
		"garcia@exam": "q", "garcia@examp": "q",
	} {
		if ps[p] != want {
			t.Errorf("prefix %q: groups %q, want %q", p, ps[p], want)
		}
	}
	for _, p := range []string{"mg", "ex", "maria ", "maria.garcia@", "garcia@exampl", "arcia", ""} {
		if g, ok := ps[p]; ok {
			t.Errorf("prefix %q kept (%q)", p, g)
		}
	}
	for p := range ps {
		if n := len([]rune(p)); n > maxPrefixRunes {
			t.Errorf("prefix %q has %d runes", p, n)
		}
	}
	if len(wordPrefixes(&User{Username: "x", Status: StatusUnverified, FirstName: "Ann"})) != 0 {
		t.Error("an unlisted user has word list entries")
	}
}

// TestWordOps: the changes that move a user's word lists are conditional on
// the entry being as expected, and their deltas are the entries' groups.
func TestWordOps(t *testing.T) {
	ann := &User{UUID: "u1", Username: "ann", FirstName: "Ann", LastName: "Lee", Email: "ann@example.com", Status: StatusEnabled}
	ops := wordOps("t", nil, ann)
	if len(ops) != len(wordPrefixes(ann)) {
		t.Fatalf("%d ops for %d prefixes", len(ops), len(wordPrefixes(ann)))
	}
	for _, op := range ops {
		if len(op.items) != 1 || op.items[0].Put == nil || *op.items[0].Put.ConditionExpression != "attribute_not_exists(pk)" {
			t.Fatalf("create %s: %+v", op.list, op.items)
		}
	}
	// No change in the searched fields: nothing to do.
	later := *ann
	later.Organization = "ACME"
	if ops := wordOps("t", ann, &later); len(ops) != 0 {
		t.Errorf("%d ops for a change the lists do not see", len(ops))
	}
	// A renamed user: the old entries go, the new ones come, under guards.
	renamed := *ann
	renamed.Username = "annlee"
	ops = wordOps("t", ann, &renamed)
	byList := map[string]wordOp{}
	for _, op := range ops {
		byList[op.list] = op
	}
	ann3 := byList[wordListID+"ann"] // first name, username, address: groups qnf
	if len(ann3.items) != 2 || ann3.items[0].Delete == nil || ann3.items[1].Put == nil {
		t.Fatalf("ann moved by %+v", ann3.items)
	}
	if len(ann3.deltas) != 0 {
		t.Errorf("the same bucket: deltas %v, want none (they cancel out)", ann3.deltas)
	}
	if _, ok := byList[wordListID+"annlee"]; !ok {
		t.Error("no entry for the new username's start")
	}
	// Deletion: every entry goes, each conditional on its groups.
	ops = wordOps("t", ann, nil)
	for _, op := range ops {
		d := op.items[0].Delete
		if d == nil || *d.ConditionExpression != "#g = :old" {
			t.Fatalf("delete %s: %+v", op.list, op.items)
		}
		var sum int64
		for _, v := range op.deltas {
			sum += v
		}
		if g := d.ExpressionAttributeValues[":old"].(*types.AttributeValueMemberS).Value; sum != -int64(len(g)) {
			t.Errorf("%s: deltas %v for groups %q", op.list, op.deltas, g)
		}
	}
	// Packing keeps each change whole and each transaction within 100 items.
	var many []wordOp
	for range 70 {
		many = append(many, wordOp{items: make([]types.TransactWriteItem, 2), deltas: map[string]int64{"qa": 1}})
	}
	for _, chunk := range packWordOps(many) {
		n := 0
		for _, op := range chunk {
			n += len(op.items) + 1
		}
		if n > maxTransactItems {
			t.Errorf("a transaction of %d items", n)
		}
	}
}

func TestCountsByGroup(t *testing.T) {
	c := listCounts{buckets: []bucketCount{{"fann", 2}, {"nann", 3}, {"qann", 3}, {"qbob", 1}}}
	q := c.byGroup('q')
	if q.total != 4 || len(q.buckets) != 2 || q.buckets[1] != (bucketCount{"bob", 1}) {
		t.Errorf("q: %+v", q)
	}
	if f := c.byGroup('f'); f.total != 2 || f.buckets[0].prefix != "ann" {
		t.Errorf("f: %+v", f)
	}
}

// TestPlanWordLists: one search value of up to 12 letters alone is its word
// list when they are kept, and is read from its matches when they are not,
// or when it is longer, or has company.
func TestPlanWordLists(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		q     ListQuery
		words bool
		list  string // the word list planned, "" for none
	}{
		{ListQuery{Search: "García"}, true, "s:garcia"},
		{ListQuery{Keyword: "maria gar"}, true, "s:maria gar"},
		{ListQuery{Words: map[string]string{"first_name": "M"}}, true, "s:m"},
		{ListQuery{Words: map[string]string{"full_name": "ann lee"}}, true, "s:ann lee"},
		{ListQuery{Search: "ma"}, true, ""},                     // q:ma, in the transaction
		{ListQuery{Search: "maria garcia l"}, true, ""},         // 14 letters
		{ListQuery{Search: "garcia", IsActive: &yes}, true, ""}, // with a flag
		{ListQuery{Search: "garcia", Keyword: "maria"}, true, ""},
		{ListQuery{Search: "garcia"}, false, ""},
	} {
		p := tc.q.plan(tc.words)
		got := ""
		if p.kind == planIndexed && p.list.word != 0 {
			got = p.list.id
		}
		if got != tc.list {
			t.Errorf("%+v (word lists %v): planned %q (kind %d), want %q", tc.q, tc.words, got, p.kind, tc.list)
		}
	}
}
