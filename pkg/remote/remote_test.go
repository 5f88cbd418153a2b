package remote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/remote"
)

const secretToken = "s3cret-bearer-token-do-not-log"

// source is an identity source on a local HTTP server; handle answers every
// request, and each request's path and headers are recorded.
type source struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newSource(t *testing.T, handle http.HandlerFunc) *source {
	t.Helper()
	s := &source{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(context.Background()))
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *source) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func (s *source) client(timeout time.Duration) *remote.Client {
	return remote.New(config.Remote{URL: s.URL + "/userinfo/{username}", Timeout: timeout}, remote.StaticToken(secretToken), nil)
}

func jsonAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func TestUserInfoMapsClaims(t *testing.T) {
	for _, tc := range []struct {
		desc string
		body string
		want remote.Claims
	}{
		{
			desc: "standard claims map to the user object's fields",
			body: `{"sub":"248289761001","given_name":" Grace ","family_name":"Hopper","phone_number":"+1 555 0100",
				"birthdate":"1906-12-09","locale":"en-US","picture":"https://idp.example.org/p/grace.png",
				"email":"grace@navy.mil","email_verified":true,"name":"ignored","preferred_username":"ignored"}`,
			want: remote.Claims{Subject: "248289761001", FirstName: "Grace", LastName: "Hopper", PhoneNumber: "+1 555 0100",
				BirthDate: "1906-12-09", PreferredLanguage: "en-US", Image: "https://idp.example.org/p/grace.png",
				Email: "grace@navy.mil", EmailVerified: true},
		},
		{
			desc: "common non-standard claims map, the first-named winning",
			body: `{"organization":"US Navy","schac_home_organization":"navy.mil","job_title":"Rear Admiral","title":"Dr",
				"native_name":"Грейс Хоппер","eduperson_affiliation":["member"," staff ",""],"affiliations":["other"]}`,
			want: remote.Claims{Organization: "US Navy", JobTitle: "Rear Admiral", NativeName: "Грейс Хоппер",
				Affiliations: []string{"member", "staff"}},
		},
		{
			desc: "fallback names are read when the first is absent",
			body: `{"schac_home_organization":"navy.mil","title":"Dr","affiliations":"faculty"}`,
			want: remote.Claims{Organization: "navy.mil", JobTitle: "Dr", Affiliations: []string{"faculty"}},
		},
		{
			desc: "claims of the wrong type or blank are ignored",
			body: `{"given_name":42,"family_name":"  ","phone_number":null,"eduperson_affiliation":[1,2],"email_verified":"yes"}`,
			want: remote.Claims{},
		},
		{
			desc: "a partial birthdate and a non-http picture are ignored",
			body: `{"birthdate":"0000-12-09","picture":"javascript:alert(1)"}`,
			want: remote.Claims{},
		},
		{
			desc: "a picture a client's image would be refused for is ignored",
			body: `{"picture":"https://user:pw@idp.example.org/p.png","given_name":"Grace"}`,
			want: remote.Claims{FirstName: "Grace"},
		},
		{
			desc: "a relative or non-web picture is ignored",
			body: `{"picture":"/p/grace.png","given_name":"Grace"}`,
			want: remote.Claims{FirstName: "Grace"},
		},
		{
			desc: "a year-only birthdate is ignored",
			body: `{"birthdate":"1906"}`,
			want: remote.Claims{},
		},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			s := newSource(t, jsonAnswer(200, tc.body))
			got, err := s.client(time.Second).UserInfo(context.Background(), "grace")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestUserInfoRequest(t *testing.T) {
	s := newSource(t, jsonAnswer(200, `{"sub":"x"}`))
	t.Run("case=the bearer secret and Accept are sent", func(t *testing.T) {
		if _, err := s.client(time.Second).UserInfo(context.Background(), "grace"); err != nil {
			t.Fatal(err)
		}
		r := s.requests()[len(s.requests())-1]
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+secretToken || r.Header.Get("Accept") != "application/json" {
			t.Fatalf("request %s %v", r.Method, r.Header)
		}
	})
	t.Run("case=the username is path-escaped into the template", func(t *testing.T) {
		if _, err := s.client(time.Second).UserInfo(context.Background(), "a b/c?d#e%f"); err != nil {
			t.Fatal(err)
		}
		r := s.requests()[len(s.requests())-1]
		if got, want := r.URL.EscapedPath(), "/userinfo/a%20b%2Fc%3Fd%23e%25f"; got != want || r.URL.RawQuery != "" {
			t.Fatalf("path %q query %q, want %q", got, r.URL.RawQuery, want)
		}
	})
	t.Run("case=an https source is called with the given client", func(t *testing.T) {
		tls := httptest.NewTLSServer(jsonAnswer(200, `{"given_name":"Grace"}`))
		defer tls.Close()
		c := remote.New(config.Remote{URL: tls.URL + "/u/{username}"}, remote.StaticToken(secretToken), tls.Client())
		got, err := c.UserInfo(context.Background(), "grace")
		if err != nil || got.FirstName != "Grace" {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
}

func TestUserInfoFailures(t *testing.T) {
	big := `{"given_name":"` + strings.Repeat("a", remote.MaxBody) + `"}`
	for _, tc := range []struct {
		desc    string
		handle  http.HandlerFunc
		timeout time.Duration
		status  int
		code    string
		msg     string
	}{
		{desc: "an unknown user is a 404", handle: jsonAnswer(404, `{"error":"not found"}`),
			status: 404, code: "not_found", msg: "The identity source has no such user."},
		{desc: "a 500 is a 502", handle: jsonAnswer(500, `{}`),
			status: 502, code: "bad_gateway", msg: "The identity source failed (HTTP 500)."},
		{desc: "a 503 is a 502", handle: jsonAnswer(503, ``),
			status: 502, code: "bad_gateway", msg: "The identity source failed (HTTP 503)."},
		{desc: "refused credentials are a 502", handle: jsonAnswer(401, `{}`),
			status: 502, code: "bad_gateway", msg: "The identity source refused our credentials (HTTP 401)."},
		{desc: "a redirect is not followed", handle: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example.org/", http.StatusFound)
		}, status: 502, code: "bad_gateway", msg: "The identity source answered with an unexpected HTTP 302."},
		{desc: "a slow source times out", timeout: 50 * time.Millisecond, handle: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, status: 502, code: "bad_gateway", msg: "The identity source did not answer within 50ms."},
		{desc: "bad JSON is a 502", handle: jsonAnswer(200, `{"given_name":`),
			status: 502, code: "bad_gateway", msg: "The identity source's answer is not a JSON object."},
		{desc: "a JSON array is a 502", handle: jsonAnswer(200, `[{"given_name":"Grace"}]`),
			status: 502, code: "bad_gateway", msg: "The identity source's answer is not a JSON object."},
		{desc: "JSON null is a 502", handle: jsonAnswer(200, `null`),
			status: 502, code: "bad_gateway", msg: "The identity source's answer is not a JSON object."},
		{desc: "trailing data is a 502", handle: jsonAnswer(200, `{} {}`),
			status: 502, code: "bad_gateway", msg: "The identity source's answer is not a JSON object."},
		{desc: "HTML is a 502", handle: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login</html>")
		}, status: 502, code: "bad_gateway", msg: "The identity source answered with text/html, not JSON."},
		{desc: "a signed JWT answer is a 502", handle: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/jwt")
			fmt.Fprint(w, "eyJ.eyJ.sig")
		}, status: 502, code: "bad_gateway", msg: "The identity source answered with application/jwt, not JSON."},
		{desc: "an oversized body is a 502", handle: jsonAnswer(200, big),
			status: 502, code: "bad_gateway", msg: "The identity source's answer is larger than 65536 bytes."},
		{desc: "an oversized body without Content-Length is a 502", handle: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for i := 0; i < len(big); i += 4096 {
				fmt.Fprint(w, big[i:min(i+4096, len(big))])
				w.(http.Flusher).Flush()
			}
		}, status: 502, code: "bad_gateway", msg: "The identity source's answer is larger than 65536 bytes."},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			s := newSource(t, tc.handle)
			start := time.Now()
			_, err := s.client(timeout).UserInfo(context.Background(), "grace")
			e, ok := httpapi.AsError(err)
			if !ok || e.Status != tc.status || e.Code != tc.code || e.Message != tc.msg {
				t.Fatalf("got %v, want %d %s %q", err, tc.status, tc.code, tc.msg)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("the error carries the bearer secret: %v", err)
			}
			if tc.timeout > 0 && time.Since(start) > tc.timeout+time.Second {
				t.Errorf("the timeout took %s", time.Since(start))
			}
		})
	}
	t.Run("case=an unknown user is ErrNoSuchUser", func(t *testing.T) {
		s := newSource(t, jsonAnswer(404, ``))
		if _, err := s.client(time.Second).UserInfo(context.Background(), "nobody"); !errors.Is(err, remote.ErrNoSuchUser) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("case=an unreachable source is a 502", func(t *testing.T) {
		s := newSource(t, jsonAnswer(200, `{}`))
		c := s.client(time.Second)
		s.Close()
		_, err := c.UserInfo(context.Background(), "grace")
		if e, ok := httpapi.AsError(err); !ok || e.Status != 502 || e.Message != "The identity source could not be reached." {
			t.Fatalf("got %v", err)
		}
	})
}

// secrets is a Secrets Manager that counts reads and fails while fail is set.
type secrets struct {
	calls int
	fail  bool
}

func (s *secrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.calls++
	if s.fail {
		return nil, errors.New("throttled")
	}
	if aws.ToString(in.SecretId) != "arn:aws:secretsmanager:us-east-1:123456789012:secret:idp" {
		return nil, errors.New("no such secret")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(secretToken + "\n")}, nil
}

func TestSecretToken(t *testing.T) {
	sm := &secrets{fail: true}
	tok := remote.SecretToken(sm, "arn:aws:secretsmanager:us-east-1:123456789012:secret:idp")
	if _, err := tok(context.Background()); err == nil {
		t.Fatal("a failed read returned a token")
	}
	sm.fail = false
	for range 3 {
		got, err := tok(context.Background())
		if err != nil || got != secretToken {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	if sm.calls != 2 {
		t.Errorf("%d reads, want 2: the failure, then one read kept for the cold start", sm.calls)
	}

	t.Run("case=a secret that cannot be read is a 500 without the secret", func(t *testing.T) {
		s := newSource(t, jsonAnswer(200, `{}`))
		c := remote.New(config.Remote{URL: s.URL + "/{username}"}, remote.SecretToken(&secrets{fail: true}, "arn"), nil)
		_, err := c.UserInfo(context.Background(), "grace")
		if e, ok := httpapi.AsError(err); !ok || e.Status != 500 || len(s.requests()) != 0 {
			t.Fatalf("got %v after %d requests", err, len(s.requests()))
		}
	})
}

// TestConfig checks the REMOTE_* settings config.Load validates.
// testSecretARN is a well-formed Secrets Manager ARN (config checks the form).
const testSecretARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:idp-token-AbCdEf"

func TestConfig(t *testing.T) {
	base := map[string]string{"TABLE_NAME": "t", "MAIL_FROM": "a@example.com", "TOKEN_KEY": "0123456789abcdef0123"}
	load := func(extra map[string]string) (config.Config, error) {
		return config.Load(func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		})
	}
	t.Run("case=no URL means no remote source", func(t *testing.T) {
		c, err := load(map[string]string{"REMOTE_IDP_NAME": "ignored"})
		if err != nil || c.Remote != (config.Remote{}) {
			t.Fatalf("got %+v, %v", c.Remote, err)
		}
	})
	t.Run("case=defaults come from the URL", func(t *testing.T) {
		c, err := load(map[string]string{"REMOTE_USERINFO_URL": "https://idp.example.org/userinfo/{username}", "REMOTE_USERINFO_TOKEN_SECRET_ARN": testSecretARN})
		want := config.Remote{URL: "https://idp.example.org/userinfo/{username}", TokenSecretARN: testSecretARN,
			Name: "idp.example.org", Label: "idp.example.org", Timeout: 5 * time.Second}
		if err != nil || c.Remote != want {
			t.Fatalf("got %+v, %v", c.Remote, err)
		}
	})
	t.Run("case=every setting is read", func(t *testing.T) {
		c, err := load(map[string]string{"REMOTE_USERINFO_URL": "http://127.0.0.1:9/{username}", "REMOTE_USERINFO_TOKEN": "tok",
			"REMOTE_IDP_NAME": "eduteams", "REMOTE_IDP_LABEL": "eduTEAMS", "REMOTE_IDP_MANAGEMENT_URL": "https://eduteams.org/profile",
			"REMOTE_USERINFO_TIMEOUT_MS": "250"})
		want := config.Remote{URL: "http://127.0.0.1:9/{username}", Token: "tok", Name: "eduteams", Label: "eduTEAMS",
			ManagementURL: "https://eduteams.org/profile", Timeout: 250 * time.Millisecond}
		if err != nil || c.Remote != want {
			t.Fatalf("got %+v, %v", c.Remote, err)
		}
	})
	for _, tc := range []struct {
		desc string
		env  map[string]string
		ok   bool
	}{
		{"plain http to a remote host is refused", map[string]string{"REMOTE_USERINFO_URL": "http://idp.example.org/{username}"}, false},
		{"plain http to localhost is allowed", map[string]string{"REMOTE_USERINFO_URL": "http://localhost:8080/{username}"}, true},
		{"plain http to ::1 is allowed", map[string]string{"REMOTE_USERINFO_URL": "http://[::1]:8080/{username}"}, true},
		{"a URL without {username} is refused", map[string]string{"REMOTE_USERINFO_URL": "https://idp.example.org/userinfo"}, false},
		{"a relative URL is refused", map[string]string{"REMOTE_USERINFO_URL": "/userinfo/{username}"}, false},
		{"credentials in the URL are refused", map[string]string{"REMOTE_USERINFO_URL": "https://u:p@idp.example.org/{username}"}, false},
		{"another scheme is refused", map[string]string{"REMOTE_USERINFO_URL": "ftp://idp.example.org/{username}"}, false},
		{"a URL without a secret is refused", map[string]string{"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": ""}, false},
		{"a zero timeout is refused", map[string]string{"REMOTE_USERINFO_TIMEOUT_MS": "0"}, false},
		{"a timeout past the functions' timeout is refused", map[string]string{"REMOTE_USERINFO_TIMEOUT_MS": "9001"}, false},
		{"a management URL that is not http(s) is refused", map[string]string{"REMOTE_IDP_MANAGEMENT_URL": "javascript:x"}, false},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			env := map[string]string{"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "tok"}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := load(env)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), "REMOTE_") || strings.Contains(err.Error(), "tok\"")) {
				t.Errorf("the error should name the setting: %v", err)
			}
		})
	}
}
