package users

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"José  GARCÍA": "jose garcia", "Ångström": "angstrom", "Straße": "strasse", " Zoë\tO'Brien ": "zoe o'brien",
		"ÉLODIE": "elodie", "Łukasz": "łukasz", "Ivan\x00ov": "ivan ov", "a\xffb": "a b",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWordStarts(t *testing.T) {
	if got := wordStarts("maria.garcia+lists@example.com", handleSeps, 3); !slices.Equal(got, []string{"maria.garcia+lists@example.com", "garcia+lists@example.com", "lists@example.com"}) {
		t.Errorf("email starts: %q", got)
	}
	if got := wordStarts("jean-luc de la cruz", nameSeps, 3); !slices.Equal(got, []string{"jean-luc de la cruz", "de la cruz", "la cruz"}) {
		t.Errorf("name starts: %q", got)
	}
	text := searchText{"jean-luc", "garcía lópez", "jl_garcia", "jl.garcia@example.com"}
	for _, tc := range []struct {
		group  int
		tokens []string
		want   bool
	}{
		{groupQuery, []string{"jean"}, true},
		{groupQuery, []string{"luc"}, false}, // names split at spaces only
		{groupQuery, []string{"garcia"}, true},
		{groupQuery, []string{"jl.g"}, true},
		{groupQuery, []string{"arcia"}, false}, // not inside a word
		{groupQuery, []string{"example"}, true},
		{fieldLast, []string{"garcía"}, true}, // as given: folding is the caller's (SearchTokens)
		{fieldFirst, []string{"garcia"}, false},
		// A phrase: the full name is "first last", and a value matches at
		// the start of a word, as a whole.
		{groupFull, []string{"jean-luc garcía lóp"}, true},
		{groupFull, []string{"garcía lópez"}, true},
		{groupQuery, []string{"jean-luc garcia"}, true},
		{groupFull, []string{"jean lópez"}, false},
		{fieldFirst, []string{"jean-luc garcia"}, false},
		{groupQuery, []string{"jl garcia"}, false},
	} {
		tx := text
		for i := range tx {
			tx[i] = Fold(tx[i])
		}
		toks := tc.tokens
		for i := range toks {
			toks[i] = Fold(toks[i])
		}
		if got := tx.matches(tc.group, toks); got != tc.want {
			t.Errorf("group %b %q: %v, want %v", tc.group, tc.tokens, got, tc.want)
		}
	}
}

func TestIndexOf(t *testing.T) {
	u := &User{UUID: "u1", Username: "maria.garcia", Email: "maria.garcia@example.com", FirstName: "María", LastName: "García",
		Organization: "ACME Ltd", RegistrationMethod: "admin", Status: StatusEnabled}
	ix := indexOf(u)
	// "garcia" prefixes "garcia@example.com", "maria.garcia" the email: both
	// dropped; the full name "maria garcia" is a start of its own.
	if want := []string{"com", "example.com", "garcia@example.com", "maria garcia", "maria.garcia@example.com"}; !slices.Equal(ix.words, want) {
		t.Errorf("words %q, want %q", ix.words, want)
	}
	if !slices.Equal(ix.p1, []string{"c", "e", "g", "m"}) || !slices.Equal(ix.p2, []string{"co", "ex", "ga", "ma"}) {
		t.Errorf("prefixes %q %q", ix.p1, ix.p2)
	}
	es := indexEntries(u)
	if len(es) != 5 {
		t.Fatalf("%d entries", len(es))
	}
	var lists []string
	for _, l := range memberships(u) {
		lists = append(lists, l.id)
	}
	for _, want := range []string{"all", "joined", "xc:*", "xc:organization=acme ltd", "xc:registration_method=admin", "q:m", "q:ga"} {
		if !slices.Contains(lists, want) {
			t.Errorf("not in list %q: %q", want, lists)
		}
	}
	// Entry 0 holds the pseudo-value's partitions by two and three flags
	// (one flag or none is a user list), entries 1 and 2 the exact values
	// by every combination of flags.
	keys := map[string]string{}
	for _, e := range es[:3] {
		for k, v := range e {
			if len(k) == 2 && k[0] == 'x' {
				keys[v.(*types.AttributeValueMemberS).Value] = k
			}
		}
	}
	for v, attr := range map[string]string{
		"x:*|a1|s0": "x4", "x:*|a1|p0": "x5", "x:*|s0|p0": "x6", "x:*|a1|s0|p0": "x7",
		"x:organization=acme ltd": "x0", "x:organization=acme ltd|a1": "x1", "x:organization=acme ltd|s0": "x2",
		"x:organization=acme ltd|p0": "x3", "x:organization=acme ltd|a1|s0": "x4", "x:organization=acme ltd|a1|p0": "x5",
		"x:organization=acme ltd|s0|p0": "x6", "x:organization=acme ltd|a1|s0|p0": "x7",
	} {
		if keys[v] != attr {
			t.Errorf("entry key %q in %q, want %q", v, keys[v], attr)
		}
	}
	if _, ok := keys["x:*"]; ok {
		t.Error("the pseudo-value has an any-flags partition")
	}
}

// Every word start counts, up to maxWordStarts over the four fields taken
// in turn.
func TestAllWordStartsIndexed(t *testing.T) {
	text := searchText{"maria del carmen de la santa trinidad", "garcia lopez", "mdc.garcia", "maria.del.carmen.garcia.lopez@dept.uni.example.ac.uk"}
	starts := text.fieldStarts()
	if len(starts[0]) != 7 || len(starts[1]) != 2 || len(starts[2]) != 2 || len(starts[3]) != 10 {
		t.Fatalf("starts %q", starts)
	}
	for _, tok := range []string{"trinidad", "santa", "uni", "ac.uk", "lopez@"} {
		if !text.matches(groupQuery, []string{tok}) {
			t.Errorf("%q not matched", tok)
		}
	}
	// Past the bound: the fields in turn, so the long address gives way.
	long := searchText{"a b c d e f g h i j", "k l m n o p", "user", "w1.w2.w3.w4.w5.w6.w7.w8.w9.w10.w11.w12@x.y"}
	st := long.fieldStarts()
	if n := len(st[0]) + len(st[1]) + len(st[2]) + len(st[3]); n != maxWordStarts {
		t.Fatalf("%d starts", n)
	}
	if len(st[0]) != 9 || len(st[1]) != 6 || len(st[2]) != 1 || len(st[3]) != 8 {
		t.Errorf("starts per field %d %d %d %d", len(st[0]), len(st[1]), len(st[2]), len(st[3]))
	}
	if long.matches(groupQuery, []string{"w9"}) || !long.matches(groupQuery, []string{"w8"}) ||
		long.matches(groupQuery, []string{"j"}) || !long.matches(groupQuery, []string{"i"}) {
		t.Error("the bound is not where it is documented")
	}
	// The largest footprint: 24 word starts with distinct first letters and
	// first two letters, every exact field set; with the user, 4 claims and
	// an outbox mail it must fit one transaction.
	u := &User{UUID: "u2", Username: "pa", Email: "qa.ra.sa.ta.ua.va.wa.xa.ya.za@zz.zz", FirstName: "aa ba ca da ea fa ga ha ia ib",
		LastName: "ja ka la ma na oa", Status: StatusEnabled, Organization: "o", JobTitle: "j", PhoneNumber: "1", NativeName: "n",
		CivilNumber: "c", RegistrationMethod: "admin"}
	if n := len(memberships(u)); n != 5+1+6+24+24 {
		t.Errorf("%d count lists", n)
	}
	items := len(indexEntries(u)) + len(memberships(u)) + 1 + 4 + 1
	if items > maxTransactItems {
		t.Errorf("a create of the largest user is %d transaction items", items)
	}
	t.Logf("largest user: %d entries, %d count lists, %d transaction items", len(indexEntries(u)), len(memberships(u)), items)
}
