package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/example/accounts/pkg/config"
)

// parameter is one entry of template.yaml's Parameters, with the
// environment variables whose value is a !Ref to it.
type parameter struct {
	Name           string
	Type           string
	Default        *string
	AllowedPattern string
	AllowedValues  []string
	MinValue       *float64
	MaxValue       *float64
	Env            []string
}

// templateParameters reads the parameters and, from every Environment.Variables
// mapping of the template (Globals and each resource), which variables
// they reach.
func templateParameters(t *testing.T) map[string]*parameter {
	t.Helper()
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Parameters map[string]struct {
			Type           string   `yaml:"Type"`
			Default        *string  `yaml:"Default"`
			AllowedPattern string   `yaml:"AllowedPattern"`
			AllowedValues  []string `yaml:"AllowedValues"`
			MinValue       *float64 `yaml:"MinValue"`
			MaxValue       *float64 `yaml:"MaxValue"`
		} `yaml:"Parameters"`
	}
	if err := doc.Decode(&tpl); err != nil {
		t.Fatal(err)
	}
	params := map[string]*parameter{}
	for name, p := range tpl.Parameters {
		params[name] = &parameter{Name: name, Type: p.Type, Default: p.Default, AllowedPattern: p.AllowedPattern,
			AllowedValues: p.AllowedValues, MinValue: p.MinValue, MaxValue: p.MaxValue}
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "Variables" && n.Content[i+1].Kind == yaml.MappingNode {
					vars := n.Content[i+1]
					for j := 0; j+1 < len(vars.Content); j += 2 {
						v := vars.Content[j+1]
						if v.Tag == "!Ref" {
							if p, ok := params[v.Value]; ok {
								p.Env = append(p.Env, vars.Content[j].Value)
							}
						}
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	return params
}

// accepts is whether CloudFormation takes v for p, with match deciding
// AllowedPattern.
func (p *parameter) accepts(v string, match func(pattern, v string) bool) bool {
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
		return false
	}
	if p.Type == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || (p.MinValue != nil && f < *p.MinValue) || (p.MaxValue != nil && f > *p.MaxValue) {
			return false
		}
	}
	return p.AllowedPattern == "" || match(p.AllowedPattern, v)
}

// templateOnly are the parameters that reach no function's environment (the
// template itself uses them), with why; CloudFormation checks them against
// its own rules, so they need no agreement with pkg/config.
var templateOnly = map[string]string{
	"LogRetentionInDays": "the log groups' retention",
	"AlarmTopicArn":      "where the alarms notify",
	"EventBus":           "whether the stack creates a bus (CreateEventBus); the functions get the bus's name",
}

// sample is a value of a parameter and whether both the template and the
// code must take it.
type sample struct {
	v  string
	ok bool
}

func ok(vs ...string) []sample  { return samples(true, vs) }
func bad(vs ...string) []sample { return samples(false, vs) }
func samples(want bool, vs []string) []sample {
	var out []sample
	for _, v := range vs {
		out = append(out, sample{v, want})
	}
	return out
}

func join(ss ...[]sample) []sample { return slices.Concat(ss...) }

var (
	rateLimitSamples = join(
		ok("20/1h", "60/5m", "5/15m", "1/1s", "999999999/24h", "5/86400s", "5/1440m", "3/24h", "1000000/1h"),
		bad("0/1h", "5/0s", "5/25h", "5/86401s", "5/1441m", "05/1h", "5/01h", "+5/1h", "-1/1h", "5/-1h",
			"5/1h30m", "5/1.5h", "5/1d", "5/300ms", "5/h", "/1h", "5/", "5", "1000000000/1h", " 5/1h", "5/1h ", "5 /1h", "5/1H"),
	)
	linkSamples = join(
		ok("", "https://app.example.com/activate", "https://app.example.com/activate?lang=en&x=1",
			"http://127.0.0.1:3000/account/activate", "https://app.example.com/a%20b", "https://app.example.com"),
		bad("https://app.example.com/#/activate", "https://app.example.com/a%zz", "javascript:alert(1)",
			`https://app.example.com/a"b`, "https://app.example.com/a b", "app.example.com/activate",
			"https://user@app.example.com/", "https://[::1]/", "https://app.example.com:123456/", " https://app.example.com"),
	)
	localPart = strings.Repeat("é", 60)
)

// parameterSamples are, per template parameter, values with edge cases on
// both sides of what is accepted. Each parameter's Default is a sample too.
var parameterSamples = map[string][]sample{
	"SenderEmail": join(
		ok("no-reply@example.com", "Acme ID <no-reply@example.com>", "Société Générale <no-reply@sg.example>",
			"O'Brien & Co. <a.b+c@mail.example.co.uk>", strings.Repeat("n", 64)+" <a@b.example>", "é <a@b.example>"),
		bad("", "no-reply", "no-reply@localhost", "<no-reply@example.com>", "Acme <no-reply@example.com",
			"Acme<no-reply@example.com>", " Acme <a@b.example>", "Acme  <a@b.example>", `"Acme" <a@b.example>`,
			"a@b.example\n", "a\x0Bb@c.example", "Acme\x0B <a@b.example>", strings.Repeat("n", 65)+" <a@b.example>",
			"élise@example.com", "a@b.example ", "Ann <a@b.example>, Bob <c@d.example>", "a@@b.example", "a@b..example"),
	),
	"SupportEmail": join(
		ok("", "help@example.com", "help+accounts@support.example.org"),
		bad("Help <help@example.com>", "help@example", " help@example.com", "help@example.com\t", "a\x0Bb@example.com"),
	),
	"PublicUrl": join(
		ok("", "https://accounts.example.com", "https://accounts.example.com/", "http://127.0.0.1:3000",
			"https://example.com/base/path", "https://example.com/a%20b"),
		bad("https://example.com?x=1", "https://example.com/#f", "https://user@example.com", "ftp://example.com",
			"https://", "https://example.com/%zz", "https://exa mple.com", "accounts.example.com", "https://example.com/a\x0Bb",
			"https://[::1]/", "https://example.com:123456"),
	),
	"ActivationLinkBase":     linkSamples,
	"ResetLinkBase":          linkSamples,
	"EmailChangeLinkBase":    linkSamples,
	"RemoteIdpManagementUrl": linkSamples,
	"LogoUrl": join(
		ok("", "https://cdn.example.com/logo.svg", "https://cdn.example.com/logo.svg?v=2", "https://cdn.example.com:8443/l.png"),
		bad("http://cdn.example.com/logo.svg", `https://x.example/a"b`, "https://x.example/%zz", "https://x.example/a'b",
			`https://x.example/a\b`, "https://x.example/a#b", "//x.example/logo.svg", "https://x.example/a\x0Bb"),
	),
	"AccentColor": join(
		ok("", "#00AA33", "#0b5cad"),
		bad("red", "#0b5cad0", "0b5cad", "#0B5CAG", "#0b5"),
	),
	"ProductName": join(
		ok("", "Acme ID", "Société Générale ID", localPart, strings.Repeat("😀", 60), " x "),
		bad(strings.Repeat("x", 61), localPart+"é", "<b>x</b>", "a\nb", "a\x7Fb", "a\x0Bb"),
	),
	"LogLevel": join(
		ok("DEBUG", "INFO", "WARN", "ERROR"),
		bad("debug", "INFO+2", "TRACE", " INFO", "WARNING"),
	),
	"IpRateLimit": join(
		ok("0", "1"),
		bad("true", "off", "2", " 1"),
	),
	"WordLists": join(
		ok("0", "1"),
		bad("true", "off", "2", " 1"),
	),
	"SignUpRateLimit":          rateLimitSamples,
	"LoginRateLimit":           rateLimitSamples,
	"ResendRateLimit":          rateLimitSamples,
	"ResetRateLimit":           rateLimitSamples,
	"ChangeEmailRateLimit":     rateLimitSamples,
	"ChangeEmailUserRateLimit": rateLimitSamples,
	"MailAddressRateLimit":     rateLimitSamples,
	"RemoteUserInfoUrl": join(
		ok("", "https://idp.example.org/userinfo/{username}", "https://idp.example.org/u?name={username}",
			"https://idp.example.org:8443/{username}/info"),
		bad("https://idp.example.org/userinfo", "http://idp.example.org/{username}", "https://u:p@idp.example.org/{username}",
			"https://idp.example.org/{username}/{username}", "https://{username}.idp.example.org/",
			"https://idp.example.org{username}", "https://idp.example.org/{user}", "https://idp.example.org/{username}#x",
			"ftp://idp.example.org/{username}", "https://idp.example.org/%zz/{username}"),
	),
	"RemoteUserInfoTokenSecretArn": join(
		ok("", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:idp-token-AbCdEf",
			"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a/b-c"),
		bad("arn:x", "arn:aws:ssm:eu-west-1:123456789012:parameter/x", "arn:aws:secretsmanager:eu-west-1:12345:secret:x",
			"idp-token", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x y"),
	),
	"RemoteIdpName":  ok("", "eduteams", "eduTEAMS <x>", " spaced "),
	"RemoteIdpLabel": ok("", "eduTEAMS", "Mein Anbieter"),
	"RemoteUserInfoTimeoutMs": join(
		ok("100", "250", "5000", "9000"),
		bad("99", "9001", "0", "1e3", "5000.0", "05000", "-100", "10000", " 250"),
	),
	"MigrationUrl": join(
		ok("", "https://legacy.example.org/verify", "https://legacy.example.org:8443/api/v1/login?tenant=a"),
		bad("http://legacy.example.org/verify", "https://u:p@legacy.example.org/", "https://legacy.example.org/#x",
			"ftp://legacy.example.org/", "https://legacy.example.org/%zz", " https://legacy.example.org/", "legacy.example.org"),
	),
	"MigrationTokenSecretArn": join(
		ok("", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:legacy-AbCdEf"),
		bad("arn:x", "arn:aws:ssm:eu-west-1:123456789012:parameter/x", "legacy-token", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x y"),
	),
	"MigrationTimeoutMs": join(
		ok("100", "3000", "9000"),
		bad("99", "9001", "0", "1e3", "3000.0", "03000", "-100", " 300"),
	),
}

// codeOnly are values the code takes and the template refuses, on purpose:
// the local stack's own settings, which no deployed function can use.
var codeOnly = map[string][]string{
	// A loopback identity source over plain http (make run, the tests).
	"RemoteUserInfoUrl": {"http://127.0.0.1:9/{username}", "http://localhost:8080/{username}"},
	"MigrationUrl":      {"http://127.0.0.1:9/verify", "http://localhost:8080/verify"},
}

// contextEnv is what a parameter's variable needs beside it to be read.
var contextEnv = map[string]map[string]string{
	"RemoteUserInfoUrl":            {"REMOTE_USERINFO_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf"},
	"RemoteUserInfoTokenSecretArn": {"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "tok"},
	"RemoteIdpName":                {"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "tok"},
	"RemoteIdpLabel":               {"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "tok"},
	"RemoteIdpManagementUrl":       {"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "tok"},
	"RemoteUserInfoTimeoutMs":      {"REMOTE_USERINFO_URL": "https://idp.example.org/{username}", "REMOTE_USERINFO_TOKEN": "tok"},
	"MigrationUrl":                 {"MIGRATION_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf"},
	"MigrationTokenSecretArn":      {"MIGRATION_URL": "https://legacy.example.org/verify", "MIGRATION_TOKEN": "tok"},
	"MigrationTimeoutMs":           {"MIGRATION_URL": "https://legacy.example.org/verify", "MIGRATION_TOKEN": "tok"},
}

var baseEnv = map[string]string{"TABLE_NAME": "t", "MAIL_FROM": "a@b.example", "TOKEN_KEY": "0123456789abcdef0123"}

func loadWith(envs ...map[string]string) (config.Config, error) {
	return config.Load(func(k string) string {
		for i := len(envs) - 1; i >= 0; i-- {
			if v, ok := envs[i][k]; ok {
				return v
			}
		}
		return ""
	})
}

// Every parameter of template.yaml that reaches a function takes exactly
// what pkg/config takes: each sample value goes through the parameter's
// AllowedPattern as CloudFormation matches it (java.util.regex on the whole
// value; a faithful Go translation when no java is installed) and
// AllowedValues, and through config.Load with the value in every variable
// the parameter reaches. A value the template took and the code refused
// would deploy a stack whose every function fails at cold start.
func TestParametersAgreeWithTheCode(t *testing.T) {
	params := templateParameters(t)
	root, _ := filepath.Abs("../..")

	type check struct {
		p      *parameter
		s      sample
		codeOK bool // in codeOnly
	}
	var checks []check
	for name, p := range params {
		if reason, ok := templateOnly[name]; ok {
			if len(p.Env) > 0 {
				t.Errorf("%s is listed as template-only (%s) but reaches %v", name, reason, p.Env)
			}
			continue
		}
		if len(p.Env) == 0 {
			t.Errorf("parameter %s reaches no function's environment: give it a variable, or list it in templateOnly with why", name)
			continue
		}
		ss, ok := parameterSamples[name]
		if !ok {
			t.Errorf("parameter %s (%v) has no sample values in parameterSamples", name, p.Env)
			continue
		}
		if p.Default != nil {
			ss = append(ss, sample{*p.Default, true})
		}
		for _, s := range ss {
			checks = append(checks, check{p: p, s: s})
		}
		for _, v := range codeOnly[name] {
			checks = append(checks, check{p: p, s: sample{v, false}, codeOK: true})
		}
	}
	for name := range parameterSamples {
		if params[name] == nil {
			t.Errorf("parameterSamples has %s, which template.yaml does not declare", name)
		}
	}

	// The template's side: Java when it is here (it is wherever DynamoDB
	// Local runs), and the Go translation, which must agree with it.
	var pairs [][2]string
	for _, c := range checks {
		if c.p.AllowedPattern != "" {
			pairs = append(pairs, [2]string{c.p.AllowedPattern, c.s.v})
		}
	}
	java, err := javaMatches(root, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if java == nil {
		t.Log("no java on PATH: the template's patterns are matched through their Go translation only")
	}
	javaResult := map[[2]string]bool{}
	for i, r := range java {
		javaResult[pairs[i]] = r
	}
	match := func(pattern, v string) bool {
		re, err := javaToGo(pattern)
		if err != nil {
			t.Fatalf("AllowedPattern %q: %v", pattern, err)
		}
		got := re.MatchString(v)
		if want, ok := javaResult[[2]string{pattern, v}]; ok && want != got {
			t.Errorf("the Go translation of %q says %v for %q, Java %v", pattern, got, v, want)
			return want
		}
		return got
	}

	for _, c := range checks {
		p, s := c.p, c.s
		tplOK := p.accepts(s.v, match)
		env := map[string]string{}
		for _, k := range p.Env {
			env[k] = s.v
		}
		_, err := loadWith(baseEnv, contextEnv[p.Name], env)
		codeOK := err == nil
		wantCode := s.ok || c.codeOK
		// An empty value of a parameter with a default is the variable
		// unset, which the code reads as that default.
		if s.v == "" && p.Default != nil && *p.Default != "" {
			wantCode = true
		}
		if tplOK != s.ok || codeOK != wantCode {
			t.Errorf("%s=%q: template accepts %v, code accepts %v (%v); want template %v, code %v",
				p.Name, s.v, tplOK, codeOK, err, s.ok, wantCode)
		}
	}
}

// The template's defaults are the code's: a stack deployed with every
// parameter left alone runs as a function with none of them set.
func TestParameterDefaultsAreTheCodes(t *testing.T) {
	defaults := map[string]string{}
	for _, p := range templateParameters(t) {
		if p.Default != nil {
			for _, k := range p.Env {
				defaults[k] = *p.Default
			}
		}
	}
	unset, err := loadWith(baseEnv)
	if err != nil {
		t.Fatal(err)
	}
	set, err := loadWith(baseEnv, defaults)
	if err != nil {
		t.Fatalf("the template's defaults %v: %v", defaults, err)
	}
	if !reflect.DeepEqual(unset, set) {
		t.Errorf("with the template's defaults\n %+v\nwith nothing set\n %+v", set, unset)
	}
}
