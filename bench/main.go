// Command bench measures the service on this machine (`make bench`) and
// writes docs/BENCHMARKS.md, for people, and bench/results.json, for tools:
// the size of each function binary as SAM builds it, each function's cold
// start under pkg/lambdatest, every operation's latency, DynamoDB requests,
// capacity and SES sends through the local API on DynamoDB Local, the
// argon2id hash time, the time each handler spends outside DynamoDB, SES and
// hashing, and a cost model priced from bench/prices.json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/example/accounts/pkg/localstack"
)

// settings are the command-line knobs; the defaults are what `make bench`
// runs and what the committed report shows.
type settings struct {
	iterations int // measured runs per operation
	warmup     int // discarded runs before them
	coldRuns   int // cold starts per function
	hashRuns   int // argon2id hashes timed on their own
	listUsers  int // users in the table for the list operations
	report     string
	results    string
	prices     string
	reprice    bool // only re-price the results file and rewrite the report
	// importUsers are imported through POST /api/users/import (0: not);
	// onlyImport measures that alone and keeps the other results.
	importUsers int
	onlyImport  bool
	onlyStream  bool // measure only the stream path, keeping the rest
	// importBudget stops the import after that long (0: never).
	importBudget time.Duration
	onlyGroups   bool // measure only the groups part (groupsbench.go), keeping the rest
	// listScale users are seeded for the list at scale (0: skipped), each
	// case run listScaleRuns times; onlyListScale runs that part alone.
	listScale     int
	listScaleRuns int
	onlyListScale bool
	// listScaleWords users are seeded with word lists for the second list
	// at scale (0: skipped), and listScaleImport imported after it to price
	// the stream's word lists.
	listScaleWords  int
	listScaleImport int
}

func main() {
	var s settings
	flag.IntVar(&s.iterations, "iterations", 30, "measured runs per operation")
	flag.IntVar(&s.warmup, "warmup", 5, "warm-up runs per operation, not measured")
	flag.IntVar(&s.coldRuns, "cold-starts", 5, "cold starts per function")
	flag.IntVar(&s.hashRuns, "hash-runs", 20, "argon2id hashes timed on their own")
	flag.IntVar(&s.listUsers, "list-users", 10000, "users in the table when the list operations run")
	flag.StringVar(&s.report, "report", "docs/BENCHMARKS.md", "Markdown report, relative to the repository root")
	flag.StringVar(&s.results, "results", "bench/results.json", "JSON results, relative to the repository root")
	flag.StringVar(&s.prices, "prices", "bench/prices.json", "price list, relative to the repository root")
	flag.IntVar(&s.listScale, "list-scale-users", 100_000, "users seeded for the list at scale (0 skips it)")
	flag.IntVar(&s.listScaleRuns, "list-scale-runs", 10, "measured runs per list-at-scale case")
	flag.BoolVar(&s.onlyListScale, "only-list-scale", false, "measure only the lists at scale; keep the rest of the results file and rewrite both files")
	flag.IntVar(&s.listScaleWords, "list-scale-word-users", 10_000, "users seeded with word lists for the list at scale with word lists (0 skips it)")
	flag.IntVar(&s.listScaleImport, "list-scale-import", 500, "users imported into the word-list table to price the stream's word lists (0: none)")
	flag.BoolVar(&s.reprice, "reprice", false, "measure nothing: re-price the existing results with the price list and template.yaml, and rewrite both files")
	flag.IntVar(&s.importUsers, "import-users", 100000, "users imported through POST /api/users/import (0: no import measurement)")
	flag.BoolVar(&s.onlyStream, "only-stream", false, "measure only the stream path (sign-up to mail, the stream function's cost), keeping the other results, and rewrite both files")
	flag.DurationVar(&s.importBudget, "import-budget", 40*time.Minute, "stop the import after this long and report the users imported by then (0: no limit)")
	flag.BoolVar(&s.onlyGroups, "only-groups", false, "measure only the groups part (a 5,000-member group: list_users, the scope filter, add_user/delete_user, /me), keeping the other results, and rewrite both files")
	flag.BoolVar(&s.onlyImport, "only-import", false, "measure only the import, keeping the other results of bench/results.json, and rewrite both files")
	flag.Parse()
	if s.iterations < 1 || s.warmup < 0 || s.coldRuns < 1 || s.hashRuns < 1 {
		fmt.Fprintln(os.Stderr, "bench: -iterations, -cold-starts and -hash-runs must be at least 1")
		os.Exit(2)
	}
	if err := run(s); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(s settings) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Minute)
	defer cancel()
	root, err := localstack.Root()
	if err != nil {
		return err
	}
	prices, err := loadPrices(inRoot(root, s.prices))
	if err != nil {
		return err
	}
	memory, err := templateMemory(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	if s.reprice {
		return reprice(root, s, prices, memory)
	}
	if s.onlyImport {
		return onlyImport(ctx, root, s, prices, memory)
	}
	if s.onlyStream {
		return onlyStream(ctx, root, s, prices, memory)
	}
	if s.onlyGroups {
		return onlyGroups(ctx, root, s, prices, memory)
	}
	if s.onlyListScale {
		b, err := os.ReadFile(inRoot(root, s.results))
		if err != nil {
			return err
		}
		var res Results
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", s.results, err)
		}
		if err := listScales(ctx, root, s, &res, prices); err != nil {
			return err
		}
		return write(root, s, &res, prices, memory)
	}
	res := &Results{
		Generated: time.Now().UTC().Format(time.RFC3339),
		Machine:   machine(s),
	}
	// A run that leaves the import or the list at scale out keeps the
	// figures of the last run that measured them (each section says when).
	if b, err := os.ReadFile(inRoot(root, s.results)); err == nil {
		var prev Results
		if json.Unmarshal(b, &prev) == nil {
			if s.importUsers == 0 {
				res.Import = prev.Import
			}
			if s.listScale == 0 {
				res.ListScale = prev.ListScale
			}
			if s.listScaleWords == 0 {
				res.ListScaleWords = prev.ListScaleWords
			}
		}
	}

	logf("building every function for linux/arm64 (as SAM does) and for this host")
	fns, err := makeFunctions(ctx, root)
	if err != nil {
		return err
	}
	builds, err := buildAll(ctx, root, fns)
	if err != nil {
		return err
	}
	res.Build = builds.info
	for _, b := range builds.binaries {
		res.Binaries = append(res.Binaries, b.Binary)
	}

	logf("starting DynamoDB Local, the local SES and the API")
	st, err := startStack(ctx, root)
	if err != nil {
		return err
	}
	defer st.close()

	if res.DynamoDBLocal, err = calibrate(ctx, st.env.DB); err != nil {
		return fmt.Errorf("calibrating DynamoDB Local's capacity units: %w", err)
	}

	logf("cold starts: %d per function", s.coldRuns)
	if res.ColdStarts, err = coldStarts(ctx, root, st, builds.binaries, memory.defaultMB, s.coldRuns); err != nil {
		return err
	}
	res.ColdStartMS = map[string]float64{}
	for _, c := range res.ColdStarts {
		res.ColdStartMS[c.Function] = c.FirstPollMS
	}

	logf("argon2id: %d hashes", s.hashRuns)
	hash, err := hashTime(s.hashRuns)
	if err != nil {
		return err
	}
	res.HashMS = round2(hash)

	logf("what a refused or an unknown-address request costs: 50 runs each")
	if res.Abuse, err = abuse(ctx, 50, res.HashMS); err != nil {
		return err
	}

	ops, notes, err := st.operations(ctx, s)
	if err != nil {
		return err
	}
	res.Operations = ops
	res.Notes = append(res.Notes, notes...)

	logf("the stream path: 30 sign-ups, each timed to its mail")
	if res.Stream, err = st.streamPath(ctx, 30); err != nil {
		return err
	}
	st.streamTotals(res.Stream)
	logf("groups: a 5,000-member group")
	if res.Groups, err = st.groupsBench(ctx, 5000, 10); err != nil {
		return err
	}
	if err := st.calls.modelErr; err != nil {
		res.Notes = append(res.Notes, "some transactions were priced with DynamoDB Local's own units: "+err.Error())
	}

	// The two parts at 100,000 users run at the same time, each on its own
	// DynamoDB Local (the list at scale starts its own stack): on a shared
	// 2-core machine one after the other takes over an hour. Their request
	// counts, capacity units and items read do not depend on it; their
	// times (users per second, p50) are taken under each other's load, as
	// the report says.
	var listErr error
	listDone := make(chan struct{})
	go func() {
		defer close(listDone)
		listErr = listScales(ctx, root, s, res, prices)
		for _, l := range []*ListScale{res.ListScale, res.ListScaleWords} {
			if l != nil {
				l.Concurrent = s.importUsers > 0
			}
		}
	}()
	if s.importUsers > 0 {
		logf("import: %d users through POST /api/users/import", s.importUsers)
		if res.Import, err = st.importBench(ctx, s.importUsers, s.importBudget, prices, memory); err != nil {
			return err
		}
		res.Import.Measured = measuredNow()
		res.Import.Concurrent = s.listScale > 0
	}
	<-listDone
	if listErr != nil {
		return listErr
	}

	res.Machine.Seconds = round2(time.Since(start).Seconds())
	return write(root, s, res, prices, memory)
}

// onlyPart measures one part on a stack of its own with measure, which
// puts it into the existing results (stamped with when it ran), and
// rewrites both files.
func onlyPart(ctx context.Context, root string, s settings, prices *Prices, memory memorySizes, measure func(st *stack, res *Results) error) error {
	var res Results
	if b, err := os.ReadFile(inRoot(root, s.results)); err == nil {
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", s.results, err)
		}
	}
	logf("starting DynamoDB Local, the local SES and the API")
	st, err := startStack(ctx, root)
	if err != nil {
		return err
	}
	defer st.close()
	if err := measure(st, &res); err != nil {
		return err
	}
	return write(root, s, &res, prices, memory)
}

// measuredNow is the stamp of a part measured now.
func measuredNow() string { return time.Now().UTC().Format("2006-01-02 15:04 UTC") }

// onlyImport measures the import and puts it into the existing results.
func onlyImport(ctx context.Context, root string, s settings, prices *Prices, memory memorySizes) error {
	return onlyPart(ctx, root, s, prices, memory, func(st *stack, res *Results) (err error) {
		logf("import: %d users through POST /api/users/import", s.importUsers)
		if res.Import, err = st.importBench(ctx, s.importUsers, s.importBudget, prices, memory); err != nil {
			return err
		}
		res.Import.Measured = measuredNow()
		return nil
	})
}

// onlyStream measures the stream path and puts it into the existing results.
func onlyStream(ctx context.Context, root string, s settings, prices *Prices, memory memorySizes) error {
	return onlyPart(ctx, root, s, prices, memory, func(st *stack, res *Results) (err error) {
		logf("the stream path: 30 sign-ups, each timed to its mail")
		if res.Stream, err = st.streamPath(ctx, 30); err != nil {
			return err
		}
		st.streamTotals(res.Stream)
		res.Stream.Measured = measuredNow()
		return nil
	})
}

// listScales measures the list at scale without word lists (s.listScale
// users) and then with them (s.listScaleWords), each on its own stack.
func listScales(ctx context.Context, root string, s settings, res *Results, prices *Prices) error {
	if s.listScale > 0 {
		l, err := listScale(ctx, root, s.listScale, s.listScaleRuns, false, 0, prices)
		if err != nil {
			return err
		}
		l.Measured, res.ListScale = measuredNow(), l
	}
	if s.listScaleWords > 0 {
		l, err := listScale(ctx, root, s.listScaleWords, s.listScaleRuns, true, s.listScaleImport, prices)
		if err != nil {
			return err
		}
		l.Measured, res.ListScaleWords = measuredNow(), l
	}
	return nil
}

// write prices the results, holds them to the targets and writes both
// files.
func write(root string, s settings, res *Results, prices *Prices, memory memorySizes) error {
	for _, l := range []*ListScale{res.ListScale, res.ListScaleWords} {
		if l == nil { // the extrapolation follows the code, also on -reprice
			continue
		}
		l.Method = listScaleMethod
		for i := range l.Cases {
			if !strings.HasPrefix(l.Cases[i].Note1M, "failed") {
				extrapolate(&l.Cases[i], l.Users)
			}
		}
	}
	res.Cost = costModel(prices, memory, res.Operations)
	if res.Import != nil {
		res.Import.Model = importModel(res.Import, prices, memory.of("ImportUsersFunction"))
	}
	if res.Stream != nil {
		res.Stream.PerThousand = streamCost(prices, memory, res.Stream)
	}
	res.Targets = targets(res)
	if err := writeJSON(inRoot(root, s.results), res); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(inRoot(root, s.report)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(inRoot(root, s.report), []byte(report(res, prices)), 0o644); err != nil {
		return err
	}
	logf("wrote %s and %s", s.report, s.results)
	printSummary(res)
	return nil
}

// reprice rewrites both files from the existing results.
func reprice(root string, s settings, prices *Prices, memory memorySizes) error {
	b, err := os.ReadFile(inRoot(root, s.results))
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", s.results, err)
	}
	return write(root, s, &res, prices, memory)
}

// Results is bench/results.json.
type Results struct {
	Generated   string             `json:"generated"`
	Machine     Machine            `json:"machine"`
	Build       BuildInfo          `json:"build"`
	Binaries    []Binary           `json:"binaries"`
	ColdStartMS map[string]float64 `json:"cold_start_ms"`
	ColdStarts  []ColdStart        `json:"cold_starts"`
	Operations  []Operation        `json:"operations"`
	// DynamoDBLocal shows how DynamoDB Local's units for transactions
	// differ from DynamoDB's, on probe transactions.
	DynamoDBLocal []Calibration `json:"dynamodb_local_transaction_units"`
	HashMS        float64       `json:"hash_ms"`
	Abuse         *Abuse        `json:"abuse,omitempty"`
	Import        *ImportBench  `json:"import,omitempty"`
	Stream        *StreamPath   `json:"stream,omitempty"`
	Groups        *GroupsBench  `json:"groups,omitempty"`
	Cost          Cost          `json:"cost"`
	Targets       []Target      `json:"targets"`
	ListScale     *ListScale    `json:"list_scale,omitempty"`
	// ListScaleWords is the list at scale with word lists (a smaller
	// table: DynamoDB Local writes a user's ~40 word list items slowly).
	ListScaleWords *ListScale `json:"list_scale_words,omitempty"`
	Notes          []string   `json:"notes,omitempty"`
}

// Machine is where and how the figures were taken.
type Machine struct {
	NProc         int     `json:"nproc"`
	GoVersion     string  `json:"go_version"`
	OS            string  `json:"os"`
	Arch          string  `json:"arch"`
	CPU           string  `json:"cpu"`
	Iterations    int     `json:"iterations"`
	Warmup        int     `json:"warmup"`
	ColdStartRuns int     `json:"cold_start_runs"`
	HashRuns      int     `json:"hash_runs"`
	ListUsers     int     `json:"list_users"`
	Seconds       float64 `json:"seconds"`
}

func machine(s settings) Machine {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return Machine{
		NProc: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPU: cpu,
		Iterations: s.iterations, Warmup: s.warmup, ColdStartRuns: s.coldRuns, HashRuns: s.hashRuns, ListUsers: s.listUsers,
	}
}

// Target is one goal of the issue, and whether the figures meet it.
type Target struct {
	Name  string  `json:"name"`
	Limit string  `json:"limit"`
	Value string  `json:"value"`
	Met   bool    `json:"met"`
	Worst float64 `json:"worst"`
	Why   string  `json:"why,omitempty"`
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %5.1fs "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}

// inRoot resolves a path given relative to the repository root.
func inRoot(root, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printSummary puts the headline figures on stdout.
func printSummary(r *Results) {
	fmt.Printf("\nhash (argon2id) p50: %.1f ms\n", r.HashMS)
	fmt.Printf("%-40s %8s %8s %5s %7s %4s %9s\n", "operation", "p50 ms", "p95 ms", "ddb", "units", "ses", "outside")
	for _, o := range r.Operations {
		if !o.Measured {
			fmt.Printf("%-40s %s\n", o.Name, o.Note)
			continue
		}
		fmt.Printf("%-40s %8.2f %8.2f %5d %7.1f %4d %9.2f\n", o.Name, o.P50MS, o.P95MS, o.DynamoDBRequests, o.CapacityUnits, o.SESSends, o.OutsideP50MS)
	}
	fmt.Println()
	for _, t := range r.Targets {
		mark := "met   "
		switch {
		case t.Value == "not measured":
			mark = "n/a   "
		case !t.Met:
			mark = "MISSED"
		}
		fmt.Printf("%s %-48s limit %-10s measured %s\n", mark, t.Name, t.Limit, t.Value)
	}
	fmt.Printf("\nmonthly workload: $%.2f (Cognito Lite $%.2f, Essentials $%.2f)\n",
		r.Cost.Workload.TotalUSD, r.Cost.Workload.Cognito.LiteUSD, r.Cost.Workload.Cognito.EssentialsUSD)
}
