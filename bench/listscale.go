package main

// The list at scale: GET /api/users on a table of s.listScale users (100,000
// by default), seeded in bulk (users.SeedListed: the service's own item
// builders, written with BatchWriteItem), every list case at page 1 and a
// deep page, with the figures for 1,000,000 users extrapolated from the
// measured requests and items read.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// ListScale is the list-at-scale section of the results.
type ListScale struct {
	// Measured is when this part ran (a run with -list-scale 0 keeps it).
	Measured string `json:"measured,omitempty"`
	// Concurrent: it ran while the import ran on another stack.
	Concurrent  bool       `json:"concurrent,omitempty"`
	Users       int        `json:"users"`
	SeedSeconds float64    `json:"seed_seconds"`
	Iterations  int        `json:"iterations"`
	Cases       []ListCase `json:"cases"`
	Method      string     `json:"method"`
	// WordLists: the stack kept word lists (WORD_LISTS=1) and the users
	// were seeded with theirs; else WORD_LISTS=0, seeded without.
	WordLists bool `json:"word_lists"`
	// Stream is what the stream function did for users imported into the
	// seeded table afterwards (word lists on).
	Stream *ScaleStream `json:"stream,omitempty"`
	// Note is a caveat kept with the figures (what the run's code was),
	// printed under the section's heading.
	Note string `json:"note,omitempty"`
}

// ScaleStream is the stream function's work for users imported into a
// table with word lists: their word list entries and counts, the events,
// the markers, priced as DynamoDB bills them (the bench's transaction
// model, capacity.go).
type ScaleStream struct {
	Users           int     `json:"users"`
	Records         int     `json:"records"`
	Requests        int     `json:"dynamodb_requests"`
	RequestsPerUser float64 `json:"requests_per_user"`
	WRUPerUser      float64 `json:"wru_per_user"`
	RRUPerUser      float64 `json:"rru_per_user"`
	// USDPerMillion prices a million such users' stream writes and reads
	// (DynamoDB only).
	USDPerMillion float64 `json:"usd_per_million_users"`
	DrainSeconds  float64 `json:"drain_seconds"`
}

// ListCase is one list request, measured.
type ListCase struct {
	Name       string         `json:"name"`
	Query      string         `json:"query"`
	Plan       string         `json:"plan"` // page, entries, scan, refused
	Page       int            `json:"page"`
	Status     int            `json:"status"`
	Results    int            `json:"results"` // X-Result-Count
	Requests   int            `json:"requests"`
	ByOp       map[string]int `json:"by_op"`
	Capacity   float64        `json:"capacity_units"`
	QueryItems int64          `json:"query_items"` // items the Queries read
	P50MS      float64        `json:"p50_ms"`
	// At 1,000,000 users, extrapolated (see ListScale.Method).
	Requests1M int    `json:"requests_1m"`
	Status1M   int    `json:"status_1m"`
	Note1M     string `json:"note_1m,omitempty"`
}

const listScaleMethod = "Extrapolation to 1,000,000 users (the table grown to a million, the same distribution of names, organizations and flags; 10× at 100,000 users): " +
	"a plan that reads one page (plan `page`: the count items in the authentication's BatchGetItem, one Query from the page's bucket, and for an entry list one BatchGetItem of the page's users) makes the same requests at any size, so its 1M figure is the measured one (its count items hold more buckets, so their read costs more capacity, not more requests). " +
	"A plan that reads every match (`entries`: index entries read whole; `scan`: a user list read whole) reads that many times the items: its Queries become ⌈factor × items read / items per Query⌉, items per Query being the measured items read / Queries when more than one Query ran, else ~3,000 entries or ~2,000 users (1 MB, the sizes TestListAtScale measures); the other requests stay. " +
	"Where the items read, so grown, pass the service's limits (20,000 entries or users read whole, or 1,000 users to read one by one), the 1M answer is the 400 asking for a filter: after the first request when the counts read there show it, after reading 20,000 entries for a search word (which has no count)."

// listScaleCase is a case to measure: its query and plan; deep asks for a
// page in the middle too.
type listScaleCase struct {
	name, query, plan string
	deep              bool
	want              int // expected status
	// word: one search value of up to 12 letters, alone: its word list
	// answers it when the stack keeps them (plan page).
	word bool
}

// listScaleCases are the cases to measure; words: the stack keeps word
// lists.
func listScaleCases(us []*users.User, words bool) []listScaleCase {
	phone, civil := "", ""
	for _, u := range us {
		if phone == "" && u.PhoneNumber != "" {
			phone = u.PhoneNumber
		}
		if civil == "" && u.CivilNumber != "" {
			civil = u.CivilNumber
		}
	}
	esc := url.QueryEscape
	cases := []listScaleCase{
		{"everyone, by username", "", "page", true, 200, false},
		{"everyone, -username", "o=-username", "page", true, 200, false},
		{"everyone, newest first", "o=-date_joined", "page", true, 200, false},
		{"everyone, oldest first", "o=date_joined", "page", true, 200, false},
		{"is_active=false", "is_active=false", "page", true, 200, false},
		{"is_staff=true", "is_staff=true", "page", true, 200, false},
		{"organization", "organization=Org-07", "page", true, 200, false},
		{"organization + is_active", "organization=org-07&is_active=false", "page", true, 200, false},
		{"job_title + is_staff", "job_title=" + esc("Job 3") + "&is_staff=false", "page", true, 200, false},
		{"registration_method + is_support", "registration_method=saml2&is_support=true", "page", true, 200, false},
		{"native_name", "native_name=" + esc("мария"), "page", true, 200, false},
		{"phone_number (one user)", "phone_number=" + esc(phone), "page", false, 200, false},
		{"civil_number (one user)", "civil_number=" + esc(strings.ToLower(civil)), "page", false, 200, false},
		{"query, one letter", "query=m", "page", true, 200, false},
		{"query, two letters", "query=Ma", "page", true, 200, false},
		{"user_keyword, accented letter", "user_keyword=" + esc("Ö"), "page", true, 200, false},
		{"query, a first name", "query=maria", "entries", true, 200, true},
		{"query, a last name", "query=garcia", "entries", true, 200, true},
		{"query, accents", "query=" + esc("JOSÉ"), "entries", true, 200, true},
		{"query, two words", "query=" + esc("maria garcia"), "entries", true, 200, true},
		{"query, across a separator", "query=" + esc("anna.smith"), "entries", true, 200, true},
		{"user_keyword, an address across the @", "user_keyword=" + esc(strings.TrimSuffix(us[len(us)/2].Email, "ample.com")), "entries", false, 200, false},
		{"first_name", "first_name=ada", "entries", true, 200, true},
		{"last_name + is_active", "last_name=" + esc("müller") + "&is_active=true", "entries", true, 200, false},
		{"full_name", "full_name=" + esc("elena k"), "entries", true, 200, true},
		{"organization + query", "organization=Org-07&query=ma", "entries", true, 200, false},
		{"organization + two flags", "organization=Org-07&is_active=true&is_staff=false", "page", true, 200, false},
		{"job_title + three flags", "job_title=" + esc("Job 3") + "&is_active=true&is_staff=false&is_support=false", "page", true, 200, false},
		{"two exact filters", "organization=Org-07&job_title=" + esc("Job 3"), "entries", true, 200, false},
		{"ordered by email, staff only", "o=email&is_staff=true", "scan", false, 200, false},
		{"two flags", "is_staff=true&is_active=false", "page", true, 200, false},
		{"two flags, most users", "is_active=true&is_support=false", "page", true, 200, false},
		{"three flags", "is_active=true&is_staff=false&is_support=false", "page", true, 200, false},
	}
	// Past the scan limit, these read too much and are refused; below it
	// they are answered in memory.
	big := len(us) > users.DefaultListScanLimit
	for _, c := range []listScaleCase{{"ordered by email, everyone", "o=email", "scan", false, 200, false}, {"query matching everyone", "query=example", "entries", true, 200, true}} {
		if big && !(c.word && words) {
			c.plan, c.want, c.deep = "refused", 400, false
		}
		cases = append(cases, c)
	}
	for i, c := range cases {
		if c.word && words {
			cases[i].plan = "page"
		}
	}
	return cases
}

// Seeded names, some with accents, spread like people's.
var (
	scaleFirst = append(slices.Clone(seedFirst), "José", "Zoë", "Ömer", "Renée")
	scaleLast  = append(slices.Clone(seedLast), "García", "Müller", "Núñez")
)

// scaleUsers makes n listed users: first.last<i> usernames (ASCII), an
// address at example.com, organizations Org-00..Org-19, seven job titles,
// three registration methods, a phone on 1 in 10 and a civil number on 1 in
// 20, a native name on 1 in 5, 90% active, 1% staff, 2% support, one joining
// every five minutes.
func scaleUsers(n int, hash string) []*users.User {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	natives := []string{"Мария", "Иван", "Анна", "Ольга"}
	out := make([]*users.User, 0, n)
	rng := rand.New(rand.NewPCG(13, 17))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for i := range n {
		f, l := pick(scaleFirst), pick(scaleLast)
		un := users.Fold(f) + "." + users.Fold(l) + strconv.Itoa(i)
		joined := base.Add(time.Duration(i) * 5 * time.Minute)
		u := &users.User{
			UUID: uuid.NewString(), Username: un, Email: un + "@example.com", FirstName: f, LastName: l,
			Organization: fmt.Sprintf("Org-%02d", rng.IntN(20)), JobTitle: fmt.Sprintf("Job %d", rng.IntN(7)),
			RegistrationMethod: pick([]string{"admin", "default", "saml2"}),
			IsActive:           rng.IntN(10) != 0, IsStaff: rng.IntN(100) == 0, IsSupport: rng.IntN(50) == 0,
			DateJoined: joined, Modified: joined, NotificationsEnabled: true, Version: 1, PasswordHash: hash,
		}
		if rng.IntN(10) == 0 {
			u.PhoneNumber = fmt.Sprintf("+372 5%07d", i)
		}
		if rng.IntN(20) == 0 {
			u.CivilNumber = fmt.Sprintf("EE%011d", i)
		}
		if rng.IntN(5) == 0 {
			u.NativeName = pick(natives)
		}
		u.Status = users.StatusEnabled
		if !u.IsActive {
			u.Status = users.StatusDisabled
		}
		out = append(out, u)
	}
	return out
}

// listScale seeds its own stack with n users and measures every case;
// words: the stack keeps word lists and the users are seeded with theirs,
// and afterwards importStream users are imported to price what the stream
// function writes for them.
func listScale(ctx context.Context, root string, n, iterations int, words bool, importStream int, prices *Prices) (*ListScale, error) {
	vars := map[string]string{"WORD_LISTS": "0"}
	if words {
		vars["WORD_LISTS"] = "1"
	}
	st, err := startStackWith(ctx, root, vars)
	if err != nil {
		return nil, err
	}
	defer st.close()
	restore := cheapParams()
	hash, err := secret.HashPassword(testenv.DefaultPassword)
	restore()
	if err != nil {
		return nil, err
	}
	us := scaleUsers(n, hash)
	logf("list at scale: seeding %d users in bulk (word lists: %v)", n, words)
	t0 := time.Now()
	for chunk := range slices.Chunk(us, 5_000) {
		if err := users.SeedListedWith(ctx, st.env.DB, st.env.Config.TableName, chunk, users.SeedOptions{NoWordLists: !words}); err != nil {
			return nil, fmt.Errorf("seeding: %w", err)
		}
		logf("list at scale: %d users seeded", slices.Index(us, chunk[len(chunk)-1])+1)
	}
	res := &ListScale{Users: n, SeedSeconds: round2(time.Since(t0).Seconds()), Iterations: iterations, Method: listScaleMethod, WordLists: words}
	staffEmail := testenv.Email("scale-staff")
	if _, err := st.env.API.Users.EnsureStaff(ctx, staffEmail, testenv.DefaultPassword, true, false); err != nil {
		return nil, err
	}
	login, err := st.do(ctx, request{method: "POST", path: "/api/auth/login", body: map[string]any{"login": staffEmail, "password": testenv.DefaultPassword}, want: 200})
	if err != nil {
		return nil, err
	}
	token := field(login.body, "token")
	st.calls.modelOn.Store(false) // reads only
	measure := func(c listScaleCase, page int) (ListCase, error) {
		q := c.query
		if q != "" {
			q += "&"
		}
		q += fmt.Sprintf("page=%d&page_size=50", page)
		var lat []float64
		var last call
		for i := range iterations + 2 {
			cl, err := st.do(ctx, request{method: "GET", path: "/api/users?" + q, token: token, want: c.want})
			if err != nil {
				return ListCase{}, fmt.Errorf("%s: %w", c.name, err)
			}
			if i >= 2 {
				lat = append(lat, ms(cl.latency))
			}
			last = cl
		}
		count, _ := strconv.Atoi(last.header.Get("X-Result-Count"))
		lc := ListCase{Name: c.name, Query: q, Plan: c.plan, Page: page, Status: c.want, Results: count,
			Requests: last.requests, ByOp: last.byOp, Capacity: round2(last.capacity), QueryItems: last.queryItems,
			P50MS: round2(median(lat))}
		extrapolate(&lc, n)
		return lc, nil
	}
	for _, c := range listScaleCases(us, words) {
		lc, err := measure(c, 1)
		if err != nil {
			// Recorded, not fatal: the other cases still run.
			logf("list at scale: %s: %v", c.name, err)
			res.Cases = append(res.Cases, ListCase{Name: c.name, Query: c.query, Plan: c.plan, Page: 1, Status: c.want, Note1M: "failed: " + err.Error()})
			continue
		}
		res.Cases = append(res.Cases, lc)
		if c.deep && lc.Results > 100 {
			if deep, err := measure(c, max(2, lc.Results/50/2)); err != nil {
				logf("list at scale: %s, deep page: %v", c.name, err)
			} else {
				res.Cases = append(res.Cases, deep)
			}
		}
		logf("list at scale: %s: %d results, %d requests", c.name, lc.Results, lc.Requests)
	}
	if words && importStream > 0 {
		if res.Stream, err = st.scaleStream(ctx, token, importStream, prices); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// scaleStream imports k users into the seeded table and prices what the
// stream function then does for them (word lists, events, markers), from
// the drained stream before the import to the drained stream after it.
func (st *stack) scaleStream(ctx context.Context, token string, k int, prices *Prices) (*ScaleStream, error) {
	drain := func() (time.Duration, error) {
		t := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		defer cancel()
		err := st.env.Stream.Drain(dctx)
		return time.Since(t), err
	}
	logf("list at scale: draining the stream of the seeded users")
	if _, err := drain(); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	records, _ := st.env.Stream.Stats()
	requests := st.env.StreamRequests.Snapshot().Requests
	st.streamCalls.modelOn.Store(true)
	defer st.streamCalls.modelOn.Store(false)
	before := st.streamCalls.snapshot()
	logf("list at scale: importing %d users, then draining the stream", k)
	lines := importUsers(fmt.Sprintf("w%x", time.Now().UnixNano()&0xffffff), k)
	for chunk := range slices.Chunk(lines, importBatch) {
		if _, _, err := st.postImport(ctx, token, chunk, "created"); err != nil {
			return nil, err
		}
	}
	took, err := drain()
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	st.streamCalls.mu.Lock()
	modelErr := st.streamCalls.modelErr
	st.streamCalls.mu.Unlock()
	if err := modelErr; err != nil {
		return nil, fmt.Errorf("pricing the stream's transactions: %w", err)
	}
	after := st.streamCalls.snapshot()
	recordsAfter, _ := st.env.Stream.Stats()
	ss := &ScaleStream{Users: k, Records: recordsAfter - records, Requests: st.env.StreamRequests.Snapshot().Requests - requests,
		WRUPerUser: round2((after.wru - before.wru) / float64(k)), RRUPerUser: round2((after.rru - before.rru) / float64(k)),
		DrainSeconds: round2(took.Seconds())}
	ss.RequestsPerUser = round2(float64(ss.Requests) / float64(k))
	ss.USDPerMillion = round2(ss.WRUPerUser*prices.DynamoDB.PerMillionWRU + ss.RRUPerUser*prices.DynamoDB.PerMillionRRU)
	logf("list at scale: the stream for %d imported users: %d requests, %.2f WRU a user", k, ss.Requests, ss.WRUPerUser)
	return ss, nil
}

// extrapolate fills in the 1,000,000-user figures of a case measured on n
// users (listScaleMethod).
func extrapolate(c *ListCase, n int) {
	factor := int64(max(1, 1_000_000/max(n, 1)))
	c.Requests1M, c.Status1M = c.Requests, c.Status
	queries := c.ByOp["Query"]
	switch c.Plan {
	case "page":
		return
	case "refused":
		c.Note1M = "refused at this size already"
		return
	}
	perQuery := 3000.0
	limit := int64(users.DefaultListScanLimit)
	if c.Plan == "scan" {
		perQuery = 2000
	}
	if queries > 1 {
		perQuery = float64(c.QueryItems) / float64(queries)
	}
	items := factor * c.QueryItems
	fetch := c.ByOp["BatchGetItem"] - 1 // beside the authentication's
	if c.ByOp["GetItem"] > 0 {
		fetch = c.ByOp["BatchGetItem"]
	}
	switch {
	case items > limit && c.ByOp["GetItem"] > 0:
		// A search word's entries (no count to read first): read up to the
		// limit, then refused.
		c.Requests1M, c.Status1M = 1+int(math.Ceil(float64(limit)/perQuery)), 400
		c.Note1M = fmt.Sprintf("~%s matching entries: refused after reading %s", thousands(int(items)), thousands(int(limit)))
	case items > limit:
		c.Requests1M, c.Status1M = 1, 400
		c.Note1M = fmt.Sprintf("would read ~%s items: refused on the counts", thousands(int(items)))
	case fetch > 1 && int(factor)*c.Results > 1000:
		c.Requests1M, c.Status1M = 2, 400
		c.Note1M = fmt.Sprintf("~%s users to read one by one", thousands(int(factor)*c.Results))
	default:
		c.Requests1M = c.Requests - queries + int(math.Ceil(float64(items)/perQuery))
		c.Note1M = fmt.Sprintf("~%s items read", thousands(int(items)))
	}
}

// listScaleReport is the section of BENCHMARKS.md.
func listScaleReport(r *ListScale) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if r.WordLists {
		w("## List at scale with word lists (%s users)\n\n", thousands(r.Users))
	} else {
		w("## List at scale (%s users, word lists off)\n\n", thousands(r.Users))
	}
	if r.Measured != "" {
		w("Measured by one run of this part on %s.\n\n", r.Measured)
	}
	if r.Note != "" {
		w("%s\n\n", r.Note)
	}
	if r.WordLists {
		w("The stack keeps word lists (`WordLists=1`, the default) and every user is seeded with theirs: each single search value of up to 12 letters is then a page (docs/LISTING.md, \"Word lists\"). The table is smaller than the other list at scale because DynamoDB Local writes about 700 items a second on this machine and a user has about 70 items with their word lists (at this run's %.0f ms a user, 100,000 users would seed for about %.1f hours). A word-list page reads one count, one Query from the page's bucket and one BatchGetItem, whatever the table's size, so its requests are those of a larger table; what grows is the count items' size (capacity units) and, deep in a crowded bucket, the Query's skipping.\n\n", 1000*r.SeedSeconds/float64(max(r.Users, 1)), r.SeedSeconds/float64(max(r.Users, 1))*100_000/3600)
	} else {
		w("The stack runs with word lists off (`WordLists=0`, `WORD_LISTS=0`) and the users are seeded without them: searches of 3 letters or more are read from their matches, as a team that turns word lists off gets them. The next section has them on.\n\n")
	}
	if r.Concurrent {
		w("In the full `make bench` this part runs at the same time as the import (each on its own DynamoDB Local, on the same machine): its requests, capacity units and items read are its own, its times (seeding, p50) are taken under the import's load.\n\n")
	}
	w("`GET /api/users` as staff (Token auth) on a table of **%s listed users** seeded in bulk in %.0f s (`users.SeedListedWith`: the service's own item builders — user, claims, index entries, count items, and with word lists on their entries and counts — written with BatchWriteItem), on its own DynamoDB Local. ", thousands(r.Users), r.SeedSeconds)
	w("Names from %d first and %d last names (some accented), usernames `first.last<n>`, addresses at example.com, organizations Org-00..Org-19, 90%% active, 1%% staff, 2%% support. ", len(scaleFirst), len(scaleLast))
	w("Pages of 50; each case at page 1 and, when it has more than 100 results, a page in the middle; p50 of %d runs after 2 warm-ups; requests, operations, capacity units (as DynamoDB Local reports them) and the items the Queries read, of the last run. `go run ./bench -only-list-scale` (`make bench-list`) runs both lists at scale alone and rewrites their sections (the rest of the report is kept from `bench/results.json`).\n\n", r.Iterations)
	w("| case | query | plan | results | requests | operations | RCU | items read | p50 ms | at 1,000,000: requests | |\n|---|---|---|---:|---:|---|---:|---:|---:|---:|---|\n")
	for _, c := range r.Cases {
		ops := []string{}
		for _, k := range slices.Sorted(mapsKeys(c.ByOp)) {
			ops = append(ops, fmt.Sprintf("%s %d", k, c.ByOp[k]))
		}
		at := strconv.Itoa(c.Requests1M)
		if c.Status1M != 200 {
			at += fmt.Sprintf(" (%d)", c.Status1M)
		}
		res := thousands(c.Results)
		if c.Status != 200 {
			res = fmt.Sprintf("%d", c.Status)
		}
		w("| %s | `%s` | %s | %s | %d | %s | %.1f | %s | %.1f | %s | %s |\n", c.Name, mdEscape(c.Query), c.Plan, res, c.Requests,
			strings.Join(ops, ", "), c.Capacity, thousands(int(c.QueryItems)), c.P50MS, at, c.Note1M)
	}
	w("\n%s\n\n", r.Method)
	if ss := r.Stream; ss != nil {
		w("**What the stream function writes for a new user, with word lists.** After the cases, %s users were imported into this table (`POST /api/users/import`, up to %d a request) and the stream drained (%.0f s): the stream function handled %s records and made **%.2f DynamoDB requests a user**, **%.2f WRU and %.2f RRU a user** as DynamoDB bills them (transactions priced by the bench's model, capacity.go), that is **$%.2f per million users** in DynamoDB on demand. Most of it is the user's word list entries and counts (about 40 prefixes, each an entry and a count delta in one transaction); the rest is the events and markers every user's stream records cost. The import's own cost (the Import section) does not include it.\n\n",
			thousands(ss.Users), importBatch, ss.DrainSeconds, thousands(ss.Records), ss.RequestsPerUser, ss.WRUPerUser, ss.RRUPerUser, ss.USDPerMillion)
	}
	return b.String()
}

func mapsKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
