package pages

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// Cookie names. On https the __Host- prefix pins a cookie to this host and
// path /, so no sibling domain can plant one; a local http stack cannot
// use the prefix (it requires Secure).
const (
	sessionCookie = "session"
	nonceCookie   = "csrf"
	hostPrefix    = "__Host-"
)

// request is one page request with what the pages derive from it.
type request struct {
	*httpapi.Request
	cookies map[string]string
	// nonce is the pre-session value the form tokens are bound to; fresh
	// when the browser had none (then set on the answer).
	nonce      string
	newNonce   bool
	principal  *users.Principal
	setCookies []string
	// secure is whether cookies get Secure (and the __Host- prefix):
	// always, except for a local stack on plain http at the loopback.
	secure bool
	form   url.Values
}

func (p *Pages) newRequest(ctx context.Context, r *httpapi.Request) *request {
	pub := p.Users.PublicURL(ctx)
	rq := &request{Request: r, cookies: map[string]string{},
		secure: !(strings.HasPrefix(pub, "http://127.0.0.1") || strings.HasPrefix(pub, "http://localhost"))}
	for _, c := range r.Event.Cookies {
		name, value, ok := strings.Cut(strings.TrimSpace(c), "=")
		if ok {
			rq.cookies[name] = value
		}
	}
	if h := r.Header("cookie"); h != "" { // events from other sources keep the header
		for _, c := range strings.Split(h, ";") {
			if name, value, ok := strings.Cut(strings.TrimSpace(c), "="); ok {
				if _, seen := rq.cookies[name]; !seen {
					rq.cookies[name] = value
				}
			}
		}
	}
	rq.nonce = rq.cookies[rq.cookieName(nonceCookie)]
	if len(rq.nonce) < 16 || len(rq.nonce) > 64 {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		rq.nonce = base64.RawURLEncoding.EncodeToString(b)
		rq.newNonce = true
	}
	if tok := rq.cookies[rq.cookieName(sessionCookie)]; tok != "" && len(tok) < 200 {
		if pr, err := p.Users.Authenticate(ctx, "Token "+tok); err == nil {
			rq.principal = pr
		}
	}
	return rq
}

func (rq *request) cookieName(name string) string {
	if rq.secure {
		return hostPrefix + name
	}
	return name
}

// cookie is a Set-Cookie value; maxAge < 0 deletes it.
func (rq *request) cookie(name, value string, maxAge int, sameSite string) string {
	c := rq.cookieName(name) + "=" + value + "; Path=/; HttpOnly; SameSite=" + sameSite
	if rq.secure {
		c += "; Secure"
	}
	switch {
	case maxAge > 0:
		c += "; Max-Age=" + strconv.Itoa(maxAge)
	case maxAge < 0:
		c += "; Max-Age=0"
	}
	return c
}

// startSession keeps the token in an HttpOnly, SameSite=Strict cookie
// until it expires.
func (p *Pages) startSession(rq *request, token string, expires time.Time) {
	age := int(time.Until(expires).Seconds())
	if age < 1 {
		age = 1
	}
	rq.setCookies = append(rq.setCookies, rq.cookie(sessionCookie, token, age, "Strict"))
}

func (p *Pages) endSession(rq *request) {
	rq.setCookies = append(rq.setCookies, rq.cookie(sessionCookie, "", -1, "Strict"))
	rq.principal = nil
}

// formToken is the token of form for this browser: an HMAC, under a key
// derived from the token key, of the form's name, the browser's nonce and
// its session (if any), so a token is worth nothing in another browser, for
// another form or after logging in or out.
func formToken(key []byte, form, nonce, session string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("form\x00" + form + "\x00" + nonce + "\x00" + session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (rq *request) sessionToken() string {
	if rq.principal == nil {
		return ""
	}
	return rq.principal.Token
}

// csrf returns the token maker for rq's forms.
func (p *Pages) csrf(ctx context.Context, rq *request) (func(string) string, error) {
	key, err := p.Users.FormKey(ctx)
	if err != nil {
		return nil, err
	}
	session := rq.sessionToken()
	return func(form string) string { return formToken(key, form, rq.nonce, session) }, nil
}

// checkForm verifies a posted form's token. With Referrer-Policy
// no-referrer, Chromium sends Origin: null on the pages' own posts, so
// the Origin cannot tell; the token can. Sec-Fetch-Site, where the browser
// sends it, refuses cross-site posts before any work.
func (p *Pages) checkForm(ctx context.Context, rq *request, form, posted string) (bool, error) {
	if rq.Header("sec-fetch-site") == "cross-site" || rq.newNonce || posted == "" {
		return false, nil
	}
	key, err := p.Users.FormKey(ctx)
	if err != nil {
		return false, err
	}
	want := formToken(key, form, rq.nonce, rq.sessionToken())
	return hmac.Equal([]byte(want), []byte(posted)), nil
}

// answer adds the cookies the request set to its response.
func (p *Pages) answer(rq *request, r *httpapi.Response) *httpapi.Response {
	if rq.newNonce {
		// Lax: a link opened from a mail must keep the browser's nonce.
		r.Cookies = append(r.Cookies, rq.cookie(nonceCookie, rq.nonce, 0, "Lax"))
	}
	r.Cookies = append(r.Cookies, rq.setCookies...)
	return r
}
