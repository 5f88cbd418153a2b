// Package config reads the service's settings from the environment once, at
// cold start, into a typed struct, and fails clearly when one is missing.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is every setting a function reads.
type Config struct {
	TableName string // TABLE_NAME
	MailFrom  string // MAIL_FROM: the SES sender
	// PublicURL is the service's public base URL (PUBLIC_URL): the base of
	// every mailed link and of the user's url. It comes only from
	// configuration (the template's PublicUrl; the local stack its own
	// address); when empty on AWS, the API's own execute-api URL, built from
	// the id API Gateway puts in the event. Never from request headers.
	PublicURL string
	// SupportEmail is where mails tell people to write (SUPPORT_EMAIL);
	// empty means a reply to the mail.
	SupportEmail string
	// Link bases that emailed codes are appended to as ?code=; empty means
	// the API's own route.
	ActivationLinkBase  string // ACTIVATION_LINK_BASE
	ResetLinkBase       string // RESET_LINK_BASE
	EmailChangeLinkBase string // EMAIL_CHANGE_LINK_BASE

	// The token encryption key: TOKEN_KEY (local) or the Secrets Manager
	// secret TOKEN_KEY_SECRET_ARN (AWS), read once per cold start.
	TokenKey          string
	TokenKeySecretARN string

	Region         string // AWS_REGION
	DynamoEndpoint string // DYNAMODB_ENDPOINT: DynamoDB Local
	SESEndpoint    string // SES_ENDPOINT: the local SES
	S3Endpoint     string // S3_ENDPOINT: the local S3 (path-style)
	// ImagesBucket is the S3 bucket of uploaded images (IMAGES_BUCKET);
	// empty = uploads refused.
	ImagesBucket string

	RateLimits RateLimits

	LogLevel slog.Level // LOG_LEVEL
	// MetricsNamespace is the CloudWatch namespace of the EMF metrics
	// (METRICS_NAMESPACE: the stack's name on AWS; empty = UserAccounts).
	MetricsNamespace string
	TokenLifetime    time.Duration // DEFAULT_TOKEN_LIFETIME seconds, default 12 h

	// Remote is the remote identity source of pull_remote_user; its URL is
	// empty when none is configured.
	Remote Remote

	// Migration is the legacy endpoint of lazy migration; its URL is empty
	// when it is off.
	Migration Migration

	// Branding names the product on the pages and in the mails.
	Branding Branding

	// ListScanLimit is how many users GET /api/users may read whole to
	// filter or order them in memory (LIST_SCAN_LIMIT; 0: the default,
	// 20,000); a list that would read more answers 400 asking for a filter
	// answered from an index (docs/LISTING.md).
	ListScanLimit int

	// Events configures the stream's events and the mail's feedback.
	Events Events

	// CountShards is how many items each user list's count is spread over
	// (COUNT_SHARDS, default DefaultCountShards, 1 to MaxCountShards): see
	// docs/LISTING.md. Raise it freely; lowering it drops the counts kept in
	// the shards past the new number.
	CountShards int

	// WordLists: the table's stream keeps the word lists that answer a
	// search of up to 12 letters in 3 requests at any size (WORD_LISTS, 1
	// by default, 0 off: searches then read their matches, and a user's
	// creation writes a few dozen items fewer; docs/LISTING.md).
	WordLists bool
}

// logLevel reads LOG_LEVEL: one of the template's LogLevel values, or
// empty for INFO (slog's own parser also takes "debug" and "INFO+2", which
// the template does not).
func logLevel(v string) (slog.Level, error) {
	switch v {
	case "":
		return slog.LevelInfo, nil
	case "DEBUG", "INFO", "WARN", "ERROR":
		var l slog.Level
		err := l.UnmarshalText([]byte(v))
		return l, err
	}
	return 0, fmt.Errorf("config: LOG_LEVEL %q must be DEBUG, INFO, WARN or ERROR", v)
}

// The user lists' count shards (Config.CountShards).
const (
	DefaultCountShards = 16
	MaxCountShards     = 64
)

// MaxTokenLifetime bounds a user's token_lifetime.
const MaxTokenLifetime = 30 * 24 * time.Hour

// Load parses the environment through getenv (os.Getenv in main).
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		TableName:           strings.TrimSpace(getenv("TABLE_NAME")),
		MailFrom:            getenv("MAIL_FROM"),
		PublicURL:           getenv("PUBLIC_URL"),
		SupportEmail:        getenv("SUPPORT_EMAIL"),
		ActivationLinkBase:  getenv("ACTIVATION_LINK_BASE"),
		ResetLinkBase:       getenv("RESET_LINK_BASE"),
		EmailChangeLinkBase: getenv("EMAIL_CHANGE_LINK_BASE"),
		TokenKey:            getenv("TOKEN_KEY"),
		TokenKeySecretARN:   strings.TrimSpace(getenv("TOKEN_KEY_SECRET_ARN")),
		Region:              strings.TrimSpace(getenv("AWS_REGION")),
		DynamoEndpoint:      strings.TrimSpace(getenv("DYNAMODB_ENDPOINT")),
		SESEndpoint:         strings.TrimSpace(getenv("SES_ENDPOINT")),
		S3Endpoint:          strings.TrimSpace(getenv("S3_ENDPOINT")),
		ImagesBucket:        strings.TrimSpace(getenv("IMAGES_BUCKET")),
		MetricsNamespace:    strings.TrimSpace(getenv("METRICS_NAMESPACE")),
		TokenLifetime:       12 * time.Hour,
		CountShards:         DefaultCountShards,
		WordLists:           true,
	}
	var missing []string
	if c.TableName == "" {
		missing = append(missing, "TABLE_NAME")
	}
	if c.MailFrom == "" {
		missing = append(missing, "MAIL_FROM")
	}
	if c.TokenKey == "" && c.TokenKeySecretARN == "" {
		missing = append(missing, "TOKEN_KEY or TOKEN_KEY_SECRET_ARN")
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("config: missing required environment variable(s): %s", strings.Join(missing, ", "))
	}
	if !MailFromPattern.MatchString(c.MailFrom) {
		return c, fmt.Errorf("config: MAIL_FROM %q must be an address or Name <address> (%s)", c.MailFrom, MailFromPattern)
	}
	for _, u := range []struct {
		name, v string
		re      *regexp.Regexp
	}{
		{"PUBLIC_URL", c.PublicURL, PublicURLPattern},
		{"ACTIVATION_LINK_BASE", c.ActivationLinkBase, LinkPattern},
		{"RESET_LINK_BASE", c.ResetLinkBase, LinkPattern},
		{"EMAIL_CHANGE_LINK_BASE", c.EmailChangeLinkBase, LinkPattern},
	} {
		if err := checkURL(u.name, u.v, u.re); err != nil {
			return c, err
		}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.TokenKey != "" && len(c.TokenKey) < 16 {
		return c, errors.New("config: TOKEN_KEY must be at least 16 characters")
	}
	var err error
	if c.LogLevel, err = logLevel(getenv("LOG_LEVEL")); err != nil {
		return c, err
	}
	rl, err := loadRateLimits(getenv)
	if err != nil {
		return c, err
	}
	c.RateLimits = rl
	if v := getenv("DEFAULT_TOKEN_LIFETIME"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 60 || time.Duration(n)*time.Second > MaxTokenLifetime {
			return c, fmt.Errorf("config: DEFAULT_TOKEN_LIFETIME must be seconds between 60 and %d", int(MaxTokenLifetime.Seconds()))
		}
		c.TokenLifetime = time.Duration(n) * time.Second
	}
	if v := getenv("LIST_SCAN_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, errors.New("config: LIST_SCAN_LIMIT must be a whole number of users, at least 1")
		}
		c.ListScanLimit = n
	}
	if v := getenv("COUNT_SHARDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxCountShards {
			return c, fmt.Errorf("config: COUNT_SHARDS must be a number from 1 to %d", MaxCountShards)
		}
		c.CountShards = n
	}
	switch v := getenv("WORD_LISTS"); v {
	case "", "1":
	case "0":
		c.WordLists = false
	default:
		return c, fmt.Errorf("config: WORD_LISTS must be 0 or 1, not %q", v)
	}
	remote, err := loadRemote(getenv)
	if err != nil {
		return c, err
	}
	c.Remote = remote
	if c.Migration, err = loadMigration(getenv); err != nil {
		return c, err
	}
	if c.Branding, err = loadBranding(getenv); err != nil {
		return c, err
	}
	if c.Events, err = loadEvents(getenv); err != nil {
		return c, err
	}
	return c, nil
}

// Variables lists, sorted, every environment variable Load reads: the
// settings a deployed function's environment must cover (the SAM
// translator test checks template.yaml against it).
func Variables() []string {
	// Valid required settings and a remote source, so that Load reads on
	// to the end, the remote source's settings included.
	probe := map[string]string{"TABLE_NAME": "t", "MAIL_FROM": "a@b.example", "TOKEN_KEY": "0123456789abcdef0123",
		"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "t"}
	seen := map[string]bool{}
	_, _ = Load(func(k string) string {
		seen[k] = true
		return probe[k]
	})
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
