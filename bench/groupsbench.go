package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/testenv"
)

// GroupsBench is the groups part measured (docs/GROUPS.md "Budgets"): a
// group of Members members, each case run Runs times.
type GroupsBench struct {
	// Measured is when this part ran (-only-groups keeps the rest).
	Measured string       `json:"measured,omitempty"`
	Members  int          `json:"members"`
	Runs     int          `json:"runs"`
	Cases    []GroupsCase `json:"cases"`
}

// GroupsCase is one operation's cost.
type GroupsCase struct {
	Name string `json:"name"`
	// Budget is what docs/GROUPS.md promises, in DynamoDB requests
	// (authentication included); Transactions the TransactWriteItems.
	Budget       int            `json:"budget"`
	Requests     int            `json:"requests"` // the most any run made
	Transactions int            `json:"transactions"`
	ByOp         map[string]int `json:"by_op"`
	P50MS        float64        `json:"p50_ms"`
	P95MS        float64        `json:"p95_ms"`
	Capacity     float64        `json:"capacity_units"`
	Within       bool           `json:"within_budget"`
}

// groupsBench builds an application with a group of members members (a
// few real accounts, the rest grants written straight to the table) and
// times the membership routes and the scope-filtered list on it, with a
// token and with an API key, and the API key operations.
func (st *stack) groupsBench(ctx context.Context, members, runs int) (*GroupsBench, error) {
	login := func(prefix string, staff bool) (string, string, error) {
		email := strings.ToLower(testenv.Email(prefix))
		u, err := st.env.API.Users.EnsureStaff(ctx, email, testenv.DefaultPassword, staff, false)
		if err != nil {
			return "", "", err
		}
		c, err := st.do(ctx, request{method: http.MethodPost, path: "/api/auth/login", want: http.StatusOK, body: map[string]any{"login": email, "password": testenv.DefaultPassword}})
		if err != nil {
			return "", "", err
		}
		var out struct{ Token string }
		if err := json.Unmarshal(c.body, &out); err != nil {
			return "", "", err
		}
		return u.UUID, out.Token, nil
	}
	_, staff, err := login("bench-groups-staff", true)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	create := func(path string, body map[string]any, kind string) (string, error) {
		c, err := st.do(ctx, request{method: http.MethodPost, path: path, token: staff, want: http.StatusCreated, body: body})
		if err != nil {
			return "", err
		}
		var out struct {
			Econtext struct {
				Result map[string]struct{ ID string } `json:"result"`
			} `json:"econtext"`
		}
		if err := json.Unmarshal(c.body, &out); err != nil {
			return "", err
		}
		return out.Econtext.Result[kind].ID, nil
	}
	app, err := create("/api/applications/application", map[string]any{"name": "bench application"}, "application")
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	group, err := create("/api/groups/group", map[string]any{"name": "bench group", "application": app}, "group")
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	const real = 3
	var memberID, memberToken, joinerID string
	for i := range real + 1 {
		id, tok, err := login(fmt.Sprintf("bench-groups-%d", i), false)
		if err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		if i == real {
			joinerID = id // joins and leaves in the add_user/delete_user cases
			break
		}
		memberID, memberToken = id, tok
		if _, err := st.do(ctx, request{method: http.MethodPost, path: "/api/groups/group/" + group + "/add_user", token: staff, want: http.StatusCreated,
			body: map[string]any{"user": id, "role": "member"}}); err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
	}
	// An admin of the application who is not in the group: list_users
	// reads their grant on the application in the authentication's request.
	adminID, adminToken, err := login("bench-groups-admin", false)
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	if _, err := st.do(ctx, request{method: http.MethodPost, path: "/api/applications/application/" + app + "/add_user", token: staff, want: http.StatusCreated,
		body: map[string]any{"user": adminID, "role": "admin"}}); err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	if err := st.bulkGrants(ctx, app, group, members-real); err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	// The member's API key for the keyed cases, used once (its first use
	// records last_used_at, measured in a case of its own).
	keys := "/api/users/" + memberID + "/apikeys"
	newKey := func() (id, key string, err error) {
		c, err := st.do(ctx, request{method: http.MethodPost, path: keys, token: memberToken, want: http.StatusCreated, body: map[string]any{"name": "bench"}})
		if err != nil {
			return "", "", err
		}
		return field(c.body, "id"), field(c.body, "key"), nil
	}
	revoke := func(id string) error {
		_, err := st.do(ctx, request{method: http.MethodDelete, path: keys + "/" + id, token: memberToken, want: http.StatusNoContent})
		return err
	}
	_, memberKey, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	keyed := func(method, path string) request {
		return request{method: method, path: path, authorization: "Api-Key " + memberKey, want: http.StatusOK}
	}
	warm := keyed(http.MethodGet, "/api/users/me") // records last_used_at when a minute passed: not measured
	if _, err := st.do(ctx, warm); err != nil {
		return nil, fmt.Errorf("groups: %w", err)
	}
	var fresh string // a key made before each first-use run, revoked after
	gp := "/api/groups/group/" + group
	cases := []struct {
		name   string
		budget int
		rq     request
		then   *request // run after each measured call, not measured (undoes it)
		before *request // run before each measured call, not measured
		// prepare builds the measured request, unmeasured work included;
		// after undoes it (the API key cases).
		prepare func() (request, error)
		after   func(c call) error
	}{
		{name: "GET /api/users/me with grants", budget: 2, rq: request{method: http.MethodGet, path: "/api/users/me", token: memberToken, want: http.StatusOK}},
		{name: fmt.Sprintf("list_users page (group of %d)", members), budget: 2, rq: request{method: http.MethodGet, path: gp + "/list_users?page=7&page_size=50", token: staff, want: http.StatusOK}},
		{name: fmt.Sprintf("list_users page by a member with an API key (group of %d)", members), budget: 2, rq: keyed(http.MethodGet, gp+"/list_users?role=member&page=60&page_size=50"), before: &warm},
		{name: fmt.Sprintf("list_users page by an application admin not in the group (group of %d)", members), budget: 2,
			rq: request{method: http.MethodGet, path: gp + "/list_users?page_size=50", token: adminToken, want: http.StatusOK}},
		{name: fmt.Sprintf("GET /api/users?project_uuid= page (group of %d)", members), budget: 2, rq: request{method: http.MethodGet, path: "/api/users?project_uuid=" + group + "&page_size=45", token: memberToken, want: http.StatusOK}},
		{name: fmt.Sprintf("GET /api/users?customer_uuid= page with an API key (group of %d)", members), budget: 2, rq: keyed(http.MethodGet, "/api/users?customer_uuid="+app+"&page_size=45"), before: &warm},
		{name: "add_user (one transaction)", budget: 4, rq: request{method: http.MethodPost, path: gp + "/add_user", token: staff, want: http.StatusCreated, body: map[string]any{"user": joinerID, "role": "member"}},
			then: &request{method: http.MethodPost, path: gp + "/delete_user", token: staff, want: http.StatusNoContent, body: map[string]any{"user": joinerID}}},
		{name: "delete_user (one transaction)", budget: 3, rq: request{method: http.MethodPost, path: gp + "/delete_user", token: staff, want: http.StatusNoContent, body: map[string]any{"user": joinerID}},
			before: &request{method: http.MethodPost, path: gp + "/add_user", token: staff, want: http.StatusCreated, body: map[string]any{"user": joinerID, "role": "member"}}},
		{name: "API key: create", budget: 3, rq: request{method: http.MethodPost, path: keys, token: memberToken, want: http.StatusCreated, body: map[string]any{"name": "bench"}},
			after: func(c call) error { return revoke(field(c.body, "id")) }},
		{name: "API key: list", budget: 2, rq: request{method: http.MethodGet, path: keys, token: memberToken, want: http.StatusOK}},
		{name: "API key: revoke", budget: 3, prepare: func() (request, error) {
			id, _, err := newKey()
			return request{method: http.MethodDelete, path: keys + "/" + id, token: memberToken, want: http.StatusNoContent}, err
		}},
		{name: "API key: GET /api/users/me", budget: 2, rq: keyed(http.MethodGet, "/api/users/me"), before: &warm},
		{name: "API key: GET /api/users/me (first use, records last_used_at)", budget: 3, prepare: func() (request, error) {
			id, key, err := newKey()
			fresh = id
			return request{method: http.MethodGet, path: "/api/users/me", authorization: "Api-Key " + key, want: http.StatusOK}, err
		}, after: func(call) error { return revoke(fresh) }},
	}
	out := &GroupsBench{Members: members, Runs: runs}
	for _, c := range cases {
		gc := GroupsCase{Name: c.name, Budget: c.budget, ByOp: map[string]int{}}
		var lat []time.Duration
		for range runs {
			if c.before != nil {
				if _, err := st.do(ctx, *c.before); err != nil {
					return nil, fmt.Errorf("groups %s: %w", c.name, err)
				}
			}
			rq := c.rq
			if c.prepare != nil {
				if rq, err = c.prepare(); err != nil {
					return nil, fmt.Errorf("groups %s: %w", c.name, err)
				}
			}
			got, err := st.do(ctx, rq)
			if err != nil {
				return nil, fmt.Errorf("groups %s: %w", c.name, err)
			}
			if c.after != nil {
				if err := c.after(got); err != nil {
					return nil, fmt.Errorf("groups %s: %w", c.name, err)
				}
			}
			lat = append(lat, got.latency)
			if got.requests > gc.Requests {
				gc.Requests, gc.ByOp = got.requests, got.byOp
			}
			gc.Transactions = max(gc.Transactions, got.byOp["TransactWriteItems"])
			gc.Capacity = max(gc.Capacity, got.capacity)
			if c.then != nil {
				if _, err := st.do(ctx, *c.then); err != nil {
					return nil, fmt.Errorf("groups %s: %w", c.name, err)
				}
			}
		}
		s := summarize(lat)
		gc.P50MS, gc.P95MS = s.p50, s.p95
		gc.Within = gc.Requests <= gc.Budget
		out.Cases = append(out.Cases, gc)
		logf("groups: %s: %d requests %v, p50 %.2f ms", c.name, gc.Requests, gc.ByOp, gc.P50MS)
	}
	return out, nil
}

// bulkGrants writes n member grants on group (and their mirrors in app)
// straight to the table, for users that do not exist.
func (st *stack) bulkGrants(ctx context.Context, app, group string, n int) error {
	now := time.Now().UTC().Format(time.RFC3339)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	var reqs []types.WriteRequest
	flush := func() error {
		for len(reqs) > 0 {
			out, err := st.env.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{st.env.Config.TableName: reqs}})
			if err != nil {
				return err
			}
			reqs = out.UnprocessedItems[st.env.Config.TableName]
		}
		return nil
	}
	for i := range n {
		user := fmt.Sprintf("ffffffff-0000-4000-8000-%012d", i)
		for _, k := range [][2]string{{"SCOPE#" + group, "M#" + user}, {"SCOPE#" + app, "N#" + user + "#" + group}} {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": s(k[0]), "sk": s(k[1]), "r": s("member"), "c": s(now)}}})
			if len(reqs) == 25 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// onlyGroups measures the groups part and puts it into the existing
// results.
func onlyGroups(ctx context.Context, root string, s settings, prices *Prices, memory memorySizes) error {
	return onlyPart(ctx, root, s, prices, memory, func(st *stack, res *Results) (err error) {
		if res.Groups, err = st.groupsBench(ctx, 5000, 10); err != nil {
			return err
		}
		res.Groups.Measured = measuredNow()
		return nil
	})
}

// groupsReport is the report's section on groups.
func groupsReport(g *GroupsBench, ops []Operation) string {
	if g == nil {
		return ""
	}
	keyedOps := false // the Operations table has the API key rows (a full run since apikeys.go)
	for _, o := range ops {
		keyedOps = keyedOps || strings.HasPrefix(o.Name, "API key:")
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Groups and role grants\n\n")
	if g.Measured != "" {
		w("Measured by one run of this part (`go run ./bench -only-groups`) on %s.\n\n", g.Measured)
	}
	w("A group of %d members (3 accounts, the rest grants written straight to the table); each case run %d times. Budgets from docs/GROUPS.md and docs/APIKEYS.md, authentication included (a list page: the Query of the scope, then one BatchGetItem that authenticates the caller and reads the page). The API key operations are the member's, with their token (create, list, revoke) or their key.\n\n", g.Members, g.Runs)
	w("| operation | budget | requests | transactions | by operation | p50 ms | p95 ms | within |\n|---|---:|---:|---:|---|---:|---:|---|\n")
	for _, c := range g.Cases {
		within := "yes"
		if !c.Within {
			within = "**no**"
		}
		w("| %s | %d | %d | %d | %v | %.2f | %.2f | %s |\n", c.Name, c.Budget, c.Requests, c.Transactions, c.ByOp, c.P50MS, c.P95MS, within)
	}
	w("\n")
	if !keyedOps {
		w("The Operations table below comes from a full run made before it measured API keys; until the next full run (`make bench`), the API key rows above are their measured cost.\n\n")
	}
	return b.String()
}
