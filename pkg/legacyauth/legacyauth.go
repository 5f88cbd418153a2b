// Package legacyauth owns the client of lazy migration's legacy endpoint:
// an HTTPS endpoint of the system users come from that says whether a
// login and password are good there and, if so, who the user is (Cognito's
// migrate-user trigger, as an HTTP call).
//
// The exchange: POST <MIGRATION_URL> with Authorization: Bearer <secret>
// and {"login": "...", "password": "..."}; the endpoint answers 200
// {"ok": true, "user": {<the user's fields: email, username, first_name,
// ...>}} for a yes, and 200 {"ok": false}, 401, 403 or 404 for a no.
// Anything else is a failure, which the service treats as a no.
package legacyauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/remote"
)

// MaxBody bounds the endpoint's answer.
const MaxBody = 64 << 10

// Client asks the legacy endpoint.
type Client struct {
	url     string
	token   remote.TokenSource
	timeout time.Duration
	http    *http.Client
}

// New builds a client for cfg (validated by config.Load). hc may be nil;
// redirects are never followed, so the password and the secret go only to
// the configured URL.
func New(cfg config.Migration, token remote.TokenSource, hc *http.Client) *Client {
	c := &http.Client{}
	if hc != nil {
		cp := *hc
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t := cfg.Timeout
	if t <= 0 {
		t = config.DefaultMigrationTimeout
	}
	return &Client{url: cfg.URL, token: token, timeout: t, http: c}
}

// Verify asks whether login and password are good on the legacy system:
// the user's fields on a yes, ok false on a no. Errors never carry the
// password or the secret (only the URL and the HTTP status).
func (c *Client) Verify(ctx context.Context, login, password string) (json.RawMessage, bool, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, false, err
	}
	body, err := json.Marshal(map[string]string{"login": login, "password": password})
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, false, fmt.Errorf("legacyauth: building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, false, fmt.Errorf("legacyauth: POST %s: no answer within %s", c.url, c.timeout)
		}
		return nil, false, fmt.Errorf("legacyauth: POST %s: the endpoint could not be reached", c.url)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("legacyauth: POST %s: HTTP %d", c.url, res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, MaxBody+1))
	if err != nil || len(b) > MaxBody {
		return nil, false, fmt.Errorf("legacyauth: POST %s: the answer was cut off or larger than %d bytes", c.url, MaxBody)
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, false, fmt.Errorf("legacyauth: POST %s: the answer is not JSON", c.url)
	}
	var a struct {
		OK   bool            `json:"ok"`
		User json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, false, fmt.Errorf("legacyauth: POST %s: the answer is not the expected JSON object", c.url)
	}
	if !a.OK {
		return nil, false, nil
	}
	if len(a.User) == 0 || a.User[0] != '{' {
		return nil, false, fmt.Errorf("legacyauth: POST %s: a yes without a user object", c.url)
	}
	return a.User, true, nil
}
