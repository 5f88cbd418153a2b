package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

// storedSecrets are the secret attributes of a user's item: the password
// hash, the token's hash and sealed copy, and the codes' hashes.
func storedSecrets(item map[string]types.AttributeValue) []string {
	var out []string
	for _, a := range []string{"password_hash", "token_hash", "token_sealed"} {
		if v := attr(item, a); v != "" {
			out = append(out, v)
		}
	}
	for _, a := range []string{"code_activation", "code_reset", "code_email_change"} {
		if c, ok := item[a].(*types.AttributeValueMemberM); ok && attr(c.Value, "hash") != "" {
			out = append(out, attr(c.Value, "hash"))
		}
	}
	return out
}

var (
	longBase64URL = regexp.MustCompile(`[A-Za-z0-9_-]{43,}`)
	hexDigest     = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
)

func TestLogsCarryNoSecrets(t *testing.T) {
	var secrets []string
	keep := func(s ...string) {
		for _, v := range s {
			if v != "" {
				secrets = append(secrets, v, secret.Hash(v))
			}
		}
	}
	// request is a call whose log line is checked; user is the uuid the
	// line must name: "" for none (the call is not the user's), "*" for
	// either (an anonymous call about the account).
	type request struct {
		desc, user string
		resp       *testenv.Resp
	}
	var requests []request
	do := func(desc, user, method, path string, body any, hdr ...string) *testenv.Resp {
		t.Helper()
		r := env.Do(t, method, path, body, hdr...)
		requests = append(requests, request{desc, user, r})
		for i := 0; i+1 < len(hdr); i += 2 {
			if strings.EqualFold(hdr[i], "Authorization") {
				keep(hdr[i+1], strings.SplitN(hdr[i+1], " ", 2)[1])
			}
		}
		return r
	}
	expect := func(r *testenv.Resp, status int) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("got %d %s, want %d", r.Status, r.Body, status)
		}
	}
	item := func(id string) { keep(storedSecrets(userItem(t, id))...) }

	email := testenv.Email("logs")
	password := "lantern-Quartz-5521"
	keep(password)
	r := do("sign-up", "*", "POST", "/api/users", map[string]any{"email": email, "password": password})
	expect(r, http.StatusCreated)
	id := r.Str("uuid")
	item(id)
	code := env.CodeFromMail(t, email, "Activate")
	keep(code)
	expect(do("activate", "*", "POST", "/api/auth/activate", map[string]any{"code": code, "password": password}), http.StatusOK)

	wrong := "lantern-Quartz-5522"
	keep(wrong)
	expect(do("wrong password", "*", "POST", "/api/auth/login", map[string]any{"login": email, "password": wrong}), http.StatusUnauthorized)
	r = do("login", id, "POST", "/api/auth/login", map[string]any{"login": email, "password": password})
	expect(r, http.StatusOK)
	token := r.Str("token")
	keep(token)
	item(id)
	expect(do("me", id, "GET", "/api/users/me", nil, "Authorization", "Token "+token), http.StatusOK)
	expect(do("me, Basic", id, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(email, password)), http.StatusOK)
	expect(do("bad token", "", "GET", "/api/users/me", nil, "Authorization", "Bearer "+token[:40]+"AAAAAAAAAAAAAAAAAAAAAAAA"), http.StatusUnauthorized)

	r = do("refresh", id, "POST", "/api/users/"+id+"/refresh_token", nil, "Authorization", "Token "+token)
	expect(r, http.StatusOK)
	token = r.Str("token")
	keep(token)
	item(id)
	expect(do("get token", id, "GET", "/api/users/"+id+"/token", nil, "Authorization", "Bearer "+token), http.StatusOK)

	newEmail := testenv.Email("logs-new")
	expect(do("change email", id, "POST", "/api/users/"+id+"/change_email", map[string]any{"email": newEmail}, "Authorization", "Token "+token), http.StatusOK)
	item(id)
	code = env.CodeFromMail(t, newEmail, "Confirm your new email")
	keep(code)
	expect(do("confirm email", id, "POST", "/api/users/confirm_email", map[string]any{"code": code}, "Authorization", "Token "+token), http.StatusOK)

	expect(do("reset", "*", "POST", "/api/auth/password_reset", map[string]any{"email": newEmail}), http.StatusAccepted)
	item(id)
	code = env.CodeFromMail(t, newEmail, "Reset your password")
	keep(code)
	password = "harbour-Violet-7730"
	keep(password)
	expect(do("reset confirm", "*", "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": password}), http.StatusOK)
	item(id)

	r = do("login again", id, "POST", "/api/auth/login", map[string]any{"login": newEmail, "password": password})
	expect(r, http.StatusOK)
	token = r.Str("token")
	keep(token)
	next := "meadow-Copper-1184"
	keep(next)
	expect(do("change password", id, "POST", "/api/users/"+id+"/change_password", map[string]any{"current_password": password, "new_password": next}, "Authorization", "Token "+token), http.StatusOK)
	item(id)
	// The change ended the token (a new credential epoch): log in again.
	r = do("login after the change", id, "POST", "/api/auth/login", map[string]any{"login": newEmail, "password": next})
	expect(r, http.StatusOK)
	token = r.Str("token")
	keep(token)
	expect(do("logout", id, "POST", "/api/auth/logout", nil, "Authorization", "Token "+token), http.StatusNoContent)

	logs := env.Logs.String()
	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", l)
		}
		if m["msg"] == "request" {
			lines[m["request_id"].(string)] = m
		}
	}

	t.Run("case=each request has one line with its id, route, status, latency and user", func(t *testing.T) {
		for _, rq := range requests {
			rid := rq.resp.Header.Get("Request-Id")
			l := lines[rid]
			if l == nil {
				t.Errorf("%s: no log line for request %q", rq.desc, rid)
				continue
			}
			lat, ok := l["latency_ms"].(float64)
			if route, _ := l["route"].(string); route == "" || l["status"] != float64(rq.resp.Status) || !ok || lat < 0 {
				t.Errorf("%s: line %v", rq.desc, l)
			}
			got, _ := l["user"].(string)
			if rq.user == "*" && got != "" && got != id {
				t.Errorf("%s: user %q, want none or %s", rq.desc, got, id)
			} else if rq.user != "*" && got != rq.user {
				t.Errorf("%s: user %q, want %q", rq.desc, got, rq.user)
			}
		}
	})

	t.Run("case=no password, token, code, hash or Authorization value is logged", func(t *testing.T) {
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("the log holds a secret: %.12s…", s)
			}
		}
	})

	t.Run("case=nothing in the log looks like a secret", func(t *testing.T) {
		// Every user's stored secrets, whichever test made them.
		for _, it := range scanTable(t) {
			for _, s := range storedSecrets(it) {
				if strings.Contains(logs, s) {
					t.Errorf("the log holds a stored secret of %s", attr(it, "pk"))
				}
			}
		}
		for _, m := range longBase64URL.FindAllString(logs, -1) {
			if _, err := secret.ParseToken(m); err == nil {
				t.Errorf("a token in the log: %.12s…", m)
			}
			if _, err := secret.ParseCode(m); err == nil {
				t.Errorf("a code in the log: %.12s…", m)
			}
		}
		if m := hexDigest.FindString(logs); m != "" {
			t.Errorf("a SHA-256 digest in the log: %.12s…", m)
		}
		for _, s := range []string{"$argon2id$", `"authorization"`, `"Authorization"`, "password_hash", "token_hash", "token_sealed"} {
			if strings.Contains(logs, s) {
				t.Errorf("the log holds %q", s)
			}
		}
	})
}
