package users

import (
	"encoding/json"
	"net/mail"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ccojocar/zxcvbn-go/data"

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

// ValidEmail checks and normalises an address: trimmed, a bare address of at
// most 254 characters.
func ValidEmail(e string) (string, string) {
	e = strings.TrimSpace(e)
	if e == "" {
		return "", "This field is required."
	}
	if len(e) > MaxEmail {
		return "", "Enter a valid email address of at most 254 characters."
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", "Enter a valid email address."
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || !strings.Contains(e[at+1:], ".") || strings.HasSuffix(e, ".") {
		return "", "Enter a valid email address."
	}
	return e, ""
}

// ValidUsername checks a username: 1 to 128 of lowercase letters, digits and @.+-_.
func ValidUsername(u string) string {
	if u == "" {
		return "This field is required."
	}
	if len(u) > MaxUsername {
		return "Ensure this field has no more than 128 characters."
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("@.+-_", r)) {
			return "Enter a valid username: lowercase letters, numbers and @/./+/-/_ only."
		}
	}
	return ""
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
	if (email != "" && low == NormalizeEmail(email)) || (username != "" && low == strings.ToLower(username)) {
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
