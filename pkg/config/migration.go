package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Migration configures lazy migration from a legacy system, as Cognito's
// migrate-user trigger does it: a login for an address the service does
// not know is checked by the legacy endpoint, and on a yes the account is
// created from its answer. Off unless MIGRATION_URL is set.
type Migration struct {
	// URL is MIGRATION_URL: https, unless the host is loopback.
	URL string
	// The bearer secret: MIGRATION_TOKEN (local) or the Secrets Manager
	// secret MIGRATION_TOKEN_SECRET_ARN (AWS), read once per cold start.
	Token          string
	TokenSecretARN string
	// Timeout is MIGRATION_TIMEOUT_MS, default 3 s.
	Timeout time.Duration
}

// DefaultMigrationTimeout bounds one call to the legacy endpoint.
const DefaultMigrationTimeout = 3 * time.Second

func loadMigration(getenv func(string) string) (Migration, error) {
	m := Migration{
		URL:            getenv("MIGRATION_URL"),
		Token:          strings.TrimSpace(getenv("MIGRATION_TOKEN")),
		TokenSecretARN: getenv("MIGRATION_TOKEN_SECRET_ARN"),
		Timeout:        DefaultMigrationTimeout,
	}
	if m.URL == "" {
		return Migration{}, nil
	}
	u, err := url.Parse(m.URL)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return m, fmt.Errorf("config: MIGRATION_URL must be an https URL without credentials (http only for a loopback host)")
	}
	// The template's pattern (MigrationUrl); a loopback http one is the
	// local stack's and the tests'.
	if u.Scheme == "https" && !MigrationURLPattern.MatchString(m.URL) {
		return m, fmt.Errorf("config: MIGRATION_URL %q must match %s", m.URL, MigrationURLPattern)
	}
	if !SecretARNPattern.MatchString(m.TokenSecretARN) {
		return m, fmt.Errorf("config: MIGRATION_TOKEN_SECRET_ARN %q must be a Secrets Manager secret ARN", m.TokenSecretARN)
	}
	if m.Token == "" && m.TokenSecretARN == "" {
		return m, fmt.Errorf("config: MIGRATION_URL needs MIGRATION_TOKEN or MIGRATION_TOKEN_SECRET_ARN")
	}
	if v := getenv("MIGRATION_TIMEOUT_MS"); v != "" {
		ms, ok := decimal(v, 4)
		if !ok || time.Duration(ms)*time.Millisecond < MinRemoteTimeout || time.Duration(ms)*time.Millisecond > MaxRemoteTimeout {
			return m, fmt.Errorf("config: MIGRATION_TIMEOUT_MS must be milliseconds between %d and %d", MinRemoteTimeout.Milliseconds(), MaxRemoteTimeout.Milliseconds())
		}
		m.Timeout = time.Duration(ms) * time.Millisecond
	}
	return m, nil
}
