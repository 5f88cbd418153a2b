package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// listFunction is the logical id whose GET route lists users; the list
// operations run when the template and the API both have it.
const listFunction = "ListUsersFunction"

// Operation is one operation's figures: latency through the local API with
// production hashing (phase A), DynamoDB requests and capacity, SES sends,
// and the handler's time outside DynamoDB, SES and hashing (phase B).
type Operation struct {
	Name     string `json:"name"`
	Route    string `json:"route"`
	Function string `json:"function"`
	Measured bool   `json:"measured"`
	Note     string `json:"note,omitempty"`

	P50MS               float64        `json:"p50_ms"`
	P95MS               float64        `json:"p95_ms"`
	DynamoDBRequests    int            `json:"dynamodb_requests"`
	DynamoDBRequestsMin int            `json:"dynamodb_requests_min"`
	DynamoDBByOp        map[string]int `json:"dynamodb_by_op,omitempty"`
	// CapacityUnits are the consumed capacity units DynamoDB Local
	// reported (env.Requests), mean per call.
	CapacityUnits float64 `json:"capacity_units"`
	// RRU and WRU are the request units DynamoDB on demand bills, mean
	// per call: DynamoDB Local's units for reads and single-item writes,
	// transactions priced from the sizes of their items.
	RRU            float64 `json:"read_request_units"`
	WRU            float64 `json:"write_request_units"`
	SESSends       int     `json:"ses_sends"`
	PasswordHashes int     `json:"password_hashes"`

	HandlerP50MS  float64 `json:"handler_p50_ms"`
	DynamoDBP50MS float64 `json:"dynamodb_p50_ms"`
	SESP50MS      float64 `json:"ses_p50_ms"`
	// OutsideP50MS is the handler's time minus its DynamoDB round trips,
	// SES round trips and password hashing: the service's own code, the
	// SDK's marshalling and signing included.
	OutsideP50MS float64 `json:"outside_p50_ms"`
	// OutsideExclSDKP50MS subtracts whole DynamoDB SDK calls instead.
	OutsideExclSDKP50MS float64 `json:"outside_excl_sdk_p50_ms"`
	Iterations          int     `json:"iterations"`
}

// account is one user the operations walk through their life.
type account struct {
	email, password, id, token, code, newEmail, emailCode string
	apiKey                                                string // apikeys.go
}

type request struct {
	method, path string
	body         any
	token        string
	// authorization replaces Token <token> (an API key, apikeys.go).
	authorization string
	want          int
}

// call is one measured request.
type call struct {
	latency  time.Duration
	handler  handlerCall
	requests int
	byOp     map[string]int
	capacity float64
	rru, wru float64
	body     []byte
	header   http.Header
	// queryItems are the items the call's Queries read.
	queryItems int64
}

// do sends one request to the local API and measures it.
func (st *stack) do(ctx context.Context, rq request) (call, error) {
	var body io.Reader
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return call{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, st.server.URL+rq.path, body)
	if err != nil {
		return call{}, err
	}
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.token != "" {
		req.Header.Set("Authorization", testenv.Token(rq.token))
	}
	if rq.authorization != "" {
		req.Header.Set("Authorization", rq.authorization)
	}
	st.env.Requests.Reset()
	before := st.calls.snapshot()
	t := time.Now()
	res, err := st.client.Do(req)
	if err != nil {
		return call{}, err
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	lat := time.Since(t)
	if err != nil {
		return call{}, err
	}
	after := st.calls.snapshot()
	lat -= after.overhead - before.overhead
	snap := st.env.Requests.Snapshot()
	if res.StatusCode != rq.want {
		return call{}, fmt.Errorf("%s %s: %d, want %d: %s", rq.method, rq.path, res.StatusCode, rq.want, b)
	}
	return call{
		latency: lat, handler: st.lastCall(), requests: snap.Requests, byOp: snap.ByOp, capacity: snap.Capacity,
		rru: after.rru - before.rru, wru: after.wru - before.wru, body: b, header: res.Header,
		queryItems: after.queryItems - before.queryItems,
	}, nil
}

// opSpec is how to run one operation once per account (or, for the list
// operations, once per iteration as the staff account).
type opSpec struct {
	name, route, function string
	hashes                int
	optional              bool                                                 // failures become a note
	prepare               func(ctx context.Context, accounts []*account) error // untimed, before the first call
	req                   func(a *account) request
	after                 func(a *account, c call) error
}

// listSetup is the list route and the staff account that reads it.
type listSetup struct {
	path  string
	staff *account
	users int
}

const newPassword = "amber-Kettle-58-harbour"

var codePattern = regexp.MustCompile(`[?&]code=([A-Za-z0-9_-]+)`)

// codes reads each account's code from the mail with subject sent to the
// address addr picks, as a person reads it from their inbox.
func (st *stack) codes(ctx context.Context, accounts []*account, subject string, addr func(*account) string, set func(*account, string)) error {
	for _, a := range accounts {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		m, err := st.env.Inbox.WaitFor(wctx, addr(a), func(m localstack.Mail) bool { return strings.Contains(m.Subject, subject) })
		cancel()
		if err != nil {
			return err
		}
		sm := codePattern.FindStringSubmatch(m.Text)
		if sm == nil {
			return fmt.Errorf("mail %q to %s has no code link", subject, addr(a))
		}
		set(a, sm[1])
	}
	return nil
}

func field(b []byte, name string) string {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s, _ := m[name].(string)
	return s
}

// relogin is a login that takes the account's new token.
func relogin(name string, login func(*account) string) opSpec {
	return opSpec{name: name, route: "POST /api/auth/login", function: "LoginFunction", hashes: 1,
		req: func(a *account) request {
			return request{method: "POST", path: "/api/auth/login", body: map[string]any{"login": login(a), "password": a.password}, want: 200}
		},
		after: func(a *account, c call) error {
			if a.token = field(c.body, "token"); a.token == "" {
				return fmt.Errorf("login answered no token: %s", c.body)
			}
			return nil
		}}
}

func (st *stack) specs(list *listSetup) []opSpec {
	self := func(a *account, suffix string) string { return "/api/users/" + a.id + suffix }
	specs := []opSpec{
		{name: "sign-up", route: "POST /api/users", function: "SignUpFunction", hashes: 1,
			req: func(a *account) request {
				return request{method: "POST", path: "/api/users", body: map[string]any{"email": a.email, "password": a.password}, want: 201}
			},
			after: func(a *account, c call) error {
				if a.id = field(c.body, "uuid"); a.id == "" {
					return fmt.Errorf("sign-up answered no uuid: %s", c.body)
				}
				return nil
			}},
		{name: "activate", route: "POST /api/auth/activate", function: "ActivateFunction",
			prepare: func(ctx context.Context, accounts []*account) error {
				return st.codes(ctx, accounts, "Activate", func(a *account) string { return a.email }, func(a *account, c string) { a.code = c })
			},
			req: func(a *account) request {
				return request{method: "POST", path: "/api/auth/activate", body: map[string]any{"code": a.code, "password": a.password}, want: 200}
			}},
		{name: "login (issues a token)", route: "POST /api/auth/login", function: "LoginFunction", hashes: 1,
			req: func(a *account) request {
				return request{method: "POST", path: "/api/auth/login", body: map[string]any{"login": a.email, "password": a.password}, want: 200}
			},
			after: func(a *account, c call) error {
				if a.token = field(c.body, "token"); a.token == "" {
					return fmt.Errorf("login answered no token: %s", c.body)
				}
				return nil
			}},
		{name: "login (returns the current token)", route: "POST /api/auth/login", function: "LoginFunction", hashes: 1,
			req: func(a *account) request {
				return request{method: "POST", path: "/api/auth/login", body: map[string]any{"login": a.email, "password": a.password}, want: 200}
			}},
		{name: "GET /api/users/me", route: "GET /api/users/me", function: "MeFunction",
			req: func(a *account) request {
				return request{method: "GET", path: "/api/users/me", token: a.token, want: 200}
			}},
		{name: "PATCH /api/users/{uuid}", route: "PATCH /api/users/{uuid}", function: "UpdateUserFunction",
			req: func(a *account) request {
				return request{method: "PATCH", path: self(a, ""), token: a.token, body: map[string]any{"job_title": "Engineer", "organization": "Bench"}, want: 200}
			}},
		{name: "refresh token", route: "POST /api/users/{uuid}/refresh_token", function: "RefreshTokenFunction",
			req: func(a *account) request {
				return request{method: "POST", path: self(a, "/refresh_token"), token: a.token, want: 200}
			},
			after: func(a *account, c call) error {
				if a.token = field(c.body, "token"); a.token == "" {
					return fmt.Errorf("refresh answered no token: %s", c.body)
				}
				return nil
			}},
		{name: "change email", route: "POST /api/users/{uuid}/change_email", function: "ChangeEmailFunction",
			req: func(a *account) request {
				return request{method: "POST", path: self(a, "/change_email"), token: a.token, body: map[string]any{"email": a.newEmail}, want: 200}
			}},
		{name: "confirm email", route: "POST /api/users/confirm_email", function: "ConfirmEmailFunction",
			prepare: func(ctx context.Context, accounts []*account) error {
				return st.codes(ctx, accounts, "Confirm your new email", func(a *account) string { return a.newEmail }, func(a *account, c string) { a.emailCode = c })
			},
			req: func(a *account) request {
				return request{method: "POST", path: "/api/users/confirm_email", token: a.token, body: map[string]any{"code": a.emailCode}, want: 200}
			}},
		// A confirmed email change and a password change each move the
		// credential epoch on, which ends the token: the account logs in
		// again after each, as a person would.
		relogin("login (after the email change)", func(a *account) string { return a.newEmail }),
		{name: "change password", route: "POST /api/users/{uuid}/change_password", function: "ChangePasswordFunction", hashes: 2,
			req: func(a *account) request {
				return request{method: "POST", path: self(a, "/change_password"), token: a.token,
					body: map[string]any{"current_password": a.password, "new_password": newPassword}, want: 200}
			},
			after: func(a *account, _ call) error { a.password = newPassword; return nil }},
		relogin("login (after the password change)", func(a *account) string { return a.newEmail }),
	}
	if list != nil {
		page := func(name, query string) opSpec {
			return opSpec{name: name, route: "GET " + list.path, function: listFunction, optional: true,
				req: func(*account) request {
					return request{method: "GET", path: list.path + "?" + query, token: list.staff.token, want: 200}
				},
				after: func(_ *account, c call) error {
					var page []json.RawMessage
					if err := json.Unmarshal(c.body, &page); err != nil {
						return fmt.Errorf("the list is not a JSON array: %.200s", c.body)
					}
					if len(page) != 50 {
						return fmt.Errorf("a page of %d users, want 50", len(page))
					}
					return nil
				}}
		}
		n := thousands(list.users)
		deep := max(2, list.users/100) // a page in the middle of the list
		specs = append(specs,
			page("list users: page 1 (50 of "+n+")", "page_size=50"),
			page(fmt.Sprintf("list users: page %d (50 of %s)", deep, n), fmt.Sprintf("page_size=50&page=%d", deep)),
			page("list users: filtered page, indexed (is_active=true)", "is_active=true&page_size=50"),
			page("list users: filtered page, indexed (organization=Org-07)", "organization=Org-07&page_size=50"),
		)
	}
	specs = withAPIKeys(specs)
	specs = append(specs, opSpec{name: "self-delete", route: "DELETE /api/users", function: "DeleteSelfFunction",
		req: func(a *account) request {
			return request{method: "DELETE", path: "/api/users", token: a.token, want: 200}
		}})
	return specs
}

// listOperationNames are the list operations as reported when they cannot
// run.
var listOperationNames = []string{"list users: page 1 (50 of 10,000)", "list users: filtered page"}

// phase runs every operation over n fresh accounts, one operation at a
// time, and returns each operation's calls in order.
func (st *stack) phase(ctx context.Context, label string, n int, specs []opSpec) (map[string][]call, map[string]error, error) {
	accounts := make([]*account, n)
	for i := range accounts {
		accounts[i] = &account{email: testenv.Email("bench-" + label), newEmail: testenv.Email("bench-" + label + "-new"), password: testenv.DefaultPassword}
	}
	calls := map[string][]call{}
	failed := map[string]error{}
	for _, sp := range specs {
		err := func() error {
			if sp.prepare != nil {
				if err := sp.prepare(ctx, accounts); err != nil {
					return fmt.Errorf("%s: %w", sp.name, err)
				}
			}
			for _, a := range accounts {
				c, err := st.do(ctx, sp.req(a))
				if err == nil && sp.after != nil {
					err = sp.after(a, c)
				}
				if err != nil {
					return fmt.Errorf("%s: %w", sp.name, err)
				}
				calls[sp.name] = append(calls[sp.name], c)
			}
			return nil
		}()
		if err != nil && sp.optional {
			failed[sp.name] = err
			logf("phase %s: %v (reported as not measured)", label, err)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("phase %s: %w", label, err)
		}
	}
	return calls, failed, nil
}

// cheapParams make argon2id nearly free, for phase B and for seeding.
func cheapParams() func() {
	real := secret.PasswordParams
	p := *real
	p.Memory, p.Iterations = 8, 1
	secret.PasswordParams = &p
	return func() { secret.PasswordParams = real }
}

// operations measures every operation: phase A with production hashing for
// latency, requests, capacity and sends; phase B with argon2id made nearly
// free for the time outside DynamoDB, SES and hashing.
func (st *stack) operations(ctx context.Context, s settings) ([]Operation, []string, error) {
	var notes []string
	n := s.iterations + s.warmup
	list, note, err := st.setupList(ctx, s, n)
	if err != nil {
		return nil, nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	specs := st.specs(list)

	logf("phase A (argon2id as in production): %d operations x %d runs", len(specs), n)
	runtime.GC()
	a, failedA, err := st.phase(ctx, "a", n, specs)
	if err != nil {
		return nil, nil, err
	}

	restore := cheapParams()
	cheap, err := hashTime(50)
	if err != nil {
		restore()
		return nil, nil, err
	}
	logf("phase B (argon2id made cheap, %.3f ms a hash): handler time outside DynamoDB, SES and hashing", cheap)
	runtime.GC()
	b, failedB, err := st.phase(ctx, "b", n, specs)
	restore()
	if err != nil {
		return nil, nil, err
	}

	var ops []Operation
	for _, sp := range specs {
		o := Operation{Name: sp.name, Route: sp.route, Function: sp.function, PasswordHashes: sp.hashes}
		if err := errors.Join(failedA[sp.name], failedB[sp.name]); err != nil {
			o.Note = "not measured: " + err.Error()
			ops = append(ops, o)
			continue
		}
		ops = append(ops, summarizeOp(o, a[sp.name][s.warmup:], b[sp.name][s.warmup:], cheap))
	}
	if list == nil {
		for _, name := range listOperationNames {
			ops = append(ops, Operation{Name: name, Route: "GET /api/users", Function: listFunction, Note: "not measured: " + note})
		}
	}
	return ops, notes, nil
}

func summarizeOp(o Operation, a, b []call, cheapHashMS float64) Operation {
	o.Measured, o.Iterations = true, len(a)
	o.DynamoDBRequestsMin = a[0].requests
	var lat, handler, ddb, ses []time.Duration
	var capTotal, rru, wru float64
	for _, c := range a {
		lat = append(lat, c.latency)
		handler = append(handler, c.handler.handler)
		ddb = append(ddb, c.handler.ddbWire)
		ses = append(ses, c.handler.sesWire)
		o.DynamoDBRequests = max(o.DynamoDBRequests, c.requests)
		o.DynamoDBRequestsMin = min(o.DynamoDBRequestsMin, c.requests)
		o.SESSends = max(o.SESSends, int(c.handler.sesSends))
		capTotal += c.capacity
		rru += c.rru
		wru += c.wru
	}
	o.DynamoDBByOp = a[len(a)-1].byOp
	n := float64(len(a))
	o.CapacityUnits, o.RRU, o.WRU = round2(capTotal/n), round2(rru/n), round2(wru/n)
	sl := summarize(lat)
	o.P50MS, o.P95MS = sl.p50, sl.p95
	o.HandlerP50MS, o.DynamoDBP50MS, o.SESP50MS = summarize(handler).p50, summarize(ddb).p50, summarize(ses).p50

	var outside, outsideSDK []float64
	hash := float64(o.PasswordHashes) * cheapHashMS
	for _, c := range b {
		h := c.handler
		outside = append(outside, ms(h.handler-h.ddbWire-h.sesWire)-hash)
		outsideSDK = append(outsideSDK, ms(h.handler-h.ddbSDK-h.sesWire)-hash)
	}
	o.OutsideP50MS, o.OutsideExclSDKP50MS = summarizeF(outside).p50, summarizeF(outsideSDK).p50
	return o
}

// setupList finds the list route; when there is one it seeds the table to
// s.listUsers users (through users.Service.AdminCreate, with cheap hashing)
// and makes the staff account that lists them.
func (st *stack) setupList(ctx context.Context, s settings, accountsPerPhase int) (*listSetup, string, error) {
	path := ""
	for _, r := range st.tpl.Routes {
		if r.FunctionID == listFunction && (r.Method == "GET" || r.Method == "ANY") && r.Path != localstack.DefaultRoute {
			path = r.Path
			break
		}
	}
	if _, ok := st.env.API.Handlers()[listFunction]; !ok || path == "" {
		return nil, "no " + listFunction + " with a GET route in template.yaml and api.API.Handlers yet, so the list operations did not run", nil
	}
	staffEmail := testenv.Email("bench-staff")
	staffUser, err := st.env.API.Users.EnsureStaff(ctx, staffEmail, testenv.DefaultPassword, true, false)
	if err != nil {
		return nil, "", err
	}
	login, err := st.do(ctx, request{method: "POST", path: "/api/auth/login", body: map[string]any{"login": staffEmail, "password": testenv.DefaultPassword}, want: 200})
	if err != nil {
		return nil, "", err
	}
	staff := &account{email: staffEmail, id: staffUser.UUID, token: field(login.body, "token")}
	seed := s.listUsers - 1 - accountsPerPhase
	logf("seeding %d users (the table then holds %d during each phase's list operations)", seed, s.listUsers)
	if err := st.seed(ctx, seed); err != nil {
		return nil, "", err
	}
	// The seed's stream records (events for every seeded user) are handled
	// before the measured phases, whose mails would otherwise queue behind
	// them (one shard, handled in order, as on AWS).
	drain, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := st.env.Stream.Drain(drain); err != nil {
		return nil, "", err
	}
	return &listSetup{path: path, staff: staff, users: s.listUsers}, fmt.Sprintf(
		"list operations: %d users seeded through users.Service.AdminCreate (pkg/users has no seeding helper), ENABLED, usernames like people's (first.last<n>) so they spread over the list's username buckets, organizations Org-00..Org-19 (a filter on one matches 1 in 20)", seed), nil
}

// seed creates n users with distinct profiles, four at a time.
func (st *stack) seed(ctx context.Context, n int) error {
	restore := cheapParams()
	defer restore()
	st.calls.modelOn.Store(false)
	defer st.calls.modelOn.Store(true)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				first, last := seedFirst[i%len(seedFirst)], seedLast[(i/len(seedFirst))%len(seedLast)]
				username := fmt.Sprintf("%s.%s%d", strings.ToLower(first), strings.ToLower(last), i)
				email := username + "@example.com"
				org, job := fmt.Sprintf("Org-%02d", i%20), fmt.Sprintf("Job %d", i%7)
				pw := testenv.DefaultPassword
				in := users.ProfileInput{Username: &username, Email: &email, Password: &pw, FirstName: &first, LastName: &last, Organization: &org, JobTitle: &job}
				if _, err := st.env.API.Users.AdminCreate(ctx, in); err != nil {
					errs <- fmt.Errorf("seeding user %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Seeded users are named like people, so that their usernames spread over
// the list's username buckets (their first three letters) as real ones do.
var (
	seedFirst = strings.Fields("Ada Alan Amara Anna Ben Bruno Carla Chen Dana Diego Elena Emil Fatima Felix Grace Gustav Hana Hugo Ines Ivan " +
		"Jana Jonas Kai Kemal Lara Leon Maria Mateo Nadia Noah Olga Omar Paula Pedro Quinn Rafael Rosa Ruth Sara Simon " +
		"Tara Tomas Uma Uri Vera Victor Wanda Wei Xenia Yara Yusuf Zoe Zoltan Aiko Bilal Chloe Dmitri Eva Farid Gita")
	seedLast = strings.Fields("Smith Garcia Novak Tanaka Okafor Rossi Muller Kim Silva Haddad Jensen Kowalski Nguyen Patel Schmidt Dubois Costa Ivanova Larsen Moreau")
)

// hashTime is the median time of secret.HashPassword in milliseconds,
// after two warm-ups.
func hashTime(runs int) (float64, error) {
	xs := make([]float64, 0, runs)
	for i := 0; i < runs+2; i++ {
		t := time.Now()
		if _, err := secret.HashPassword(testenv.DefaultPassword); err != nil {
			return 0, err
		}
		if i >= 2 {
			xs = append(xs, ms(time.Since(t)))
		}
	}
	sort.Float64s(xs)
	if len(xs)%2 == 0 {
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2, nil
	}
	return xs[len(xs)/2], nil
}
