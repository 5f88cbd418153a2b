package api_test

// Outsider attacks on account ownership and identity (security review 2).
// Each test asserts the behaviour that should hold; a failing test is a
// finding.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/testenv"
)

// mailsExactlyTo is MailsTo with an exact (byte-for-byte) recipient match:
// MailsTo's strings.EqualFold folds U+212A KELVIN SIGN to "k".
func mailsExactlyToEnv(t *testing.T, e *testenv.Env, to, subject string) []localstack.Mail {
	t.Helper()
	all, err := e.Inbox.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []localstack.Mail
	for _, m := range all {
		for _, a := range m.To {
			if a == to && strings.Contains(m.Subject, subject) {
				out = append(out, m)
			}
		}
	}
	return out
}

// doFrom is e.Do from a chosen loopback source address (127.0.0.x), so
// per-IP limits see distinct clients.
func doFrom(t *testing.T, e *testenv.Env, ip, method, path string, body any, hdr ...string) *testenv.Resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(mustJSON(t, body))
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &testenv.Resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	switch b := v.(type) {
	case string:
		return b
	case []byte:
		return string(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// Finding: GET /api/users with email (or username) and a username_list of
// more than 98 names builds a BatchGetItem of more than 100 keys, inside
// the *authentication* read: a 500 for any caller, even an unauthenticated
// Basic one.

func TestAttackListClaimKeysOverflow(t *testing.T) {
	u := quickUser(t, "list-overflow")
	names := make([]string, 150)
	for i := range names {
		names[i] = fmt.Sprintf("nobody-%03d", i)
	}
	q := "/api/users?email=" + url.QueryEscape(testenv.Email("x")) + "&username_list=" + strings.Join(names, ",")
	for _, tc := range []struct {
		who  string
		auth string
	}{
		{"a plain user's token", "Token " + u.Token},
		{"an unauthenticated Basic login", testenv.Basic(testenv.Email("nobody"), "wrong-Password-1")},
	} {
		r := env.Do(t, "GET", q, nil, "Authorization", tc.auth)
		if r.Status >= 500 {
			t.Errorf("%s, email + 150 usernames: %d %s", tc.who, r.Status, r.Body)
			for _, l := range strings.Split(env.Logs.String(), "\n") {
				if strings.Contains(l, r.Header.Get("Request-Id")) && strings.Contains(l, "cause") {
					t.Logf("log: %.400s", l)
				}
			}
		}
	}
	// username= instead of email= takes the same path.
	r := env.Do(t, "GET", "/api/users?username=a&username_list="+strings.Join(names, ","), nil, auth(u)...)
	if r.Status >= 500 {
		t.Errorf("username + 150 usernames: %d %s", r.Status, r.Body)
	}
}

// ---------------------------------------------------------------------------
// Was: NormalizeEmail was strings.ToLower, which maps U+212A KELVIN SIGN
// to "k" and U+0130 to "i", so a different mailbox claimed the ASCII
// address. Now the canonical form (NFKC, case folding) is the one stored,
// claimed and mailed: the look-alike is the ASCII address itself, so its
// mail goes to the owner's mailbox, and U+0130 is refused.
func TestAttackUnicodeCaseFoldSquatsAnAddress(t *testing.T) {
	const attackerPassword = "kelvin-Squatter-4410"
	victim := testenv.Email("kate")    // kate-...@example.com
	lookalike := "\u212A" + victim[1:] // Kate-...@example.com
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": lookalike, "password": attackerPassword})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up with the lookalike: %d %s", r.Status, r.Body)
	}
	if r.Str("email") != victim {
		t.Fatalf("stored email %q, want the canonical %q", r.Str("email"), victim)
	}
	time.Sleep(300 * time.Millisecond)
	if ms := mailsExactlyToEnv(t, env, lookalike, "Activate"); len(ms) != 0 {
		t.Fatalf("%d activation mails to the lookalike spelling", len(ms))
	}
	if ms := mailsExactlyToEnv(t, env, victim, "Activate"); len(ms) != 1 {
		t.Fatalf("%d activation mails to the canonical address", len(ms))
	}
	// The owner, who reads that mailbox, signs up and the squat is gone.
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": victim, "password": testenv.DefaultPassword}); r.Status != http.StatusCreated {
		t.Errorf("the owner of %s cannot sign up: %d %s", victim, r.Status, r.Body)
	}
	ivictim := "i" + testenv.Email("vy")
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": "\u0130" + ivictim[1:], "password": attackerPassword}); r.Status != http.StatusBadRequest {
		t.Errorf("%q: %d %s", "\u0130"+ivictim[1:], r.Status, r.Body)
	}
}

// Finding: a plain user can PATCH their own email to a lookalike that
// normalises to the same claim ("case only" in Update): the stored address,
// where reset mail goes, changes with no confirmation code, no notice to
// the old address and no credential-epoch move. A stolen token thereby
// turns into a lasting takeover that the owner is never told of.

func TestAttackPatchEmailLookalikeSkipsConfirmation(t *testing.T) {
	u := quickUser(t, "kpatch") // kpatch-...@example.com
	lookalike := "\u212A" + u.Email[1:]
	before := userItem(t, u.UUID)
	r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"email": lookalike}, auth(u)...)
	after := userItem(t, u.UUID)
	if attr(after, "email") != attr(before, "email") {
		t.Errorf("a plain user's PATCH changed the stored email %q -> %q (%d); epoch %s -> %s; notices to the old address: %d",
			attr(before, "email"), attr(after, "email"), r.Status, attr(before, "cred_epoch"), attr(after, "cred_epoch"),
			len(env.MailsTo(t, u.Email, "email was changed")))
		env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
		time.Sleep(300 * time.Millisecond)
		if ms := mailsExactlyToEnv(t, env, lookalike, "Reset"); len(ms) > 0 {
			code := testenv.CodeIn(t, ms[len(ms)-1].Text)
			if rr := env.Do(t, "POST", "/api/auth/password_reset/confirm", map[string]any{"code": code, "new_password": "taken-Over-Quietly-71"}); rr.Status == http.StatusOK {
				t.Errorf("the reset for %s went to the unconfirmed %q and took the account", u.Email, lookalike)
			}
		}
	}
	// The ASCII case-only variant is the same normalised address too.
	upper := strings.ToUpper(u.Email[:5]) + u.Email[5:]
	r = env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"email": upper}, auth(u)...)
	t.Logf("ASCII case-only PATCH by the user: %d, stored %q", r.Status, attr(userItem(t, u.UUID), "email"))
}

// ---------------------------------------------------------------------------
// Limits ON: one stack with small limits for the mail and work tests.

func startLimited(t *testing.T) (*testenv.Env, func(time.Duration)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lim, err := testenv.Start(ctx, testenv.Options{Env: map[string]string{
		"IP_RATE_LIMIT":                "1",
		"RATE_LIMIT_SIGNUP":            "100/1h",
		"RATE_LIMIT_LOGIN":             "100/1h",
		"RATE_LIMIT_RESEND":            "100/1h",
		"RATE_LIMIT_RESET":             "100/1h",
		"RATE_LIMIT_CHANGE_EMAIL":      "100/1h",
		"RATE_LIMIT_CHANGE_EMAIL_USER": "3/1h",
		"RATE_LIMIT_MAIL_ADDRESS":      "3/1h",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lim.Close)
	base := time.Now()
	at := func(d time.Duration) {
		lim.API.Users.Now = func() time.Time { return base.Add(d) }
	}
	at(0)
	return lim, at
}

func limUser(t *testing.T, lim *testenv.Env, prefix string) testenv.User {
	t.Helper()
	email := testenv.Email(prefix)
	u, err := lim.API.Users.EnsureStaff(context.Background(), email, testenv.DefaultPassword, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.User{UUID: u.UUID, Email: email, Password: testenv.DefaultPassword}
}

func TestAttackLimitsOn(t *testing.T) {
	lim, at := startLimited(t)

	// Finding: change_email mails the new address without the per-address
	// limit that sign-up, resend and reset share: N accounts (each within
	// its per-user limit) send N x 3 confirmation mails to one victim.
	t.Run("case=change_email to one victim address is limited per address", func(t *testing.T) {
		at(1 * time.Hour)
		victim := testenv.Email("cevictim")
		for i := range 4 {
			a := limUser(t, lim, fmt.Sprintf("ceattacker%d", i))
			basic := testenv.Basic(a.Email, a.Password)
			for range 3 {
				r := doFrom(t, lim, fmt.Sprintf("127.0.0.%d", 10+i), "POST", "/api/users/"+a.UUID+"/change_email", map[string]any{"email": victim}, "Authorization", basic)
				if r.Status != http.StatusOK && r.Status != http.StatusTooManyRequests {
					t.Fatalf("change_email: %d %s", r.Status, r.Body)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
		if n := len(lim.MailsTo(t, victim, "")); n > 3 {
			t.Errorf("one address got %d mails through change_email; the per-address limit is 3", n)
		}
	})

	// Work that differs for a known and an unknown login, limits on.
	t.Run("case=same work for known and unknown on unauthenticated routes, limits on", func(t *testing.T) {
		at(5 * time.Hour)
		known := limUser(t, lim, "workknown")
		pending := testenv.Email("workpending")
		doFrom(t, lim, "127.0.0.31", "POST", "/api/users", map[string]any{"email": pending, "password": testenv.DefaultPassword})
		cmpWork(t, lim, "Basic, wrong password vs unknown login", func() {
			doFrom(t, lim, "127.0.0.32", "GET", "/api/users/me", nil, "Authorization", testenv.Basic(known.Email, "wrong-Password-1"))
		}, func() {
			doFrom(t, lim, "127.0.0.32", "GET", "/api/users/me", nil, "Authorization", testenv.Basic(testenv.Email("nobody"), "wrong-Password-1"))
		})
		cmpWork(t, lim, "JSON login, wrong password vs unknown login", func() {
			doFrom(t, lim, "127.0.0.33", "POST", "/api/auth/login", map[string]any{"login": known.Email, "password": "wrong-Password-1"})
		}, func() {
			doFrom(t, lim, "127.0.0.33", "POST", "/api/auth/login", map[string]any{"login": testenv.Email("nobody"), "password": "wrong-Password-1"})
		})
		cmpWork(t, lim, "reset", func() {
			doFrom(t, lim, "127.0.0.34", "POST", "/api/auth/password_reset", map[string]any{"email": known.Email})
		}, func() {
			doFrom(t, lim, "127.0.0.34", "POST", "/api/auth/password_reset", map[string]any{"email": testenv.Email("nobody")})
		})
		cmpWork(t, lim, "resend", func() {
			doFrom(t, lim, "127.0.0.35", "POST", "/api/auth/activation/resend", map[string]any{"email": pending})
		}, func() {
			doFrom(t, lim, "127.0.0.35", "POST", "/api/auth/activation/resend", map[string]any{"email": testenv.Email("nobody")})
		})
	})
}

// cmpWork reports when a and b make different DynamoDB requests.
func cmpWork(t *testing.T, e *testenv.Env, what string, a, b func()) {
	t.Helper()
	x := e.Requests.Measure(a)
	y := e.Requests.Measure(b)
	diff := x.Requests != y.Requests || len(x.ByOp) != len(y.ByOp)
	for op, n := range x.ByOp {
		if y.ByOp[op] != n {
			diff = true
		}
	}
	if diff {
		t.Errorf("%s: %v for the account, %v for none", what, x.ByOp, y.ByOp)
	} else {
		t.Logf("%s: same work %v", what, x.ByOp)
	}
}

// ---------------------------------------------------------------------------
// ---------------------------------------------------------------------------
// Races around deletion, activation and replacement (expected to hold).

func TestAttackRaces(t *testing.T) {
	const rounds = 6
	staff := env.NewStaff(t, "race2-staff", false)

	t.Run("case=delete vs confirm_email", func(t *testing.T) {
		var u testenv.User
		var code string
		race(rounds, func(int) {
			u = quickUser(t, "delconf")
			ne := testenv.Email("delconf-new")
			env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": ne}, auth(u)...)
			code = env.CodeFromMail(t, ne, "Confirm your new email")
		}, func(int) {
			env.Do(t, "DELETE", "/api/users/"+u.UUID, nil, auth(u)...)
		}, func(int) {
			env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...)
		})
		auditClaims(t)
	})

	t.Run("case=delete vs PATCH username and staff PATCH email", func(t *testing.T) {
		var u testenv.User
		race(rounds, func(int) { u = quickUser(t, "delpatch") }, func(int) {
			env.Do(t, "DELETE", "/api/users/"+u.UUID, nil, auth(staff)...)
		}, func(i int) {
			if i%2 == 0 {
				env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"username": "dp-" + u.UUID[:8]}, auth(u)...)
			} else {
				env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"email": testenv.Email("dp-staff")}, auth(staff)...)
			}
		})
		auditClaims(t)
	})

	t.Run("case=delete vs login, refresh and wrong passwords re-create nothing", func(t *testing.T) {
		var u testenv.User
		race(rounds, func(int) { u = quickUser(t, "dellogin") }, func(int) {
			env.Do(t, "DELETE", "/api/users", nil, auth(u)...)
		}, func(i int) {
			switch i % 3 {
			case 0:
				env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": u.Password})
			case 1:
				env.Do(t, "POST", "/api/users/"+u.UUID+"/refresh_token", nil, "Authorization", testenv.Basic(u.Email, u.Password))
			default:
				env.Do(t, "POST", "/api/auth/login", map[string]any{"login": u.Email, "password": "wrong-Password-1"})
			}
			time.Sleep(100 * time.Millisecond)
			if it := userItem(t, u.UUID); it != nil && attr(it, "email") == "" {
				t.Errorf("round %d: a partial user item was re-created: %v", i, it)
			}
		})
		auditClaims(t)
	})

	t.Run("case=staff delete of an unverified account vs its activation", func(t *testing.T) {
		var id, code string
		race(rounds, func(int) {
			e := testenv.Email("delact")
			id = env.SignUp(t, e)
			code = env.CodeFromMail(t, e, "Activate")
		}, func(int) {
			env.Do(t, "DELETE", "/api/users/"+id, nil, auth(staff)...)
		}, func(int) {
			env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword})
		})
		auditClaims(t)
	})

	t.Run("case=owner's activation vs three replacing sign-ups", func(t *testing.T) {
		for i := range rounds {
			email := testenv.Email("actrepl")
			id := env.SignUp(t, email)
			code := env.CodeFromMail(t, email, "Activate")
			statuses := make([]int, 4)
			together(4, func(j int) {
				if j == 0 {
					statuses[0] = env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}).Status
					return
				}
				statuses[j] = env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": fmt.Sprintf("replacer-Pw-%d-abc", j),
					"username": fmt.Sprintf("repl%d-%s", j, id[:8])}).Status
			})
			it := userItem(t, id)
			if statuses[0] == http.StatusOK && (it == nil || attr(it, "status") != "ENABLED") {
				t.Errorf("round %d: activation said 200 but the account is %v", i, it)
			}
			if statuses[0] == http.StatusOK {
				for j := 1; j < 4; j++ {
					if statuses[j] == http.StatusCreated {
						h := claimHolder(t, "EMAIL#"+strings.ToLower(email))
						if h != id {
							t.Errorf("round %d: activated, yet a replacing sign-up got 201 and the claim is %s", i, h)
						}
					}
				}
			}
			t.Logf("round %d: activate %d, sign-ups %v", i, statuses[0], statuses[1:])
		}
		auditClaims(t)
	})

	t.Run("case=email held by one unverified account, username by another, both activating", func(t *testing.T) {
		for i := range rounds {
			ea, eb := testenv.Email("split-a"), testenv.Email("split-b")
			nb := "split-" + strings.ToLower(ea[8:20])
			ida := env.SignUp(t, ea)
			rb := env.Do(t, "POST", "/api/users", map[string]any{"email": eb, "username": nb, "password": testenv.DefaultPassword})
			if rb.Status != http.StatusCreated {
				t.Fatalf("b: %d %s", rb.Status, rb.Body)
			}
			ca, cb := env.CodeFromMail(t, ea, "Activate"), env.CodeFromMail(t, eb, "Activate")
			st := make([]int, 3)
			together(3, func(j int) {
				switch j {
				case 0:
					st[0] = env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": ca, "password": testenv.DefaultPassword}).Status
				case 1:
					st[1] = env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": cb, "password": testenv.DefaultPassword}).Status
				default:
					st[2] = env.Do(t, "POST", "/api/users", map[string]any{"email": ea, "username": nb, "password": "replacer-Pw-9-abc"}).Status
				}
			})
			if st[2] == http.StatusCreated && (st[0] == http.StatusOK || st[1] == http.StatusOK) {
				t.Errorf("round %d: the replacing sign-up won although an activation did too: %v", i, st)
			}
			if st[0] == http.StatusOK && attr(userItem(t, ida), "status") != "ENABLED" {
				t.Errorf("round %d: a's activation answered 200 but a is not enabled", i)
			}
			t.Logf("round %d: %v", i, st)
		}
		auditClaims(t)
	})
}

// ---------------------------------------------------------------------------
// The users list with odd input: no 5xx, and a plain user sees only
// themselves whatever the filters.

func TestAttackListOddInputs(t *testing.T) {
	u := quickUser(t, "listodd")
	staff := env.NewStaff(t, "listodd-staff", false)
	other := quickUser(t, "listodd-other")
	names90 := make([]string, 90)
	for i := range names90 {
		names90[i] = fmt.Sprintf("n%02d", i)
	}
	names90[0] = strings.ToLower(other.Email)
	long := make([]string, 1000)
	for i := range long {
		long[i] = fmt.Sprintf("nobody-%04d", i)
	}
	queries := []string{
		"username_list=" + strings.Join(names90, ","),
		"username_list=" + strings.Join(names90, ",") + "&email=" + url.QueryEscape(other.Email),
		"username_list=" + strings.Join(names90[:89], ",") + "&email=" + url.QueryEscape(other.Email) + "&username=zz",
		"username_list=" + strings.Join(long, ","),
		"username_list=" + strings.Join(long, ",") + "&o=-email",
		"username_list=,,,,,",
		"username_list=" + strings.Repeat("A,", 500),
		"email=" + url.QueryEscape(strings.ToUpper(other.Email)),
		"email=%FF%FE%40example.com",
		"username=%FF",
		"username_list=%FF,%C0%80",
		"query=%FF",
		"full_name=%00",
		"page=1000000&page_size=300",
		"page=1000000&page_size=300&o=-username",
		"page=999999&page_size=300&o=email",
		"page=0", "page=-1", "page_size=0", "page_size=301", "page=1e3", "page=%20",
		"o=", "o=-", "o=--username", "o=username,-username,email,-email", "o=" + strings.Repeat("-date_joined,", 200),
		"o=-username&page=2&page_size=1",
		"is_active=false&is_staff=true&is_support=true&o=-modified",
		"date_joined=9999-12-31", "date_joined=0001-01-01", "modified=2020-01-01T00:00:00 00:00",
		"field=uuid&field=email&field=password_hash",
	}
	for _, q := range queries {
		for _, who := range []testenv.User{u, staff} {
			r := env.Do(t, "GET", "/api/users?"+q, nil, auth(who)...)
			if r.Status >= 500 {
				t.Errorf("GET /api/users?%.60s (staff %v): %d %s", q, who.UUID == staff.UUID, r.Status, r.Body)
				continue
			}
			if who.UUID == u.UUID && r.Status == http.StatusOK {
				var arr []map[string]any
				_ = json.Unmarshal(r.Body, &arr)
				for _, o := range arr {
					if o["uuid"] != nil && o["uuid"] != u.UUID {
						t.Errorf("a plain user's list %.60s shows %v", q, o["uuid"])
					}
				}
				if c := r.Header.Get("X-Result-Count"); c != "0" && c != "1" {
					t.Errorf("a plain user's list %.60s counts %s", q, c)
				}
			}
		}
		if r := env.Do(t, "HEAD", "/api/users?"+q, nil, auth(u)...); r.Status >= 500 {
			t.Errorf("HEAD %.60s: %d", q, r.Status)
		}
	}
}

// Invalid UTF-8 where it can reach a key without JSON decoding: Basic
// credentials and query strings.
func TestAttackInvalidUTF8Keys(t *testing.T) {
	for _, login := range []string{"\xff\xfe@example.com", "a\xc0\x80b", "\xed\xa0\x80@x.com"} {
		r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(login, "wrong-Password-1"))
		if r.Status >= 500 {
			t.Errorf("Basic login %q: %d %s", login, r.Status, r.Body)
		}
		r = env.Do(t, "POST", "/api/users", map[string]any{"email": "x@example.com", "password": testenv.DefaultPassword}, "Authorization", testenv.Basic(login, "wrong-Password-1"))
		if r.Status >= 500 {
			t.Errorf("sign-up with Basic %q: %d %s", login, r.Status, r.Body)
		}
	}
	for _, body := range []string{"{\"email\":\"\xff@example.com\",\"password\":\"violet-Tractor-93-lantern\"}", "{\"email\":\"a\xc0\x80@example.com\"}"} {
		for _, p := range []string{"/api/users", "/api/auth/password_reset", "/api/auth/activation/resend", "/api/auth/login"} {
			if r := env.Do(t, "POST", p, []byte(body)); r.Status >= 500 {
				t.Errorf("POST %s raw %q: %d %s", p, body, r.Status, r.Body)
			}
		}
	}
}

// Staff activation (PATCH is_active:true) of an UNVERIFIED account keeps the
// password the sign-up chose: a squat made with someone else's address,
// activated by support for "the owner", is an ENABLED account with the
// squatter's password. (EnsureStaff refuses exactly this case.)
func TestAttackStaffActivationKeepsTheSquattersPassword(t *testing.T) {
	const attackerPassword = "attacker-Chosen-4417"
	staff := env.NewStaff(t, "support-act", false)
	victim := testenv.Email("staffact-victim")
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": victim, "password": attackerPassword, "first_name": "Mallory"})
	if r.Status != http.StatusCreated {
		t.Fatalf("squat: %d %s", r.Status, r.Body)
	}
	id := r.Str("uuid")
	if r := env.Do(t, "PATCH", "/api/users/"+id, map[string]any{"is_active": true}, auth(staff)...); r.Status != http.StatusOK || r.Str("status") != "ENABLED" {
		t.Fatalf("staff activation: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": victim, "password": attackerPassword}); r.Status == http.StatusOK {
		t.Errorf("after a staff activation the squatter logs in to %s with the password they chose (epoch %s)", victim, attr(userItem(t, id), "cred_epoch"))
	}
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": victim, "password": "owner-Real-Secret-8810"}); r.Status != http.StatusCreated {
		t.Logf("the owner's own sign-up now: %d (duplicate)", r.Status)
	}
}

// Was: a username could be any address, so an outsider took the username
// that is someone else's email (their default username). A username that
// is an email address must now be the account's own.
func TestAttackUsernameSquatsSomeonesDefaultUsername(t *testing.T) {
	victim := testenv.Email("defname")
	mine := testenv.Email("squatter-own")
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": mine, "username": strings.ToLower(victim), "password": "squatter-Pw-3131"})
	if r.Status != http.StatusBadRequest || r.JSON()["fields"].(map[string]any)["username"] == nil {
		t.Fatalf("squat: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": victim, "password": testenv.DefaultPassword}); r.Status != http.StatusCreated {
		t.Errorf("the owner of %s cannot sign up without choosing a username: %d %s", victim, r.Status, r.Body)
	}
}

// Was: a confirm_email to an address held only by an UNVERIFIED account
// failed as a duplicate, so anyone who learned the address an account was
// moving to could block the move. The proved address now replaces it.
func TestAttackConfirmEmailBlockedByUnverifiedHolder(t *testing.T) {
	u := quickUser(t, "mover2")
	target := testenv.Email("move-target")
	if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": target}, auth(u)...); r.Status != http.StatusOK {
		t.Fatalf("change_email: %d %s", r.Status, r.Body)
	}
	code := env.CodeFromMail(t, target, "Confirm your new email")
	if r := env.Do(t, "POST", "/api/users", map[string]any{"email": target, "password": "squatter-Pw-7712"}); r.Status != http.StatusCreated {
		t.Fatalf("outsider's sign-up: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...); r.Status != http.StatusOK {
		t.Errorf("confirm to an address only an unverified account holds: %d %s", r.Status, r.Body)
	}
	if got := claimHolder(t, "EMAIL#"+target); got != u.UUID {
		t.Errorf("the address is held by %q, want the mover %s", got, u.UUID)
	}
	auditClaims(t)
}
