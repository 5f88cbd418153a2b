package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Remote configures the remote identity source (an OIDC UserInfo-style
// HTTPS endpoint).
type Remote struct {
	// URL is REMOTE_USERINFO_URL: a template holding {username}, https
	// unless the host is loopback.
	URL string
	// The bearer secret: REMOTE_USERINFO_TOKEN (local) or the Secrets
	// Manager secret REMOTE_USERINFO_TOKEN_SECRET_ARN (AWS), read once.
	Token          string
	TokenSecretARN string
	// The provider as users see it: REMOTE_IDP_NAME (default: the URL's
	// host), REMOTE_IDP_LABEL (default: the name), REMOTE_IDP_MANAGEMENT_URL.
	Name          string
	Label         string
	ManagementURL string
	// Timeout is REMOTE_USERINFO_TIMEOUT_MS, default 5 s.
	Timeout time.Duration
}

// DefaultRemoteTimeout bounds one call to the remote identity source.
const DefaultRemoteTimeout = 5 * time.Second

// The bounds of REMOTE_USERINFO_TIMEOUT_MS: the call must end within the
// functions' 10 s timeout.
const (
	MinRemoteTimeout = 100 * time.Millisecond
	MaxRemoteTimeout = 9 * time.Second
)

// loadRemote reads the REMOTE_* settings. Without REMOTE_USERINFO_URL there
// is no remote identity source and the others are ignored.
func loadRemote(getenv func(string) string) (Remote, error) {
	r := Remote{
		URL:            getenv("REMOTE_USERINFO_URL"),
		Token:          strings.TrimSpace(getenv("REMOTE_USERINFO_TOKEN")),
		TokenSecretARN: getenv("REMOTE_USERINFO_TOKEN_SECRET_ARN"),
		Name:           strings.TrimSpace(getenv("REMOTE_IDP_NAME")),
		Label:          strings.TrimSpace(getenv("REMOTE_IDP_LABEL")),
		ManagementURL:  getenv("REMOTE_IDP_MANAGEMENT_URL"),
		Timeout:        DefaultRemoteTimeout,
	}
	if r.URL == "" {
		return Remote{}, nil
	}
	host, err := checkRemoteURL(r.URL)
	if err != nil {
		return r, err
	}
	if !SecretARNPattern.MatchString(r.TokenSecretARN) {
		return r, fmt.Errorf("config: REMOTE_USERINFO_TOKEN_SECRET_ARN %q must be a Secrets Manager secret ARN", r.TokenSecretARN)
	}
	if r.Token == "" && r.TokenSecretARN == "" {
		return r, fmt.Errorf("config: REMOTE_USERINFO_URL needs REMOTE_USERINFO_TOKEN or REMOTE_USERINFO_TOKEN_SECRET_ARN")
	}
	if r.Name == "" {
		r.Name = host
	}
	if r.Label == "" {
		r.Label = r.Name
	}
	if err := checkURL("REMOTE_IDP_MANAGEMENT_URL", r.ManagementURL, LinkPattern); err != nil {
		return r, err
	}
	if v := getenv("REMOTE_USERINFO_TIMEOUT_MS"); v != "" {
		ms, ok := decimal(v, 4)
		if !ok || time.Duration(ms)*time.Millisecond < MinRemoteTimeout || time.Duration(ms)*time.Millisecond > MaxRemoteTimeout {
			return r, fmt.Errorf("config: REMOTE_USERINFO_TIMEOUT_MS must be milliseconds between %d and %d", MinRemoteTimeout.Milliseconds(), MaxRemoteTimeout.Milliseconds())
		}
		r.Timeout = time.Duration(ms) * time.Millisecond
	}
	return r, nil
}

// checkRemoteURL validates the URL template and returns its host: it holds
// {username} once, and is https (RemoteURLPattern, the template's pattern)
// unless the host is loopback (the local stack's only), so the bearer
// secret never crosses a network in clear.
func checkRemoteURL(tpl string) (string, error) {
	if strings.Count(tpl, "{username}") != 1 {
		return "", fmt.Errorf("config: REMOTE_USERINFO_URL must contain {username} once")
	}
	u, err := url.Parse(strings.ReplaceAll(tpl, "{username}", "x"))
	if err != nil || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("config: REMOTE_USERINFO_URL is not an absolute URL without credentials")
	}
	switch u.Scheme {
	case "https":
		if !RemoteURLPattern.MatchString(tpl) {
			return "", fmt.Errorf("config: REMOTE_USERINFO_URL %q must match %s", tpl, RemoteURLPattern)
		}
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("config: REMOTE_USERINFO_URL must be https (http only for a loopback host)")
		}
	default:
		return "", fmt.Errorf("config: REMOTE_USERINFO_URL must be https (http only for a loopback host)")
	}
	return u.Hostname(), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
