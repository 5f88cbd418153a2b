// Package config reads the service's settings from the environment once, at
// cold start, into a typed struct, and fails clearly when one is missing.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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

	LogLevel      slog.Level    // LOG_LEVEL
	TokenLifetime time.Duration // DEFAULT_TOKEN_LIFETIME seconds, default 12 h

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
		MailFrom:            strings.TrimSpace(getenv("MAIL_FROM")),
		PublicURL:           strings.TrimRight(strings.TrimSpace(getenv("PUBLIC_URL")), "/"),
		SupportEmail:        strings.TrimSpace(getenv("SUPPORT_EMAIL")),
		ActivationLinkBase:  strings.TrimSpace(getenv("ACTIVATION_LINK_BASE")),
		ResetLinkBase:       strings.TrimSpace(getenv("RESET_LINK_BASE")),
		EmailChangeLinkBase: strings.TrimSpace(getenv("EMAIL_CHANGE_LINK_BASE")),
		TokenKey:            getenv("TOKEN_KEY"),
		TokenKeySecretARN:   strings.TrimSpace(getenv("TOKEN_KEY_SECRET_ARN")),
		Region:              strings.TrimSpace(getenv("AWS_REGION")),
		DynamoEndpoint:      strings.TrimSpace(getenv("DYNAMODB_ENDPOINT")),
		SESEndpoint:         strings.TrimSpace(getenv("SES_ENDPOINT")),
		S3Endpoint:          strings.TrimSpace(getenv("S3_ENDPOINT")),
		ImagesBucket:        strings.TrimSpace(getenv("IMAGES_BUCKET")),
		TokenLifetime:       12 * time.Hour,
		CountShards:         DefaultCountShards,
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
	if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "") {
		return c, fmt.Errorf("config: PUBLIC_URL %q must be an absolute http(s) URL without query or fragment", c.PublicURL)
	}
	if c.TokenKey != "" && len(c.TokenKey) < 16 {
		return c, errors.New("config: TOKEN_KEY must be at least 16 characters")
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return c, fmt.Errorf("config: LOG_LEVEL %q: %w", v, err)
		}
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
