package config

import (
	"fmt"
	"strconv"
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

// ParseRateLimit reads "<count>/<window>".
func ParseRateLimit(s string) (RateLimit, error) {
	n, w, ok := strings.Cut(strings.TrimSpace(s), "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count < 1 {
		return RateLimit{}, fmt.Errorf("rate limit %q: want <count>/<window>, e.g. 60/5m", s)
	}
	d, err := time.ParseDuration(w)
	if err != nil || d < time.Second || d > 24*time.Hour {
		return RateLimit{}, fmt.Errorf("rate limit %q: the window must be a duration from 1s to 24h", s)
	}
	return RateLimit{Count: count, Window: d}, nil
}

func loadRateLimits(getenv func(string) string) (RateLimits, error) {
	r := DefaultRateLimits
	switch v := strings.TrimSpace(getenv("IP_RATE_LIMIT")); v {
	case "", "1", "true", "on":
	case "0", "false", "off":
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
