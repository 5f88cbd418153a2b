package config

import (
	"fmt"
	"strings"
	"time"
)

// RateLimit is a per-client-IP bound: at most Count requests per Window.
type RateLimit struct {
	Count  int
	Window time.Duration
}

// RateLimits are the per-IP limits of the unauthenticated entry points.
// IP_RATE_LIMIT=0 turns them all off (load tests); each is set as
// "<count>/<window>", e.g. RATE_LIMIT_LOGIN=60/5m.
type RateLimits struct {
	Enabled bool
	SignUp  RateLimit // RATE_LIMIT_SIGNUP, default 20/1h
	Login   RateLimit // RATE_LIMIT_LOGIN, default 60/5m
	Resend  RateLimit // RATE_LIMIT_RESEND, default 10/1h
	Reset   RateLimit // RATE_LIMIT_RESET, default 10/1h
	// ChangeEmail bounds change_email per client IP and ChangeEmailUser per
	// user: each request mails the new address and the old one.
	ChangeEmail     RateLimit // RATE_LIMIT_CHANGE_EMAIL, default 20/1h
	ChangeEmailUser RateLimit // RATE_LIMIT_CHANGE_EMAIL_USER, default 5/1h
	// MailAddress bounds the mails that sign-up, resend and reset send to
	// one address, whoever asks: no one can flood a mailbox from many IPs.
	// The window is short (15 min) because anyone can fill it: it bounds a
	// flood to 20 mails an hour and a blocked owner's wait to 15 minutes.
	MailAddress RateLimit // RATE_LIMIT_MAIL_ADDRESS, default 5/15m
}

// DefaultRateLimits are the limits when nothing is set.
var DefaultRateLimits = RateLimits{
	Enabled: true,
	SignUp:  RateLimit{20, time.Hour},
	Login:   RateLimit{60, 5 * time.Minute},
	Resend:  RateLimit{10, time.Hour},
	Reset:   RateLimit{10, time.Hour},

	ChangeEmail:     RateLimit{20, time.Hour},
	ChangeEmailUser: RateLimit{5, time.Hour},
	MailAddress:     RateLimit{5, 15 * time.Minute},
}

// RateLimitPattern is the template's AllowedPattern of the rate-limit
// parameters: what ParseRateLimit accepts, a count from 1 to 999999999 and
// a window of whole seconds, minutes or hours from 1s to 24h.
const RateLimitPattern = `^[1-9][0-9]{0,8}/(([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86400)s|([1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m|([1-9]|1[0-9]|2[0-4])h)$`

// MaxRateWindow is the longest rate-limit window.
const MaxRateWindow = 24 * time.Hour

var windowUnits = map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour}

// ParseRateLimit reads "<count>/<window>": a count of at most 9 digits and
// a window as a whole number of s, m or h, from 1s to 24h, without signs,
// leading zeros, fractions or compound durations (time.ParseDuration's
// "1h30m" and "1.5h" are refused, as the template's pattern refuses them).
func ParseRateLimit(s string) (RateLimit, error) {
	n, w, ok := strings.Cut(s, "/")
	count, okCount := decimal(n, 9)
	if !ok || !okCount {
		return RateLimit{}, fmt.Errorf("rate limit %q: want <count>/<window>, e.g. 60/5m", s)
	}
	var unit time.Duration
	k, okWindow := 0, false
	if len(w) > 1 {
		unit = windowUnits[w[len(w)-1]]
		k, okWindow = decimal(w[:len(w)-1], 5)
	}
	if unit == 0 || !okWindow || time.Duration(k)*unit > MaxRateWindow {
		return RateLimit{}, fmt.Errorf("rate limit %q: the window must be a whole number of s, m or h, from 1s to 24h", s)
	}
	return RateLimit{Count: count, Window: time.Duration(k) * unit}, nil
}

func loadRateLimits(getenv func(string) string) (RateLimits, error) {
	r := DefaultRateLimits
	switch v := getenv("IP_RATE_LIMIT"); v {
	case "", "1":
	case "0":
		r.Enabled = false
	default:
		return r, fmt.Errorf("config: IP_RATE_LIMIT must be 0 or 1, not %q", v)
	}
	for _, f := range []struct {
		env string
		dst *RateLimit
	}{
		{"RATE_LIMIT_SIGNUP", &r.SignUp}, {"RATE_LIMIT_LOGIN", &r.Login},
		{"RATE_LIMIT_RESEND", &r.Resend}, {"RATE_LIMIT_RESET", &r.Reset},
		{"RATE_LIMIT_CHANGE_EMAIL", &r.ChangeEmail}, {"RATE_LIMIT_CHANGE_EMAIL_USER", &r.ChangeEmailUser},
		{"RATE_LIMIT_MAIL_ADDRESS", &r.MailAddress},
	} {
		if v := getenv(f.env); v != "" {
			l, err := ParseRateLimit(v)
			if err != nil {
				return r, fmt.Errorf("config: %s: %w", f.env, err)
			}
			*f.dst = l
		}
	}
	return r, nil
}
