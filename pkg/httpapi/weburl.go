package httpapi

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxWebURL bounds a link the service stores and shows to others.
const MaxWebURL = 2000

// WebURLProblem is the one check for a link the service stores and shows to
// others (a profile image, whether a client or the identity source gives
// it): an absolute http:// or https:// URL with a host, no user info, no
// control or space characters, at most MaxWebURL bytes. It returns why s is
// not one, or "" when it is. javascript:, data:, relative and other
// schemes' URLs are refused, so a client that renders the link as is
// cannot be made to run or fetch anything else.
func WebURLProblem(s string) string {
	const msg = "Enter an absolute http:// or https:// URL with a host and no user name or password, of at most 2000 characters."
	if len(s) > MaxWebURL || !utf8.ValidString(s) {
		return msg
	}
	// Browsers read a backslash as a slash: https://evil\@good would be evil's.
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) || r == '\\' }) {
		return msg
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" || u.User != nil || u.Hostname() == "" {
		return msg
	}
	return ""
}
