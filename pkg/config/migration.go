package config

import (
	"fmt"
	"net/url"
	"strconv"
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
		URL:            strings.TrimSpace(getenv("MIGRATION_URL")),
		Token:          strings.TrimSpace(getenv("MIGRATION_TOKEN")),
		TokenSecretARN: strings.TrimSpace(getenv("MIGRATION_TOKEN_SECRET_ARN")),
		Timeout:        DefaultMigrationTimeout,
	}
	if m.URL == "" {
		return Migration{}, nil
	}
	u, err := url.Parse(m.URL)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return m, fmt.Errorf("config: MIGRATION_URL must be an https URL without credentials (http only for a loopback host)")
	}
	if m.Token == "" && m.TokenSecretARN == "" {
		return m, fmt.Errorf("config: MIGRATION_URL needs MIGRATION_TOKEN or MIGRATION_TOKEN_SECRET_ARN")
	}
	if v := strings.TrimSpace(getenv("MIGRATION_TIMEOUT_MS")); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 1 || time.Duration(ms)*time.Millisecond > MaxRemoteTimeout {
			return m, fmt.Errorf("config: MIGRATION_TIMEOUT_MS must be milliseconds between 1 and %d", MaxRemoteTimeout.Milliseconds())
		}
		m.Timeout = time.Duration(ms) * time.Millisecond
	}
	return m, nil
}
