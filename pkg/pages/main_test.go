package pages_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/openapitest"
	"github.com/example/accounts/pkg/testenv"
)

// env is the whole service (API and pages) on DynamoDB Local and the local SES.
var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{Env: map[string]string{
		"PRODUCT_NAME": "Acme ID", "SUPPORT_EMAIL": "help@acme.example", "ACCENT_COLOR": "#7a1fa2",
	}, Record: true})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 && runsWholeSuite() {
		// The pages' policy against what this suite made them do.
		if problems := testenv.CheckIAMPolicies(env, func(id string) bool { return id == "PagesFunction" }); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: the PagesFunction policy in template.yaml does not match what the pages do:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			code = 1
		}
	}
	if code == 0 {
		// The pages' requests and answers against api/openapi.yaml.
		if c, err := openapitest.NewChecker(context.Background(), env.URL); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		} else if problems := c.Check(context.Background(), env.Exchanges.All()); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: the pages' requests and answers do not match api/openapi.yaml:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			code = 1
		}
	}
	env.Close()
	os.Exit(code)
}

func runsWholeSuite() bool {
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() == ""
}

// browser is a person's browser: its own cookies, following redirects.
type browser struct {
	t      *testing.T
	c      *http.Client
	lang   string
	header map[string]string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}, lang: "en-GB,en;q=0.8"}
}

// page is an answer as the browser shows it.
type page struct {
	Status int
	URL    *url.URL
	Header http.Header
	Body   string
}

func (b *browser) do(method, target string, form url.Values) *page {
	b.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = env.URL + target
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept-Language", b.lang)
	for k, v := range b.header {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return &page{Status: res.StatusCode, URL: res.Request.URL, Header: res.Header, Body: string(raw)}
}

func (b *browser) get(path string) *page { b.t.Helper(); return b.do("GET", path, nil) }

var formPattern = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)">(.*?)</form>`)
var hiddenPattern = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// submit fills the form posting to action on p and sends it, as a person
// pressing its button does: the hidden fields (token, code) as the page
// holds them, plus fields.
func (b *browser) submit(p *page, action string, fields map[string]string) *page {
	b.t.Helper()
	for _, m := range formPattern.FindAllStringSubmatch(p.Body, -1) {
		if m[1] != action {
			continue
		}
		form := url.Values{}
		for _, h := range hiddenPattern.FindAllStringSubmatch(m[2], -1) {
			form.Set(h[1], unescape(h[2]))
		}
		for k, v := range fields {
			form.Set(k, v)
		}
		target := p.URL.ResolveReference(&url.URL{Path: action})
		return b.do("POST", target.String(), form)
	}
	b.t.Fatalf("no form posting to %q on %s:\n%s", action, p.URL, p.Body)
	return nil
}

func unescape(s string) string {
	return strings.NewReplacer("&#43;", "+", "&#34;", `"`, "&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(s)
}

// wantPage checks the status and the page's path, and that the body says
// each of says.
func wantPage(t *testing.T, p *page, status int, path string, says ...string) {
	t.Helper()
	if p.Status != status || p.URL.Path != path {
		t.Fatalf("got %d at %s, want %d at %s:\n%s", p.Status, p.URL, status, path, p.Body)
	}
	for _, s := range says {
		if !strings.Contains(p.Body, s) {
			t.Fatalf("the page at %s does not say %q:\n%s", p.URL, s, p.Body)
		}
	}
}

// linkFromMail waits for the mail to `to` with subject and returns the
// link in it, as a person clicks it.
func linkFromMail(t *testing.T, to, subject string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := env.Inbox.WaitFor(ctx, to, func(m localstack.Mail) bool { return strings.Contains(m.Subject, subject) })
	if err != nil {
		t.Fatalf("no mail %q to %s: %v", subject, to, err)
	}
	link := regexp.MustCompile(`https?://\S+\?code=[A-Za-z0-9_-]+`).FindString(m.Text)
	if link == "" {
		t.Fatalf("mail %q has no link: %q", subject, m.Text)
	}
	return link
}

func regexpAll(pattern, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}
