package users

import (
	"slices"
	"testing"
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
	if got := wordStarts("maria.garcia+lists@example.com", handleSeps); !slices.Equal(got, []string{"maria.garcia+lists@example.com", "garcia+lists@example.com", "lists@example.com"}) {
		t.Errorf("email starts: %q", got)
	}
	if got := wordStarts("jean-luc de la cruz", nameSeps); !slices.Equal(got, []string{"jean-luc de la cruz", "de la cruz", "la cruz"}) {
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
		{groupFull, []string{"jean", "lópez"}, true},
		{groupFull, []string{"jean", "smith"}, false},
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
	// "garcia" prefixes "garcia@example.com", "maria.garcia" the email: both dropped.
	if want := []string{"example.com", "garcia@example.com", "maria.garcia@example.com"}; !slices.Equal(ix.words, want) {
		t.Errorf("words %q, want %q", ix.words, want)
	}
	if !slices.Equal(ix.p1, []string{"e", "g", "m"}) || !slices.Equal(ix.p2, []string{"ex", "ga", "ma"}) {
		t.Errorf("prefixes %q %q", ix.p1, ix.p2)
	}
	es := indexEntries(u)
	if len(es) != 3 {
		t.Fatalf("%d entries", len(es))
	}
	var lists []string
	for _, l := range memberships(u) {
		lists = append(lists, l.id)
	}
	for _, want := range []string{"all", "joined", "x:organization=acme ltd", "x:organization=acme ltd|a1", "x:registration_method=admin|s0", "q:m", "q:ga"} {
		if !slices.Contains(lists, want) {
			t.Errorf("not in list %q: %q", want, lists)
		}
	}
}
