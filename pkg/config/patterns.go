package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
)

// The patterns the code checks a template-fed value against before it reads
// it. Each is also the AllowedPattern of its template.yaml parameter (a
// CloudFormation AllowedPattern is a Java regular expression matched against
// the whole value), so it is written in the part of the syntax that Go's
// RE2 and Java read alike: no \s or \S (Java's includes \x0B, Go's does
// not), no lookaround, no possessive quantifiers. TestParametersAgreeWithTheCode
// runs sample values through the template's patterns (in Java) and through
// Load, and fails on any disagreement.
const (
	// addr is an e-mail address as SES takes it: an ASCII local part and
	// a dotted domain (SES wants an internationalised domain in Punycode).
	addr = `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+`
	// displayName is the name of "Name <address>": 1 to 64 characters,
	// none a control character, < > " @ or \, not starting or ending with
	// a space.
	displayName = `[^\x00-\x20\x7F<>"@\\]([^\x00-\x1F\x7F<>"@\\]{0,62}[^\x00-\x20\x7F<>"@\\])?`
	// host and port of an http(s) URL (no user info, no IPv6 literal).
	hostPort = `[A-Za-z0-9.-]+(:[0-9]{1,5})?`
	// pathChar is one character of a URL's path: none that needs escaping
	// in HTML or that breaks a link, % only as a valid escape, no ? or #;
	// queryChar one of its query (? allowed).
	pathChar  = `([^\x00-\x20\x7F"'<>\\^\x60{|}%?#]|%[0-9A-Fa-f]{2})`
	queryChar = `([^\x00-\x20\x7F"'<>\\^\x60{|}%#]|%[0-9A-Fa-f]{2})`
)

var (
	// MailFromPattern is SenderEmail's (MAIL_FROM): an address, or
	// "Name <address>".
	MailFromPattern = regexp.MustCompile(`^(` + addr + `|` + displayName + ` <` + addr + `>)$`)
	// SupportEmailPattern is SupportEmail's: empty or an address.
	SupportEmailPattern = regexp.MustCompile(`^(` + addr + `)?$`)
	// PublicURLPattern is PublicUrl's: empty or an http(s) base URL without
	// query or fragment.
	PublicURLPattern = regexp.MustCompile(`^(https?://` + hostPort + `(/` + pathChar + `*)?)?$`)
	// LinkPattern is the link bases' and RemoteIdpManagementUrl's: empty or
	// an http(s) URL, a query allowed (a code is then appended with &).
	LinkPattern = regexp.MustCompile(`^(https?://` + hostPort + `(/` + pathChar + `*)?(\?` + queryChar + `*)?)?$`)
	// LogoURLPattern is LogoUrl's: empty or an https URL.
	LogoURLPattern = regexp.MustCompile(`^(https://` + hostPort + `(/` + pathChar + `*)?(\?` + queryChar + `*)?)?$`)
	// RemoteURLPattern is RemoteUserInfoUrl's: empty or an https URL with
	// one {username} in its path or query.
	RemoteURLPattern = regexp.MustCompile(`^(https://` + hostPort + `/` + queryChar + `*\{username\}` + queryChar + `*)?$`)
	// SecretARNPattern is RemoteUserInfoTokenSecretArn's: empty or a Secrets
	// Manager secret ARN.
	MigrationURLPattern = regexp.MustCompile(`^(https://` + hostPort + `(/` + pathChar + `*)?(\?` + queryChar + `*)?)?$`)
	SecretARNPattern    = regexp.MustCompile(`^(arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+)?$`)
	// ProductNamePattern is ProductName's: empty or 1 to 60 characters
	// without control characters or < >.
	ProductNamePattern = regexp.MustCompile(`^([^\x00-\x1F\x7F<>]{1,60})?$`)
	// AccentColorPattern is AccentColor's: empty or #rrggbb.
	AccentColorPattern = regexp.MustCompile(`^(#[0-9A-Fa-f]{6})?$`)
)

// checkURL checks v against re and that net/url reads it as an absolute
// http(s) URL with a host (what the pattern promises, asked of the parser
// that will use it).
func checkURL(name, v string, re *regexp.Regexp) error {
	if v == "" {
		return nil
	}
	if !re.MatchString(v) {
		return fmt.Errorf("config: %s %q must match %s", name, v, re)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("config: %s %q is not an absolute http(s) URL", name, v)
	}
	return nil
}

// decimal reads s as a base-10 integer of at most maxDigits digits without
// sign or leading zero (strconv.Atoi takes "+5" and "007"; the template's
// patterns do not).
func decimal(s string, maxDigits int) (int, bool) {
	if s == "" || len(s) > maxDigits || s[0] == '0' {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
