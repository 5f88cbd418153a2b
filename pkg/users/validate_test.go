package users_test

import (
	"strings"
	"testing"

	"github.com/example/accounts/pkg/users"
)

func TestValidEmailCanonicalForm(t *testing.T) {
	for _, tc := range []struct {
		desc, input string
		want        string // the canonical form; "" when refused
	}{
		{"case is folded in the local part and the domain", "  Foo.Bar@Example.COM\t", "foo.bar@example.com"},
		{"fullwidth letters are their ordinary forms", "ｆｏｏ@ｅｘａｍｐｌｅ．ｃｏｍ", "foo@example.com"},
		{"the KELVIN SIGN is a k", "\u212aate@example.com", "kate@example.com"},
		{"a decomposed é is the composed one", "cafe\u0301@example.com", "caf\u00e9@example.com"},
		{"a composed é stays composed", "CAF\u00c9@example.com", "caf\u00e9@example.com"},
		{"a dotted capital I folds to i and a combining dot", "\u0130nci@example.com", "i\u0307nci@example.com"},
		{"sharp s folds to ss in the local part", "Stra\u00dfe@example.com", "strasse@example.com"},
		{"a Unicode domain is its Punycode", "ada@Exämple.com", "ada@xn--exmple-cua.com"},
		{"a Punycode domain is itself", "ada@XN--EXMPLE-CUA.com", "ada@xn--exmple-cua.com"},
		{"sharp s in a domain is not ss (IDNA 2008)", "ada@stra\u00dfe.de", "ada@xn--strae-oqa.de"},
		{"a single-script Cyrillic local part is accepted", "Иван@example.com", "иван@example.com"},
		{"a single-script Cyrillic domain is accepted", "ivan@пример.рф", "ivan@xn--e1afmkfd.xn--p1ai"},
		{"Japanese may mix Han and kana", "山田たろう@example.jp", "山田たろう@example.jp"},
		{"digits and punctuation go with any script", "иван.1987+2@example.com", "иван.1987+2@example.com"},
		{"a trailing zero-width space is refused", "foo@example.com\u200b", ""},
		{"a zero-width space in the local part is refused", "fo\u200bo@example.com", ""},
		{"a zero-width joiner is refused", "foo\u200d@example.com", ""},
		{"a zero-width non-joiner is refused", "foo@exa\u200cmple.com", ""},
		{"a soft hyphen is refused, not dropped", "foo@exam\u00adple.com", ""},
		{"a right-to-left override is refused", "foo\u202e@example.com", ""},
		{"a left-to-right mark is refused", "\u200efoo@example.com", ""},
		{"a variation selector is refused", "foo\ufe0f@example.com", ""},
		{"a byte-order mark is refused", "\ufefffoo@example.com", ""},
		{"a Hangul filler is refused", "foo\u3164@example.com", ""},
		{"a no-break space is refused", "foo\u00a0bar@example.com", ""},
		{"a private-use code point is refused", "foo\ue000@example.com", ""},
		{"an unassigned code point is refused", "foo\U000e0fff@example.com", ""},
		{"Cyrillic а among Latin letters in the local part is refused", "\u0430dmin@example.com", ""},
		{"Cyrillic а among Latin letters in a domain label is refused", "admin@ex\u0430mple.com", ""},
		{"the same look-alike as Punycode is refused", "admin@xn--exmple-4nf.com", ""},
		{"Greek ο among Latin letters is refused", "g\u03bfogle@example.com", ""},
		{"a label that is not valid Punycode is refused", "ada@xn--zz.com", ""},
		{"an empty domain label is refused", "ada@example..com", ""},
		{"an underscore in the domain is refused", "ada@ex_ample.com", ""},
		{"a display name is refused", "Ada <ada@example.com>", ""},
		{"a fullwidth display name is refused", "Ada ＜ada@example.com＞", ""},
		{"255 bytes are refused", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", ""},
		{"254 bytes are accepted", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 57) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".com",
			strings.Repeat("a", 64) + "@" + strings.Repeat("b", 57) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63) + ".com"},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			got, msg := users.ValidEmail(tc.input)
			if got != tc.want || (msg == "") != (tc.want != "") {
				t.Fatalf("ValidEmail(%q) = %q, %q; want %q", tc.input, got, msg, tc.want)
			}
			if tc.want == "" {
				return
			}
			if again, msg := users.ValidEmail(got); again != got || msg != "" {
				t.Fatalf("not a fixed point: %q -> %q (%s)", got, again, msg)
			}
			if n := users.NormalizeEmail(tc.input); n != got {
				t.Fatalf("NormalizeEmail(%q) = %q, the claim would differ from the stored %q", tc.input, n, got)
			}
		})
	}
	t.Run("case=a Unicode domain and its Punycode are one claim", func(t *testing.T) {
		a, _ := users.ValidEmail("Ada@BÜCHER.example")
		b, _ := users.ValidEmail("ada@xn--bcher-kva.example")
		if a == "" || a != b || users.NormalizeEmail("ada@bücher.example") != b {
			t.Fatalf("%q and %q differ", a, b)
		}
	})
}

func TestValidUsernameProfile(t *testing.T) {
	for _, tc := range []struct {
		desc, input string
		want        string // the canonical form; "" when refused
	}{
		{"a plain name is itself", "ada.lovelace+x@example.com", "ada.lovelace+x@example.com"},
		{"capitals are lowered", "Ada", "ada"},
		{"surrounding space is trimmed", "  ada\t", "ada"},
		{"the KELVIN SIGN is a k", "\u212aate", "kate"},
		{"fullwidth letters are their ordinary forms", "ｋａｔｅ", "kate"},
		{"a dotted capital I is refused", "\u0130nci", ""},
		{"a decomposed é is refused", "cafe\u0301", ""},
		{"a composed é is refused", "caf\u00e9", ""},
		{"a trailing zero-width space is refused", "kate\u200b", ""},
		{"a trailing zero-width joiner is refused", "kate\u200d", ""},
		{"a soft hyphen is refused", "ka\u00adte", ""},
		{"Cyrillic а is refused", "k\u0430te", ""},
		{"a compatibility ligature is refused", "\ufb01sh", ""},
		{"a dot is refused", ".", ""},
		{"two dots are refused", "..", ""},
		{"three dots are refused", "...", ""},
		{"fullwidth dots are refused", "．．", ""},
		{"dots with a letter are accepted", "..a", "..a"},
		{"128 characters are accepted", strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{"129 characters are refused", strings.Repeat("a", 129), ""},
		{"a space inside is refused", "ada lovelace", ""},
		{"a slash is refused", "a/b", ""},
		{"empty is refused", "", ""},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			got, msg := users.ValidUsername(tc.input)
			if got != tc.want || (msg == "") != (tc.want != "") {
				t.Fatalf("ValidUsername(%q) = %q, %q; want %q", tc.input, got, msg, tc.want)
			}
			if tc.want == "" {
				return
			}
			if again, msg := users.ValidUsername(got); again != got || msg != "" {
				t.Fatalf("not a fixed point: %q -> %q (%s)", got, again, msg)
			}
			if n := users.NormalizeUsername(tc.input); n != got {
				t.Fatalf("NormalizeUsername(%q) = %q, a login would miss the claim %q", tc.input, n, got)
			}
		})
	}
}
