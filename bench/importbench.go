package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/example/accounts/pkg/testenv"
)

// ImportBench is the import measurement: n users through
// POST /api/users/import from one client, in batches of 1,000, and what
// DynamoDB on demand would make of it.
type ImportBench struct {
	// Measured is when this part ran (it may be an earlier run than the
	// rest of the report: a run with -import-users 0 keeps it).
	Measured string `json:"measured,omitempty"`
	// Concurrent: it ran while the list at scale ran on another stack.
	Concurrent bool `json:"concurrent,omitempty"`
	Users      int  `json:"users"`
	BatchSize  int  `json:"batch_size"`
	Batches    int  `json:"batches"`
	// Seconds and UsersPerSecond are the timed batches' (all but the
	// priced first one), one request at a time from one client.
	Seconds        float64 `json:"seconds"`
	UsersPerSecond float64 `json:"users_per_second"`
	BatchP50MS     float64 `json:"batch_p50_ms"`
	BatchMaxMS     float64 `json:"batch_max_ms"`
	HandlerP50MS   float64 `json:"handler_p50_ms"`
	BodyBytes      int     `json:"body_bytes_per_batch"`
	// DynamoDB requests per imported user, over the timed batches.
	RequestsPerUser float64            `json:"dynamodb_requests_per_user"`
	ByOpPerUser     map[string]float64 `json:"dynamodb_by_op_per_user"`
	// CapacityPerUser is DynamoDB Local's consumed capacity; RRU and WRU
	// are DynamoDB on demand's, priced on the first batch (txModel).
	CapacityPerUser float64 `json:"capacity_units_per_user_dynamodb_local"`
	RRUPerUser      float64 `json:"read_request_units_per_user"`
	WRUPerUser      float64 `json:"write_request_units_per_user"`
	// HottestItem is the item the first batch's transactions wrote most,
	// and HottestShare the writes to it per imported user.
	HottestItem  string  `json:"hottest_item"`
	HottestShare float64 `json:"hottest_writes_per_user"`
	// Rerun is the first batch sent again: every line skipped.
	RerunSkipped         int         `json:"rerun_skipped"`
	RerunMS              float64     `json:"rerun_ms"`
	RerunRequestsPerUser float64     `json:"rerun_dynamodb_requests_per_user"`
	Model                ImportModel `json:"model"`
	// Resent is how many lines were answered service_unavailable (not
	// written within a request's time) and sent again.
	Resent int `json:"resent_lines"`
	// StoppedAt is how many users were imported when the time budget
	// (-import-budget) ran out, 0 if all were: the figures are of those.
	StoppedAt int `json:"stopped_at,omitempty"`
	// LoadAverage is the machine's 1-minute load average at the end.
	LoadAverage string `json:"load_average,omitempty"`
	Note        string `json:"note,omitempty"`
}

// loadAverage is /proc/loadavg's 1-, 5- and 15-minute figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ImportModel is the import on DynamoDB on demand: the table's write
// limits and what a million imported users cost.
type ImportModel struct {
	TableMaxWRU           int     `json:"table_max_wru_per_second"`
	NewTableWRU           int     `json:"new_table_wru_per_second"`
	PartitionWRU          int     `json:"partition_wru_per_second"`
	UsersPerSecondTable   float64 `json:"users_per_second_table_limit"`
	UsersPerSecondNew     float64 `json:"users_per_second_new_table"`
	UsersPerSecondHotItem float64 `json:"users_per_second_hottest_item"`
	// ClientsFor is how many clients like the measured one it takes to
	// reach the lowest of those limits.
	ClientsFor     float64 `json:"clients_for_the_limit"`
	DynamoDBUSD    float64 `json:"dynamodb_usd_per_million_users"`
	LambdaUSD      float64 `json:"lambda_usd_per_million_users"`
	HTTPAPIUSD     float64 `json:"http_api_usd_per_million_users"`
	TotalUSD       float64 `json:"total_usd_per_million_users"`
	LambdaMSPerRun float64 `json:"lambda_ms_per_batch_estimate"`
	MemoryMB       int     `json:"memory_mb"`
}

// DynamoDB's documented throughput limits: an on-demand table's default
// account quota per table, what a new on-demand table takes at once, and
// one partition's (so one item's) write rate.
const (
	tableMaxWRU  = 40000
	newTableWRU  = 4000
	partitionWRU = 1000
	importBatch  = 1000
)

// keyTally counts the items transactions write, while on.
var keyTally = struct {
	sync.Mutex
	on     atomic.Bool
	counts map[string]int
}{counts: map[string]int{}}

// keyMiddleware tallies the keys of every transaction's items (keyTally).
func keyMiddleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bench.KeyTally",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if tx, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok && keyTally.on.Load() {
				keyTally.Lock()
				for _, it := range tx.TransactItems {
					var k map[string]types.AttributeValue
					switch {
					case it.Put != nil:
						k = it.Put.Item
					case it.Update != nil:
						k = it.Update.Key
					case it.Delete != nil:
						k = it.Delete.Key
					}
					if pk, ok := k["pk"].(*types.AttributeValueMemberS); ok {
						sk, _ := k["sk"].(*types.AttributeValueMemberS)
						name := pk.Value
						if sk != nil {
							name += " " + sk.Value
						}
						keyTally.counts[name]++
					}
				}
				keyTally.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// importUsers makes the i-th imported user: a person's profile, a Django
// pbkdf2_sha256 hash (parsed on import, verified only at login), 1 in 20
// DISABLED.
func importUsers(run string, n int) [][]byte {
	const hash = "pbkdf2_sha256$600000$saltsaltsalt1234$/zwqxPgxkxrG8rGjbG1fvy7WAg17IvjU9zlAkTmiZdk="
	out := make([][]byte, n)
	for i := range n {
		first, last := seedFirst[i%len(seedFirst)], seedLast[(i/len(seedFirst))%len(seedLast)]
		u := map[string]any{
			"email":      fmt.Sprintf("%s.%s.%d.%s@example.org", strings.ToLower(first), strings.ToLower(last), i, run),
			"first_name": first, "last_name": last, "organization": fmt.Sprintf("Org-%02d", i%20),
			"job_title": fmt.Sprintf("Job %d", i%7), "date_joined": time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour).Format(time.RFC3339),
			"password_hash": hash, "status": "ENABLED",
		}
		if i%20 == 19 {
			u["status"] = "DISABLED"
		}
		out[i], _ = json.Marshal(u)
	}
	return out
}

type importAnswer struct {
	Results []struct {
		Line          int
		Result, Error string
	}
	Totals struct{ Created, Skipped, Refused int }
}

// postImport sends one batch, and again the lines answered
// service_unavailable (not written within the request's time), and checks
// that every line got want. It returns the time of all the requests, the
// first one's body size and how many lines were sent again.
func (st *stack) postImport(ctx context.Context, token string, lines [][]byte, want string) (time.Duration, int, error) {
	var total time.Duration
	size := 0
	// Lines left unwritten are sent again for as long as each request
	// writes some (a slow machine, or the first batch's pricing reads,
	// may leave many within the request's 24 s); a request that writes
	// none ends it.
	stalled := 0
	for attempt := 0; len(lines) > 0; attempt++ {
		if stalled == 3 || attempt == 100 {
			return 0, 0, fmt.Errorf("import: %d lines still not written after %d requests", len(lines), attempt)
		}
		body := bytes.Join(lines, []byte("\n"))
		if size == 0 {
			size = len(body)
		}
		req, err := http.NewRequestWithContext(ctx, "POST", st.server.URL+"/api/users/import", bytes.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", testenv.Token(token))
		t := time.Now()
		res, err := st.client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		total += time.Since(t)
		if err != nil {
			return 0, 0, err
		}
		var a importAnswer
		if res.StatusCode != 200 || json.Unmarshal(b, &a) != nil {
			return 0, 0, fmt.Errorf("import: %d %.300s", res.StatusCode, b)
		}
		var again [][]byte
		for _, r := range a.Results {
			switch {
			case r.Result == want:
			case r.Error == "service_unavailable":
				again = append(again, lines[r.Line-1])
			default:
				return 0, 0, fmt.Errorf("import: line %d %s (%s), want %s", r.Line, r.Result, r.Error, want)
			}
		}
		if attempt > 0 {
			importResent.Add(int64(len(lines)))
		}
		if len(again) == len(lines) {
			stalled++
		} else {
			stalled = 0
		}
		lines = again
	}
	return total, size, nil
}

// importResent counts the lines sent again.
var importResent atomic.Int64

// importBench imports n users and models the import on DynamoDB on demand.
func (st *stack) importBench(ctx context.Context, n int, budget time.Duration, prices *Prices, memory memorySizes) (*ImportBench, error) {
	if _, ok := st.env.API.Handlers()["ImportUsersFunction"]; !ok {
		return nil, fmt.Errorf("no ImportUsersFunction")
	}
	n = max(n, importBatch)
	staffEmail := testenv.Email("bench-import-staff")
	if _, err := st.env.API.Users.EnsureStaff(ctx, staffEmail, testenv.DefaultPassword, true, false); err != nil {
		return nil, err
	}
	login, err := st.do(ctx, request{method: "POST", path: "/api/auth/login", body: map[string]any{"login": staffEmail, "password": testenv.DefaultPassword}, want: 200})
	if err != nil {
		return nil, err
	}
	token := field(login.body, "token")
	lines := importUsers(fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff), n)
	ib := &ImportBench{Users: n, BatchSize: importBatch}

	// The first batch, priced: request units as DynamoDB bills them, and
	// the items written per user.
	keyTally.Lock()
	keyTally.counts = map[string]int{}
	keyTally.Unlock()
	keyTally.on.Store(true)
	before := st.calls.snapshot()
	if _, ib.BodyBytes, err = st.postImport(ctx, token, lines[:importBatch], "created"); err != nil {
		return nil, err
	}
	after := st.calls.snapshot()
	keyTally.on.Store(false)
	ib.RRUPerUser, ib.WRUPerUser = round2((after.rru-before.rru)/importBatch), round2((after.wru-before.wru)/importBatch)
	keyTally.Lock()
	for k, c := range keyTally.counts {
		if share := float64(c) / importBatch; share > ib.HottestShare || (share == ib.HottestShare && k < ib.HottestItem) {
			ib.HottestItem, ib.HottestShare = k, share
		}
	}
	keyTally.Unlock()
	ib.HottestShare = round2(ib.HottestShare)

	// The rest, timed, without the pricing's extra reads.
	st.calls.modelOn.Store(false)
	defer st.calls.modelOn.Store(true)
	st.env.Requests.Reset()
	var lat, handler []float64
	start := time.Now()
	imported := n
	for at := importBatch; at < n; at += importBatch {
		if budget > 0 && time.Since(start) > budget {
			logf("import: time budget of %s spent after %d of %d users: measuring those", budget, at, n)
			ib.StoppedAt, imported = at, at
			break
		}
		batch := lines[at:min(at+importBatch, n)]
		d, _, err := st.postImport(ctx, token, batch, "created")
		if err != nil {
			return nil, fmt.Errorf("batch at user %d: %w", at, err)
		}
		lat = append(lat, ms(d))
		handler = append(handler, ms(st.lastCall().handler))
		if len(lat)%10 == 0 {
			logf("import: %d of %d users, %.0f users/s", at+len(batch), n, float64(at+len(batch)-importBatch)/time.Since(start).Seconds())
		}
	}
	timed := imported - importBatch
	snap := st.env.Requests.Snapshot()
	ib.Batches = imported / importBatch
	if timed > 0 {
		ib.Seconds = round2(time.Since(start).Seconds())
		ib.UsersPerSecond = round2(float64(timed) / time.Since(start).Seconds())
		sort.Float64s(lat)
		ib.BatchP50MS, ib.BatchMaxMS = round2(lat[len(lat)/2]), round2(lat[len(lat)-1])
		ib.HandlerP50MS = round2(summarizeF(handler).p50)
		ib.RequestsPerUser = round2(float64(snap.Requests) / float64(timed))
		ib.CapacityPerUser = round2(snap.Capacity / float64(timed))
		ib.ByOpPerUser = map[string]float64{}
		for op, c := range snap.ByOp {
			ib.ByOpPerUser[op] = round2(float64(c) / float64(timed))
		}
	}

	// The first batch again: everything skipped.
	st.env.Requests.Reset()
	d, _, err := st.postImport(ctx, token, lines[:importBatch], "skipped")
	if err != nil {
		return nil, fmt.Errorf("rerun: %w", err)
	}
	ib.RerunSkipped, ib.RerunMS = importBatch, round2(ms(d))
	ib.RerunRequestsPerUser = round2(float64(st.env.Requests.Snapshot().Requests) / importBatch)
	ib.Model = importModel(ib, prices, memory.of("ImportUsersFunction"))
	ib.LoadAverage = loadAverage()
	ib.Resent = int(importResent.Load())
	return ib, nil
}

// importModel prices the import and bounds its rate on DynamoDB on demand.
func importModel(ib *ImportBench, p *Prices, memoryMB int) ImportModel {
	m := ImportModel{TableMaxWRU: tableMaxWRU, NewTableWRU: newTableWRU, PartitionWRU: partitionWRU, MemoryMB: memoryMB}
	if ib.WRUPerUser > 0 {
		m.UsersPerSecondTable = math.Floor(tableMaxWRU / ib.WRUPerUser)
		m.UsersPerSecondNew = math.Floor(newTableWRU / ib.WRUPerUser)
	}
	if ib.HottestShare > 0 {
		// A transactional write of a small item costs 2 WRU.
		m.UsersPerSecondHotItem = math.Floor(partitionWRU / (2 * ib.HottestShare))
	}
	lowest := m.UsersPerSecondTable
	for _, x := range []float64{m.UsersPerSecondNew, m.UsersPerSecondHotItem} {
		if x > 0 && x < lowest {
			lowest = x
		}
	}
	if ib.UsersPerSecond > 0 {
		m.ClientsFor = round2(lowest / ib.UsersPerSecond)
	}
	batches := 1e6 / float64(ib.BatchSize)
	m.DynamoDBUSD = round2((ib.WRUPerUser*p.DynamoDB.PerMillionWRU + ib.RRUPerUser*p.DynamoDB.PerMillionRRU))
	// Lambda: the handler's time per batch measured here (DynamoDB Local on
	// loopback, this machine's CPU), at the function's memory.
	m.LambdaMSPerRun = ib.HandlerP50MS
	m.LambdaUSD = round2(batches * (p.Lambda.PerMillionRequests/1e6 + math.Ceil(ib.HandlerP50MS)/1000*float64(memoryMB)/1024*p.Lambda.PerGBSecond))
	m.HTTPAPIUSD = math.Round(batches*math.Ceil(float64(ib.BodyBytes)/(512*1024))*p.HTTPAPI.PerMillionRequests/1e6*1e4) / 1e4
	m.TotalUSD = round2(m.DynamoDBUSD + m.LambdaUSD + m.HTTPAPIUSD)
	return m
}

// importReport is the import's section of docs/BENCHMARKS.md.
func importReport(ib *ImportBench) string {
	if ib == nil {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := ib.Model
	w("## Import\n\n")
	if ib.Measured != "" {
		w("Measured by one run of this part on %s.\n\n", ib.Measured)
	}
	if ib.StoppedAt > 0 {
		w("**This run stopped the import at its time budget (`-import-budget`) after %s of the %s users**: the figures below are of the %d batches imported by then.\n\n", thousands(ib.StoppedAt), thousands(ib.Users), ib.Batches)
	}
	if ib.Concurrent {
		w("In the full `make bench` this part runs at the same time as the list at scale (each on its own DynamoDB Local, on the same machine): its requests and capacity units per user are its own, its rate and times are taken under the list's seeding and measuring load (so a lower bound of what one client gets on this machine alone).\n\n")
	}
	w("`POST /api/users/import` (`go run ./bench -only-import -import-users %d` runs this part alone): **%s users** into DynamoDB Local through the local API, in %d batches of %d (JSON Lines, %s KB a batch), one request at a time from one client, as `cmd/import` sends them; each user is a person's profile with a Django `pbkdf2_sha256` hash, 1 in 20 DISABLED. The service writes the users in groups, several in one conditional transaction with their count updates merged (docs/IMPORT.md), 8 groups at a time.\n\n",
		ib.Users, thousands(ib.Users), ib.Batches, ib.BatchSize, thousands(ib.BodyBytes/1000))
	w("| measure | value |\n|---|---:|\n")
	w("| users per second, one client (batches 2 to %d) | **%.0f** |\n", ib.Batches, ib.UsersPerSecond)
	w("| time for those %s users | %.1f s |\n", thousands(ib.Batches*ib.BatchSize-ib.BatchSize), ib.Seconds)
	w("| batch of %d, p50 / slowest | %.0f / %.0f ms |\n", ib.BatchSize, ib.BatchP50MS, ib.BatchMaxMS)
	w("| handler time per batch, p50 | %.0f ms |\n", ib.HandlerP50MS)
	w("| DynamoDB requests per user | %.2f %s |\n", ib.RequestsPerUser, byOpF(ib.ByOpPerUser))
	w("| write request units per user (DynamoDB on demand, priced on batch 1) | %.2f |\n", ib.WRUPerUser)
	w("| read request units per user | %.2f |\n", ib.RRUPerUser)
	w("| capacity units per user as DynamoDB Local reports them | %.2f |\n", ib.CapacityPerUser)
	w("| the item written most (batch 1), writes per user | `%s`, %.2f |\n", mdEscape(ib.HottestItem), ib.HottestShare)
	w("| lines not written within a request's time and sent again | %d |\n", ib.Resent)
	w("| a rerun of batch 1: all %d skipped | %.0f ms, %.2f DynamoDB requests per user |\n\n", ib.RerunSkipped, ib.RerunMS, ib.RerunRequestsPerUser)
	w("**On DynamoDB on demand.** An on-demand table takes by default up to %s WRU/s (the per-table quota, raisable), a new one about %s WRU/s at once (it then adapts to twice its previous peak), and one partition, so one item, %s WRU/s. At %.2f WRU per user the table quota allows **%s users/s**, a new table **%s users/s**; the item written most (`%s`, %.2f writes per user, 2 WRU per transactional write) allows **%s users/s**. So about %.1f clients like this one reach the lowest of these. On DynamoDB, unlike DynamoDB Local, concurrent transactions that touch the same item also cancel each other (`TransactionConflict`), so an item every create writes caps the rate well before its partition's limit: see LISTING.md for how the counts are kept.\n\n",
		thousands(m.TableMaxWRU), thousands(m.NewTableWRU), thousands(m.PartitionWRU), ib.WRUPerUser, thousands(int(m.UsersPerSecondTable)), thousands(int(m.UsersPerSecondNew)),
		mdEscape(ib.HottestItem), ib.HottestShare, thousands(int(m.UsersPerSecondHotItem)), m.ClientsFor)
	w("**Cost per million imported users**: DynamoDB $%.2f (%.2f WRU and %.2f RRU a user), Lambda $%.2f (1,000 invocations of about %.0f ms at %d MB, the handler time measured here: real DynamoDB latency will move it), HTTP API $%.4f (1,000 requests, each metered in 512 KB steps): **$%.2f** in all, storage left out.\n\n",
		m.DynamoDBUSD, ib.WRUPerUser, ib.RRUPerUser, m.LambdaUSD, m.LambdaMSPerRun, m.MemoryMB, m.HTTPAPIUSD, m.TotalUSD)
	if ib.LoadAverage != "" {
		w("The machine's load average (1, 5, 15 minutes) when the import ended: %s, on %d cores shared with DynamoDB Local and the client: the rate above is this machine's, with DynamoDB Local's transactions on it, not DynamoDB's.\n\n", ib.LoadAverage, runtime.NumCPU())
	}
	if ib.Note != "" {
		w("%s\n\n", ib.Note)
	}
	return b.String()
}

func byOpF(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func sortedKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// importTargets holds the import to API Gateway's 30 s per request.
func importTargets(r *Results) []Target {
	ib := r.Import
	if ib == nil || ib.BatchMaxMS == 0 {
		return nil
	}
	t := Target{Name: fmt.Sprintf("import: a request of %d users (slowest)", ib.BatchSize), Limit: "30 s", Worst: round2(ib.BatchMaxMS / 1000),
		Value: fmt.Sprintf("%.1f s (p50 %.1f s)", ib.BatchMaxMS/1000, ib.BatchP50MS/1000), Met: ib.BatchMaxMS <= 30000}
	if !t.Met {
		t.Why = "API Gateway ends a request at 30 s"
	}
	return []Target{t}
}
