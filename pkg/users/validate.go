package users

import (
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ccojocar/zxcvbn-go/data"
	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"

	"github.com/example/accounts/pkg/secret"
)

// Bounds on input.
const (
	MaxEmail       = 254
	MaxUsername    = 128
	MinPassword    = 8
	MaxPassword    = 256
	MaxCustomData  = 16 << 10
	MaxShortString = 150
	MaxLongString  = 2000
)

// problems collects validation messages per field.
type problems map[string][]string

func (p problems) add(field, msg string) { p[field] = append(p[field], msg) }

// ValidEmail checks an address and returns its canonical form, the one
// string that is claimed (EMAIL#...), stored and mailed to:
//
//   - trimmed, then the whole address NFKC (fullwidth letters are letters);
//   - a bare address (no display name, comment or list) by net/mail;
//   - the local part case folded (Unicode full folding, then NFKC again);
//   - the domain through IDNA's lookup mapping (UTS #46, non-transitional,
//     which lowercases and maps compatibility forms the same way) to its
//     ASCII form: Punycode labels (xn--...), as DNS and SES take them;
//   - at most 254 bytes in that form.
//
// It refuses default-ignorable, format and control code points (zero-width
// space and joiners, soft hyphen, bidi controls, variation selectors, ...)
// and unassigned ones rather than dropping them, and a local part or domain
// label that mixes scripts (Cyrillic 'а' among Latin letters): each must be
// written in one script, Common and Inherited characters (digits,
// punctuation, combining marks) going with any.
func ValidEmail(e string) (string, string) {
	c, msg := canonicalEmail(e)
	if msg == "" {
		// Canonical means a fixed point: normalising again changes nothing.
		if again, _ := canonicalEmail(c); again != c {
			return "", invalidEmail
		}
	}
	return c, msg
}

const invalidEmail = "Enter a valid email address."

// emailDomain is IDNA's lookup profile, also checking DNS lengths (no
// empty label, at most 63 bytes a label and 253 the name).
var emailDomain = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false), idna.VerifyDNSLength(true))

var foldCase = cases.Fold()

func canonicalEmail(e string) (string, string) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", "This field is required."
	}
	if len(e) > 4*MaxEmail { // no address is this long however it is written
		return "", "Enter a valid email address of at most 254 characters."
	}
	if !utf8.ValidString(e) || strings.IndexFunc(e, hiddenRune) >= 0 {
		return "", "Enter a valid email address, without invisible or control characters."
	}
	e = norm.NFKC.String(e)
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", invalidEmail
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || !strings.Contains(e[at+1:], ".") || strings.HasSuffix(e, ".") {
		return "", invalidEmail
	}
	local := norm.NFKC.String(foldCase.String(e[:at]))
	domain, err := emailDomain.ToASCII(e[at+1:])
	if err != nil {
		return "", invalidEmail
	}
	shown, err := emailDomain.ToUnicode(domain) // what a reader sees, also of xn-- input
	if err != nil || strings.IndexFunc(local, hiddenRune) >= 0 || strings.IndexFunc(shown, hiddenRune) >= 0 {
		return "", invalidEmail
	}
	if !singleScript(local) {
		return "", "Enter a valid email address: its part before the @ mixes scripts (letters that only look alike)."
	}
	for _, label := range strings.Split(shown, ".") {
		if !singleScript(label) {
			return "", "Enter a valid email address: a part of its domain mixes scripts (letters that only look alike)."
		}
	}
	c := local + "@" + domain
	if len(c) > MaxEmail {
		return "", "Enter a valid email address of at most 254 characters."
	}
	if a, err := mail.ParseAddress(c); err != nil || a.Address != c || a.Name != "" {
		return "", invalidEmail
	}
	return c, ""
}

// hiddenRune reports code points an identity may not hold: controls, format
// characters (zero-width space and joiners, soft hyphen, bidi controls,
// tags), the other default-ignorables (variation selectors, Hangul fillers,
// combining grapheme joiner, ...), white space, private use, noncharacters
// and unassigned code points. (ASCII space is left to net/mail.)
func hiddenRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Z,
		unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point, unicode.Noncharacter_Code_Point) ||
		!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)
}

// singleScript reports whether s is written in one script (UTS #39's
// single-script, with its augmented sets: Han goes with Hiragana and
// Katakana, with Hangul, or with Bopomofo). Common and Inherited characters
// go with every script.
func singleScript(s string) bool {
	var set []string
	started := false
	for _, r := range s {
		rs := scriptsOf(r)
		if rs == nil {
			continue
		}
		if !started {
			set, started = rs, true
			continue
		}
		set = slices.DeleteFunc(slices.Clone(set), func(x string) bool { return !slices.Contains(rs, x) })
		if len(set) == 0 {
			return false
		}
	}
	return true
}

// scriptsOf is the augmented script set of r; nil for Common, Inherited
// and ASCII other than letters.
func scriptsOf(r rune) []string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return latin
		}
		return nil
	}
	for name, t := range unicode.Scripts {
		if !unicode.Is(t, r) {
			continue
		}
		switch name {
		case "Common", "Inherited":
			return nil
		case "Han":
			return []string{"Jpan", "Kore", "Hanb"}
		case "Hiragana", "Katakana":
			return []string{"Jpan"}
		case "Hangul":
			return []string{"Kore"}
		case "Bopomofo":
			return []string{"Hanb"}
		}
		return []string{name}
	}
	return nil
}

var latin = []string{"Latin"}

// ValidUsername checks a username and returns its canonical form: trimmed,
// then the PRECIS UsernameCaseMapped profile (RFC 8265: fullwidth to
// ordinary width, lower case, NFC; invisible, control and compatibility
// characters refused), then the contract's rule: 1 to 128 of lowercase
// letters, digits and @.+-_, and not dots alone ("." and ".." name paths).
// So the KELVIN SIGN is a "k" and "Ａda" is "ada", while a dotted capital I,
// a decomposed "é" or a trailing zero-width space are refused: nothing that
// looks like an existing username can be a second one.
func ValidUsername(u string) (string, string) {
	u = strings.TrimSpace(u)
	if u == "" {
		return "", "This field is required."
	}
	if len(u) > 4*MaxUsername {
		return "", "Ensure this field has no more than 128 characters."
	}
	c, err := precis.UsernameCaseMapped.String(u)
	if err != nil {
		return "", invalidUsername
	}
	if len(c) > MaxUsername {
		return "", "Ensure this field has no more than 128 characters."
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("@.+-_", r)) {
			return "", invalidUsername
		}
	}
	if strings.Trim(c, ".") == "" {
		return "", "Enter a valid username: not only dots."
	}
	return c, ""
}

const invalidUsername = "Enter a valid username: lowercase letters, numbers and @/./+/-/_ only."

// NormalizeUsername is the form a username is looked up in: the canonical
// form ValidUsername gives, or, for one it refuses, the trimmed lower case.
func NormalizeUsername(u string) string {
	if c, msg := ValidUsername(u); msg == "" {
		return c
	}
	return strings.ToLower(strings.TrimSpace(u))
}

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	// The zxcvbn project's list of frequently used passwords (30,000
	// entries), read on first use so it costs nothing at cold start.
	raw, err := data.Asset("data/Passwords.json")
	if err != nil {
		panic("users: common password list missing: " + err.Error())
	}
	var l struct{ List []string }
	if err := json.Unmarshal(raw, &l); err != nil {
		panic("users: common password list unreadable: " + err.Error())
	}
	m := make(map[string]struct{}, len(l.List))
	for _, p := range l.List {
		m[strings.ToLower(p)] = struct{}{}
	}
	return m
})

// IsCommonPassword reports whether p is on the list of common passwords.
func IsCommonPassword(p string) bool {
	_, ok := commonPasswords()[strings.ToLower(secret.NormalizePassword(p))]
	return ok
}

// ValidPassword returns the problems with password p for a user with the
// given email and username.
func ValidPassword(p, email, username string) []string {
	n := secret.NormalizePassword(p)
	var out []string
	switch c := utf8.RuneCountInString(n); {
	case c < MinPassword:
		out = append(out, "This password is too short. It must contain at least 8 characters.")
	case c > MaxPassword || len(p) > 4*MaxPassword:
		out = append(out, "This password is too long. It must contain at most 256 characters.")
	}
	if len(out) == 0 && IsCommonPassword(n) {
		out = append(out, "This password is too common.")
	}
	low := strings.ToLower(n)
	if (email != "" && (low == NormalizeEmail(email) || NormalizeEmail(n) == NormalizeEmail(email))) ||
		(username != "" && (low == strings.ToLower(username) || NormalizeUsername(n) == NormalizeUsername(username))) {
		out = append(out, "The password is too similar to the email or username.")
	}
	return out
}

// boundString checks a free-text field's length.
func boundString(p problems, field string, v *string, max int) {
	if v == nil {
		return
	}
	*v = strings.TrimSpace(*v)
	if utf8.RuneCountInString(*v) > max {
		p.add(field, "Ensure this field has no more than "+itoa(max)+" characters.")
	}
	if !utf8.ValidString(*v) {
		p.add(field, "Invalid text.")
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// usernameIsAnotherEmail is the problem with a username that is an email
// address other than the account's own: whoever holds it would receive
// logins meant for that address's owner (a login is looked up as an email,
// then as a username) and block the owner's default sign-up.
func usernameIsAnotherEmail(username, email string) string {
	if !strings.Contains(username, "@") {
		return ""
	}
	if e, msg := ValidEmail(username); msg != "" || e == email {
		return ""
	}
	return "A username that is an email address must be the account's own email."
}
