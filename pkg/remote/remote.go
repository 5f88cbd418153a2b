// Package remote owns the client of the remote identity source: an HTTPS
// endpoint, configured by environment, that answers OIDC UserInfo-style
// claims about a username, and the mapping of those claims onto the user
// object's field names.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
)

// MaxBody bounds the identity source's answer.
const MaxBody = 64 << 10

// ErrNoSuchUser is the answer when the identity source does not know the user.
var ErrNoSuchUser = httpapi.NotFound("The identity source has no such user.")

// Claims is what the identity source says about a user, already in the user
// object's field names; an empty value means the source did not say.
// Lengths and formats are checked by whoever stores them (users.PullRemote).
type Claims struct {
	Subject           string // sub: the stable id an account is linked to (users.PullRemote)
	FirstName         string // given_name
	LastName          string // family_name
	NativeName        string // native_name
	JobTitle          string // job_title, title
	PhoneNumber       string // phone_number
	Organization      string // organization, schac_home_organization
	PreferredLanguage string // locale
	BirthDate         string // birthdate, only a full YYYY-MM-DD
	Image             string // picture, only an http(s) URL
	Affiliations      []string
	// Email and EmailVerified are reported, never applied: the email is the
	// login and is unique, so it changes only through change_email.
	Email         string
	EmailVerified bool
}

// TokenSource returns the bearer secret.
type TokenSource func(context.Context) (string, error)

// StaticToken is a bearer secret given in the environment (local runs).
func StaticToken(tok string) TokenSource {
	return func(context.Context) (string, error) { return tok, nil }
}

// SecretGetter is the part of the Secrets Manager client SecretToken uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ SecretGetter = (*secretsmanager.Client)(nil)

// SecretToken reads the bearer secret from a Secrets Manager secret (its
// string value, trimmed) on first use and keeps it for the cold start; a
// failed read is tried again by the next request.
func SecretToken(sm SecretGetter, arn string) TokenSource {
	var (
		mu  sync.Mutex
		tok string
	)
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok != "" {
			return tok, nil
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", fmt.Errorf("remote: reading the identity source's secret: %w", err)
		}
		v := strings.TrimSpace(aws.ToString(out.SecretString))
		if v == "" {
			return "", errors.New("remote: the identity source's secret has no string value")
		}
		tok = v
		return tok, nil
	}
}

// Client asks the identity source about users.
type Client struct {
	url     string
	token   TokenSource
	timeout time.Duration
	http    *http.Client
}

// New builds a client for cfg (validated by config.Load). hc may be nil;
// either way redirects are not followed, so the bearer secret goes only to
// the configured host.
func New(cfg config.Remote, token TokenSource, hc *http.Client) *Client {
	c := &http.Client{}
	if hc != nil {
		cp := *hc
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = config.DefaultRemoteTimeout
	}
	return &Client{url: cfg.URL, token: token, timeout: timeout, http: c}
}

// UserInfo asks the identity source about username. Errors are the
// contract's: ErrNoSuchUser (404) when the source does not know the user,
// a 502 bad_gateway with a sentence saying what went wrong otherwise.
// Neither the errors nor their causes carry the bearer secret.
func (c *Client) UserInfo(ctx context.Context, username string) (Claims, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return Claims{}, httpapi.Internal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := strings.ReplaceAll(c.url, "{username}", url.PathEscape(username))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Claims{}, httpapi.Internal(fmt.Errorf("remote: building the request: %w", err))
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return Claims{}, c.transportError(ctx, err)
	}
	defer res.Body.Close()
	cause := fmt.Errorf("remote: GET %s: HTTP %d", u, res.StatusCode)
	switch {
	case res.StatusCode == http.StatusOK:
	case res.StatusCode == http.StatusNotFound:
		return Claims{}, ErrNoSuchUser
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		return Claims{}, httpapi.BadGateway(fmt.Sprintf("The identity source refused our credentials (HTTP %d).", res.StatusCode), cause)
	case res.StatusCode >= 500:
		return Claims{}, httpapi.BadGateway(fmt.Sprintf("The identity source failed (HTTP %d).", res.StatusCode), cause)
	default:
		return Claims{}, httpapi.BadGateway(fmt.Sprintf("The identity source answered with an unexpected HTTP %d.", res.StatusCode), cause)
	}
	if res.ContentLength > MaxBody {
		return Claims{}, tooLarge(cause)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxBody+1))
	if err != nil {
		return Claims{}, c.transportError(ctx, err)
	}
	if len(body) > MaxBody {
		return Claims{}, tooLarge(cause)
	}
	ct := res.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		if ct == "" {
			ct = "no content type"
		}
		return Claims{}, httpapi.BadGateway(fmt.Sprintf("The identity source answered with %s, not JSON.", ct), cause)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return Claims{}, httpapi.BadGateway("The identity source's answer is not a JSON object.", fmt.Errorf("%w: %v", cause, err))
	}
	return Map(raw), nil
}

func tooLarge(cause error) error {
	return httpapi.BadGateway(fmt.Sprintf("The identity source's answer is larger than %d bytes.", MaxBody), cause)
}

// transportError is the answer when the exchange itself failed: a timeout,
// or a source that cannot be reached or cut its answer off.
func (c *Client) transportError(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return httpapi.BadGateway(fmt.Sprintf("The identity source did not answer within %s.", c.timeout), err)
	}
	return httpapi.BadGateway("The identity source could not be reached.", err)
}

// Map reads the claims the service uses from a UserInfo answer: the OIDC
// standard claims and a few common non-standard ones. A claim of the wrong
// JSON type is ignored, as if absent.
func Map(raw map[string]json.RawMessage) Claims {
	c := Claims{
		Subject:           str(raw, "sub"),
		FirstName:         str(raw, "given_name"),
		LastName:          str(raw, "family_name"),
		NativeName:        str(raw, "native_name"),
		JobTitle:          str(raw, "job_title", "title"),
		PhoneNumber:       str(raw, "phone_number"),
		Organization:      str(raw, "organization", "schac_home_organization"),
		PreferredLanguage: str(raw, "locale"),
		BirthDate:         birthDate(str(raw, "birthdate")),
		Image:             httpURL(str(raw, "picture")),
		Affiliations:      list(raw, "eduperson_affiliation", "affiliations"),
		Email:             str(raw, "email"),
	}
	_ = json.Unmarshal(raw["email_verified"], &c.EmailVerified)
	return c
}

// str is the first of the named claims that is a non-blank string.
func str(raw map[string]json.RawMessage, names ...string) string {
	for _, n := range names {
		var s string
		if json.Unmarshal(raw[n], &s) == nil && strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// list is the first of the named claims that is a string or an array of
// strings with a non-blank entry.
func list(raw map[string]json.RawMessage, names ...string) []string {
	for _, n := range names {
		var l []string
		if json.Unmarshal(raw[n], &l) != nil {
			if s := str(raw, n); s != "" {
				l = []string{s}
			}
		}
		var out []string
		for _, s := range l {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// birthDate keeps an OIDC birthdate only when it is a full date: the
// standard lets a source send just the year, or 0000 for a withheld year.
func birthDate(s string) string {
	if len(s) != len("2006-01-02") || strings.HasPrefix(s, "0000") {
		return ""
	}
	return s
}

// httpURL keeps a link the service will show (httpapi.WebURLProblem, the
// check a client's image goes through too); anything else (javascript:,
// data:, credentials in the URL) is not a picture the service will show.
func httpURL(s string) string {
	if httpapi.WebURLProblem(s) != "" {
		return ""
	}
	return s
}
