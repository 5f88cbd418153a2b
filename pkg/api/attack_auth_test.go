package api_test

// Attacks on the credential surface (security review, attacker 1). Each
// test asserts what should hold; a failing test is a reproduced finding.

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aws/smithy-go/middleware"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/ddbmetrics"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// gateDB holds the first write to the user item of `victim` (an
// UpdateItem, or a TransactWriteItems with an update or delete of it; with
// deletesOnly, only a delete) until release is closed, so that a request
// can be caught between its authentication and its write.
type gateDB struct {
	users.DB
	victim      atomic.Value // string
	deletesOnly bool
	reached     chan struct{}
	release     chan struct{}
	once        sync.Once
}

func (g *gateDB) reset(victim string, deletesOnly bool) {
	g.reached, g.release, g.once, g.deletesOnly = make(chan struct{}), make(chan struct{}), sync.Once{}, deletesOnly
	g.victim.Store(victim)
}

func (g *gateDB) hold(key map[string]types.AttributeValue) {
	v, _ := g.victim.Load().(string)
	if pk, ok := key["pk"].(*types.AttributeValueMemberS); ok && v != "" && pk.Value == "USER#"+v {
		first := false
		g.once.Do(func() { first = true; close(g.reached) })
		if first {
			<-g.release
		}
	}
}

func (g *gateDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		switch {
		case it.Delete != nil:
			g.hold(it.Delete.Key)
		case it.Update != nil && !g.deletesOnly:
			g.hold(it.Update.Key)
		}
	}
	return g.DB.TransactWriteItems(ctx, in, o...)
}

func (g *gateDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if !g.deletesOnly {
		g.hold(in.Key)
	}
	return g.DB.UpdateItem(ctx, in, o...)
}

// resetPassword is the owner taking the account back (on the main stack).
func resetPassword(t *testing.T, u testenv.User, next string) {
	t.Helper()
	env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
	code := env.CodeFromMail(t, u.Email, "Reset your password")
	if r := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": next}); r.Status != http.StatusOK {
		t.Fatalf("reset confirm: %d %s", r.Status, r.Body)
	}
}

// inFlight sends req on fe, waits until it reaches its first write to the
// victim's item, runs meanwhile, then lets the write go and returns the
// answer.
func inFlight(t *testing.T, g *gateDB, req func() *testenv.Resp, meanwhile func()) *testenv.Resp {
	t.Helper()
	done := make(chan *testenv.Resp, 1)
	go func() { done <- req() }()
	select {
	case <-g.reached:
	case r := <-done:
		t.Fatalf("the request ended before any write to the user: %d %s", r.Status, r.Body)
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached its write")
	}
	meanwhile()
	close(g.release)
	r := <-done
	g.victim.Store("")
	return r
}

// A DELETE authenticated with a stolen token (or the old password over
// Basic) that is in flight while the owner resets the password still
// deletes the account: userDelete is not conditional on the credential
// epoch read, unlike every other user write.
func TestAttackDeleteInFlightSurvivesPasswordReset(t *testing.T) {
	g := &gateDB{}
	fe := faultStack(t, nil, func(db users.DB) users.DB { g.DB = db; return g })
	for _, via := range []string{"stolen token", "old password over Basic"} {
		t.Run("case="+via, func(t *testing.T) {
			victim := quickUser(t, "atk-del")
			g.reset(victim.UUID, true)
			authz := "Token " + victim.Token
			if via != "stolen token" {
				authz = testenv.Basic(victim.Email, victim.Password)
			}
			r := inFlight(t, g, func() *testenv.Resp {
				return fe.Do(t, "DELETE", "/api/users/"+victim.UUID, nil, "Authorization", authz)
			}, func() {
				resetPassword(t, victim, "owner-Took-It-Back-51")
				if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", authz); r.Status != http.StatusUnauthorized {
					t.Fatalf("the old credential still works after the reset: %d", r.Status)
				}
			})
			if r.Status == http.StatusNoContent || userItem(t, victim.UUID) == nil {
				t.Errorf("a DELETE authenticated before the reset deleted the account after it: %d %s (item gone: %v)",
					r.Status, r.Body, userItem(t, victim.UUID) == nil)
			}
		})
	}
}

// The other writes a stolen token can make, caught in flight the same way,
// are refused after the reset (the credential epoch guard): these hold.
func TestAttackOtherWritesInFlightDuringReset(t *testing.T) {
	g := &gateDB{}
	fe := faultStack(t, nil, func(db users.DB) users.DB { g.DB = db; return g })
	for _, tc := range []struct {
		desc string
		send func(u testenv.User) *testenv.Resp
	}{
		{"refresh_token", func(u testenv.User) *testenv.Resp {
			return fe.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", nil, auth(u)...)
		}},
		{"change_email", func(u testenv.User) *testenv.Resp {
			return fe.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": testenv.Email("atk-thief")}, auth(u)...)
		}},
		{"PATCH token_lifetime", func(u testenv.User) *testenv.Resp {
			return fe.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"token_lifetime": 2592000}, auth(u)...)
		}},
		{"self change_password", func(u testenv.User) *testenv.Resp {
			return fe.Do(t, "POST", "/api/users/"+u.UUID+"/change_password", map[string]any{"current_password": u.Password, "new_password": "thief-Keeps-It-42"}, auth(u)...)
		}},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			victim := quickUser(t, "atk-inflight")
			g.reset(victim.UUID, false)
			r := inFlight(t, g, func() *testenv.Resp { return tc.send(victim) }, func() { resetPassword(t, victim, "owner-Took-It-Back-52") })
			if r.Status < 400 {
				t.Errorf("%s authenticated before the reset was written after it: %d %s", tc.desc, r.Status, r.Body)
			}
			if tok := r.Str("token"); tok != "" {
				if rr := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok); rr.Status == http.StatusOK {
					t.Errorf("%s: the token it returned works after the reset", tc.desc)
				}
			}
			env.Login(t, victim.Email, "owner-Took-It-Back-52")
		})
	}
}

// POST /user is "always the self sign-up, whatever Authorization the
// client sends" (API.md). With staff credentials it is the admin create.
func TestAttackUbiOpsSignUpIgnoresAuthorization(t *testing.T) {
	staff := env.NewStaff(t, "atk-ubi-staff", false)
	plain := quickUser(t, "atk-ubi-plain")
	email := testenv.Email("atk-ubi")
	r := env.Do(t, "POST", "/user", map[string]any{"email": email, "password": testenv.DefaultPassword}, auth(staff)...)
	if r.Status != http.StatusCreated {
		t.Errorf("/user with staff Authorization is not the self sign-up: %d %s", r.Status, r.Body)
	} else if st := attr(userItem(t, claimHolder(t, "EMAIL#"+strings.ToLower(email))), "status"); st != users.StatusUnverified {
		t.Errorf("/user with staff Authorization made a %s account, not the self sign-up's UNVERIFIED one", st)
	}
	if r := env.Do(t, "POST", "/user", map[string]any{"email": testenv.Email("atk-ubi2"), "password": testenv.DefaultPassword}, auth(plain)...); r.Status != http.StatusCreated {
		t.Errorf("/user with a plain user's Authorization: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/user", map[string]any{"email": testenv.Email("atk-ubi3"), "password": testenv.DefaultPassword}, "Authorization", testenv.Basic(plain.Email, "wrong-Guess-ubi-1")); r.Status != http.StatusCreated {
		t.Errorf("/user with a wrong Basic header: %d %s (failed_logins of the named account now %s)", r.Status, r.Body, attr(userItem(t, plain.UUID), "failed_logins"))
	}
}

// The lockout (5 failures, then a wait) should bound how many passwords an
// attacker gets checked against an account before it locks. A concurrent
// burst gets every one of its guesses checked: the lock is read before the
// hash and written only after it.
func TestAttackLockoutBurstChecksEveryGuess(t *testing.T) {
	const burst = 16
	// A frozen clock: the first lock (1 s) must not run out while a slow
	// machine works through the burst, or a sixth guess is rightly checked.
	orig, frozen := env.API.Users.Now, time.Now()
	env.API.Users.Now = func() time.Time { return frozen }
	defer func() { env.API.Users.Now = orig }()
	for _, via := range []string{"JSON login", "Basic", "change_password current_password"} {
		t.Run("case="+via, func(t *testing.T) {
			victim := quickUser(t, "atk-burst")
			statuses := make([]int, burst)
			before := secret.Hashes()
			// A burst of wrong guesses (a right one among them would rightly
			// clear the count and let later ones be checked: the attacker has
			// won by then), then the right password, which the lock refuses.
			try := func(i int, guess string) int {
				var r *testenv.Resp
				switch via {
				case "JSON login":
					r = env.Do(t, "POST", "/api/auth/login", map[string]any{"login": victim.Email, "password": guess})
				case "Basic":
					r = env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(victim.Email, guess))
				default:
					// A stolen token guessing the current password.
					r = env.Do(t, "POST", "/api/users/"+victim.UUID+"/change_password",
						map[string]any{"current_password": guess, "new_password": fmt.Sprintf("attacker-New-%02d-pw", i)}, "Authorization", "Token "+victim.Token)
				}
				return r.Status
			}
			together(burst, func(i int) { statuses[i] = try(i, fmt.Sprintf("wrong-Guess-%02d-xyz", i)) })
			checked := secret.Hashes() - before
			wrongChecked := 0
			for _, st := range statuses {
				if st == http.StatusUnauthorized || st == http.StatusBadRequest {
					wrongChecked++
				}
			}
			right := try(burst, victim.Password)
			t.Logf("%s: statuses %v; %d password hashes; failed_logins now %s, the right password then answered %d",
				via, statuses, checked, attr(userItem(t, victim.UUID), "failed_logins"), right)
			if wrongChecked > users.LockoutThreshold || checked > users.LockoutThreshold {
				t.Errorf("%d wrong passwords (%d hashes) were checked in one burst before the lock applied (lockout threshold %d)",
					wrongChecked, checked, users.LockoutThreshold)
			}
			if right != http.StatusTooManyRequests {
				t.Errorf("the right password during the lock: %d, want 429", right)
			}
		})
	}
}

// rawGet sends a GET with an Authorization header written byte for byte
// (net/http refuses some of the values tried here), over loopback.
func rawGet(t *testing.T, base, path, authz string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nConnection: close\r\n\r\n", path, u.Host, authz)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Crafted Authorization values must be refused as 401, never a 5xx.
func TestAttackOddAuthorizationValues(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := map[string]string{
		"basic invalid utf-8 login":    "Basic " + b64("\xff\xfe\xfd@example.com:whatever-pw"),
		"basic invalid utf-8 password": "Basic " + b64("someone@example.com:\xff\xfe\xfd"),
		"basic only spaces login":      "Basic " + b64("   :whatever-pw"),
		"basic NUL login":              "Basic " + b64("a\x00b@example.com:whatever-pw"),
		"basic expanding lowercase":    "Basic " + b64(strings.Repeat("\u0130", 127)+":whatever-pw"),
		"basic unpadded":               "Basic " + strings.TrimRight(b64("ab@example.com:pw"), "="),
		"basic with tab inside":        "Basic " + b64("ab@example.com:pw")[:4] + "\t" + b64("ab@example.com:pw")[4:],
		"basic huge":                   "Basic " + b64(strings.Repeat("a", 40000)+":x"),
		"basic huge password":          "Basic " + b64("a@example.com:"+strings.Repeat("p", 5000)),
		"token garbage":                "Token " + strings.Repeat("A", 70),
		"token zero uuid":              "Token " + base64.RawURLEncoding.EncodeToString(make([]byte, 48)),
		"bearer huge":                  "Bearer " + strings.Repeat("x", 50000),
		"scheme only":                  "Token",
		"double scheme":                "Token Token abc",
		"tab separated":                "Token\tabc",
		"basic invalid utf-8 scheme":   "\xffasic abc",
	}
	for name, h := range cases {
		status, body := rawGet(t, env.URL, "/api/users/me", h)
		t.Logf("%s: %d %.120s", name, status, body)
		if status >= 500 || status == http.StatusOK || status == 0 {
			t.Errorf("%s: %d %s", name, status, body)
		}
		if strings.Contains(strings.ToLower(body), "dynamodb") || strings.Contains(body, "Exception") {
			t.Errorf("%s: internal text in the body: %s", name, body)
		}
	}
	for name, login := range map[string]string{
		"invalid utf-8": "\xff\xfe@example.com", "NUL": "a\x00@example.com", "expanding": strings.Repeat("\u0130", 127),
	} {
		r := env.Do(t, "POST", "/api/auth/login", []byte(`{"login":"`+login+`","password":"whatever-pw-1"}`))
		if r.Status >= 500 {
			t.Errorf("login %s: %d %s", name, r.Status, r.Body)
		}
	}
}

// limitStack is a second service on the shared emulators with the per-IP
// limits on (as deployed), its own clock (a fresh window per stack) and
// its own request counter.
func limitStack(t *testing.T, edit func(*config.RateLimits)) *testenv.Env {
	t.Helper()
	cfg := env.Config
	cfg.RateLimits = config.DefaultRateLimits
	if edit != nil {
		edit(&cfg.RateLimits)
	}
	logs := &testenv.Buffer{}
	counter := ddbmetrics.New()
	a, err := app.New(context.Background(), cfg, app.Options{LogOutput: logs, DynamoAPIOptions: []func(*middleware.Stack) error{counter.Middleware}})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(time.Duration(limitStacks.Add(1)) * 48 * time.Hour)
	start := time.Now()
	a.Users.Now = func() time.Time { return base.Add(time.Since(start)) }
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := localstack.NewServer(tpl.Routes, app.Handlers(a), localstack.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testenv.Env{URL: srv.URL, Inbox: env.Inbox, API: a, Config: cfg, DB: env.DB, Logs: logs, Requests: counter}
}

var limitStacks atomic.Int64

// The per-IP login limit should stop a flood of Basic guesses before the
// hash once the window is full. A concurrent burst of Basic requests all
// read the count before any failure is written, so every one of them is
// hashed (a JSON login's count is a guarded write first, and is exact).
func TestAttackBasicBurstPastPerIPLimit(t *testing.T) {
	const limit, burst = 6, 30
	le := limitStack(t, func(r *config.RateLimits) { r.Login = config.RateLimit{Count: limit, Window: 5 * time.Minute} })
	victims := make([]testenv.User, burst)
	for i := range victims {
		// One account per request, so the per-account lockout plays no part.
		victims[i] = quickUser(t, "atk-ipburst")
	}
	statuses := make([]int, burst)
	before := secret.Hashes()
	together(burst, func(i int) {
		statuses[i] = le.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(victims[i].Email, "wrong-Guess-basic-1")).Status
	})
	hashed := secret.Hashes() - before
	refused := 0
	for _, s := range statuses {
		if s == http.StatusTooManyRequests {
			refused++
		}
	}
	t.Logf("statuses %v; %d hashes; %d refused", statuses, hashed, refused)
	// One at a time, the limit is there: the window is full now.
	if r := le.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(victims[0].Email, "wrong-Guess-basic-2")); r.Status != http.StatusTooManyRequests {
		t.Errorf("a Basic guess after the burst: %d (the limit does not apply at all)", r.Status)
	}
	if hashed > limit || burst-refused > limit {
		t.Errorf("a burst of %d Basic guesses from one IP against a login limit of %d: %d were hashed, %d answered other than 429",
			burst, limit, hashed, burst-refused)
	}
}

// Unknown logins and wrong passwords over Basic should be indistinguishable:
// status, body, headers and DynamoDB work.
func TestAttackBasicEnumeration(t *testing.T) {
	known := quickUser(t, "atk-enum")
	unverified := testenv.Email("atk-enum-unv")
	env.SignUp(t, unverified)
	staff := env.NewStaff(t, "atk-enum-staff", false)
	disabled := quickUser(t, "atk-enum-dis")
	if r := env.Do(t, "PATCH", "/api/users/"+disabled.UUID, map[string]any{"is_active": false}, auth(staff)...); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	type obs struct {
		status   int
		body     string
		hdr      string
		requests int
	}
	probe := func(login string, json bool) obs {
		var r *testenv.Resp
		got := env.Requests.Measure(func() {
			if json {
				r = env.Do(t, "POST", "/api/auth/login", map[string]any{"login": login, "password": "wrong-Guess-enum-1"})
			} else {
				r = env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(login, "wrong-Guess-enum-1"))
			}
		})
		var hs []string
		for k := range r.Header {
			if k != "Request-Id" && k != "Date" && k != "Apigw-Requestid" {
				hs = append(hs, k+"="+strings.Join(r.Header[k], ","))
			}
		}
		sort.Strings(hs)
		return obs{r.Status, string(r.Body), strings.Join(hs, ";"), got.Requests}
	}
	for _, json := range []bool{false, true} {
		ref := probe(testenv.Email("nobody"), json)
		for name, login := range map[string]string{"known": known.Email, "unverified": unverified, "disabled": disabled.Email, "username": strings.ToLower(known.Email)} {
			if got := probe(login, json); got != ref {
				t.Errorf("json=%v %s: %+v, unknown: %+v", json, name, got, ref)
			}
		}
	}
}

// A username may look like an email address, so someone can hold another
// person's address as their username: the owner's default sign-up is then
// refused as a duplicate, and a login with that address reaches the
// squatter's account.
func TestAttackUsernameSquatsAnotherEmail(t *testing.T) {
	victimEmail := testenv.Email("atk-sq-victim")
	attackerEmail := testenv.Email("atk-sq-attacker")
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": attackerEmail, "password": testenv.DefaultPassword, "username": strings.ToLower(victimEmail)})
	if r.Status != http.StatusBadRequest {
		t.Fatalf("a username that is someone else's address: %d %s, want 400", r.Status, r.Body)
	}
	r = env.Do(t, "POST", "/api/auth/login", map[string]any{"login": victimEmail, "password": testenv.DefaultPassword})
	if r.Status != http.StatusUnauthorized {
		t.Errorf("login with the victim's address before the victim signs up: %d", r.Status)
	}
	r = env.Do(t, "POST", "/api/users", map[string]any{"email": victimEmail, "password": "victim-Own-Pw-551"})
	if r.Status != http.StatusCreated {
		t.Errorf("the owner of %s cannot sign up with it: %d %s", victimEmail, r.Status, r.Body)
	}
}

// Codes and tokens of a deleted account must not work on a new account
// made with the same email; codes of one purpose must not work for another.
func TestAttackCodesAcrossAccountsAndPurposes(t *testing.T) {
	u := quickUser(t, "atk-recreate")
	env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
	reset := env.CodeFromMail(t, u.Email, "Reset your password")
	newEmail := testenv.Email("atk-recreate-new")
	if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...); r.Status != http.StatusOK {
		t.Fatalf("change_email: %d %s", r.Status, r.Body)
	}
	change := env.CodeFromMail(t, newEmail, "")
	// Purpose confusion on a live account.
	for name, r := range map[string]*testenv.Resp{
		"email-change code at reset confirm": env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": change, "new_password": "confused-Pw-9921"}),
		"email-change code at activate":      env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": change, "password": u.Password}),
		"reset code at activate":             env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": reset, "password": u.Password}),
		"reset code at confirm_email":        env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": reset}, auth(u)...),
	} {
		if r.Status == http.StatusOK {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// Delete, re-create with the same email, try the old credentials.
	if r := env.Do(t, "DELETE", "/api/users/"+u.UUID, nil, auth(u)...); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.Status)
	}
	id := env.SignUp(t, u.Email)
	env.Activate(t, u.Email)
	nt := env.Login(t, u.Email, testenv.DefaultPassword)
	for name, r := range map[string]*testenv.Resp{
		"old token":             env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+u.Token),
		"old reset code":        env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": reset, "new_password": "replayed-Pw-3381"}),
		"old change code":       env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": change}, "Authorization", "Token "+nt),
		"old token on new uuid": env.Do(t, "GET", "/api/users/"+id+"/token", nil, "Authorization", "Token "+u.Token),
	} {
		if r.Status == http.StatusOK {
			t.Errorf("%s works on the re-created account: %d %s", name, r.Status, r.Body)
		}
	}
}

// No answer carries a hash, a code or a sealed token copy; none but the
// caller's own token.
func TestAttackNoSecretsInAnswers(t *testing.T) {
	staff := env.NewStaff(t, "atk-leak-staff", false)
	u := quickUser(t, "atk-leak")
	other := quickUser(t, "atk-leak-other")
	env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
	env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": testenv.Email("atk-leak-new")}, auth(u)...)
	var bodies []string
	for _, r := range []*testenv.Resp{
		env.Do(t, "GET", "/api/users/me", nil, auth(u)...),
		env.Do(t, "GET", "/api/users/"+u.UUID, nil, auth(staff)...),
		env.Do(t, "GET", "/api/users?page_size=300&email="+u.Email, nil, auth(staff)...),
		env.Do(t, "GET", "/api/users?field=token&field=email", nil, auth(staff)...),
		env.Do(t, "GET", "/api/users/"+u.UUID+"?field=token", nil, auth(staff)...),
		env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"first_name": "X"}, auth(staff)...),
		env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password}),
		env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(other.Email, other.Password)),
		env.Do(t, "HEAD", "/api/users", nil, auth(u)...),
	} {
		bodies = append(bodies, string(r.Body)+fmt.Sprint(r.Header))
	}
	all := strings.Join(bodies, "\n")
	for _, bad := range []string{"$argon2", "password_hash", "token_hash", "token_sealed", "code_reset", "code_email_change", "\"hash\""} {
		if strings.Contains(all, bad) {
			t.Errorf("an answer carries %q", bad)
		}
	}
	// Staff reading u must not see u's token in the user object.
	if strings.Contains(bodies[1]+bodies[2]+bodies[3]+bodies[4]+bodies[5], u.Token) {
		t.Errorf("a staff read of the user object carries the user's token")
	}
}
