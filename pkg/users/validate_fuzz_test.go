package users_test

import (
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/users"
)

func FuzzValidEmail(f *testing.F) {
	for _, s := range []string{
		"ada@example.com", "  Ada.Lovelace@Example.COM\t", "", " ", "@", "a@", "@b.c", "a@b", "a@b.",
		"a@b.c", "Ada <ada@example.com>", `"quoted local"@example.com`, "a@[127.0.0.1]",
		"a@b.c,d@e.f", "a@@b.c", "a\x00@b.c", "ä@example.com", "a@exämple.com", "a@b.c (comment)",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com",
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com",
		"a@b.c\n", "=?utf-8?q?a?=@b.c", "a.@b.c", ".a@b.c",
		"\u212aate@example.com", "\u0130nci@example.com", "cafe\u0301@example.com", "foo@example.com\u200b",
		"\u0430dmin@example.com", "admin@ex\u0430mple.com", "ada@xn--exmple-cua.com", "ｆｏｏ@ｅｘａｍｐｌｅ．ｃｏｍ",
		"foo@exam\u00adple.com", "foo\u202e@example.com", "Stra\u00dfe@stra\u00dfe.de", "山田たろう@example.jp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		e, msg := users.ValidEmail(in)
		if msg != "" {
			if e != "" {
				t.Fatalf("refused %q (%s) but returned %q", in, msg, e)
			}
			return
		}
		if len(e) > users.MaxEmail {
			t.Fatalf("accepted %d bytes: %q", len(e), e)
		}
		a, err := mail.ParseAddress(e)
		if err != nil || a.Address != e || a.Name != "" {
			t.Fatalf("accepted %q, which net/mail reads as %v, %v", e, a, err)
		}
		if again, msg := users.ValidEmail(e); again != e || msg != "" {
			t.Fatalf("not idempotent: %q -> %q (%s)", e, again, msg)
		}
		if n := users.NormalizeEmail(in); n != e {
			t.Fatalf("the claim of %q would be %q, not the stored %q", in, n, e)
		}
		if !norm.NFKC.IsNormalString(e) {
			t.Fatalf("accepted %q, which is not NFKC", e)
		}
		for _, r := range e {
			if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) {
				t.Fatalf("accepted %q, which holds %U", e, r)
			}
		}
		at := strings.LastIndexByte(e, '@')
		if d := e[at+1:]; d != strings.ToLower(d) || strings.IndexFunc(d, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
			t.Fatalf("accepted %q, whose domain is not lower-case ASCII", e)
		}
		if up, _ := users.ValidEmail(asciiUpper(e)); up != e {
			t.Fatalf("%q in capitals is %q, another claim", e, up)
		}
		if trimmed := strings.TrimSpace(in); isASCII(trimmed) && e != strings.ToLower(trimmed) {
			// ASCII addresses keep the claims they always had.
			t.Fatalf("accepted the ASCII %q as %q, not its lower case", in, e)
		}
	})
}

var usernamePattern = regexp.MustCompile(`^[a-z0-9@.+_-]{1,128}$`)

func FuzzValidUsername(f *testing.F) {
	for _, s := range []string{
		"ada", "ada.lovelace+test@example.com", "", " ", "Ada", "ada lovelace", "a_b-c",
		strings.Repeat("a", 128), strings.Repeat("a", 129), "ä", "a\n", "\u212a", "ǆ", "a/b", "a\x00",
		".", "..", "...", "\u0130", "cafe\u0301", "kate\u200b", "ｋａｔｅ", "k\u0430te",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		c, msg := users.ValidUsername(u)
		if msg != "" {
			if c != "" {
				t.Fatalf("refused %q (%s) but returned %q", u, msg, c)
			}
		} else {
			if !usernamePattern.MatchString(c) || strings.Trim(c, ".") == "" {
				t.Fatalf("ValidUsername(%q) accepted %q, which the contract's rule refuses", u, c)
			}
			if again, msg := users.ValidUsername(c); again != c || msg != "" {
				t.Fatalf("not idempotent: %q -> %q (%s)", c, again, msg)
			}
			if up, _ := users.ValidUsername(strings.ToUpper(c)); up != c {
				t.Fatalf("%q in capitals is %q, another name", c, up)
			}
		}
		if trimmed := strings.TrimSpace(u); usernamePattern.MatchString(trimmed) && strings.Trim(trimmed, ".") != "" && c != trimmed {
			// A name the contract's rule allows is itself: no account's name moves.
			t.Fatalf("ValidUsername(%q) = %q, %q", u, c, msg)
		}
	})
}

func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

func isASCII(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) < 0
}

func FuzzValidPassword(f *testing.F) {
	for _, s := range []struct{ p, email, username string }{
		{"violet-Tractor-93-lantern", "ada@example.com", "ada"},
		{"short", "", ""},
		{"password", "", ""},
		{"qwertyuiop", "", ""},
		{"ada@example.com", "ada@example.com", "ada@example.com"},
		{"ADA@EXAMPLE.COM", "ada@example.com", "x"},
		{"caf\u00e9-caf\u00e9-caf\u00e9", "", ""},
		{"cafe\u0301-cafe\u0301-cafe\u0301", "", ""},
		{strings.Repeat("x", 256), "", ""},
		{strings.Repeat("x", 257), "", ""},
		{strings.Repeat("\u00e9", 256), "", ""},
		{strings.Repeat("e\u0301", 200), "", ""},
		{strings.Repeat("\ufdfa", 20), "", ""},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "", ""},
		{"ｐａｓｓｗｏｒｄ", "", ""},
	} {
		f.Add(s.p, s.email, s.username)
	}
	f.Fuzz(func(t *testing.T, p, email, username string) {
		msgs := users.ValidPassword(p, email, username)
		n := secret.NormalizePassword(p)
		count := utf8.RuneCountInString(n)
		if len(msgs) == 0 {
			// Characters are counted after NFKC, the form that is hashed;
			// the byte bound keeps the hash's input bounded too.
			if count < users.MinPassword || count > users.MaxPassword || len(p) > 4*users.MaxPassword {
				t.Fatalf("accepted a password of %d characters (%d bytes)", count, len(p))
			}
			if users.IsCommonPassword(p) {
				t.Fatalf("accepted the common password %q", p)
			}
			if email != "" && strings.ToLower(n) == users.NormalizeEmail(email) {
				t.Fatalf("accepted a password equal to the email %q", email)
			}
		}
		if utf8.RuneCountInString(p) > users.MaxPassword && count > users.MaxPassword && len(msgs) == 0 {
			t.Fatalf("accepted %d runes", utf8.RuneCountInString(p))
		}
		if p != "" && len(users.ValidPassword(p, "", strings.ToLower(n))) == 0 {
			t.Fatalf("accepted a password equal to the username: %q", p)
		}
	})
}
