// Command import streams users from a file into a stack through
// POST /api/users/import: JSON Lines (one user object a line), or CSV with a
// header row naming the fields. It sends batches of at most 1,000 users,
// shows a progress bar (plain counters when standard error is not a
// terminal), and records after each completed batch how far it got in a
// state file, so that a rerun after an interruption goes on from there (the
// service skips users that already exist, so a batch sent twice creates
// nothing twice). At the end it prints the totals; refused lines go to a
// file of their own, one JSON object a line with the input line number.
//
//	go run ./cmd/import -url https://api.example.com -file users.jsonl
//
// Credentials: -token or ACCOUNTS_TOKEN (a staff token), or -email with
// ACCOUNTS_PASSWORD (or the password typed on standard input) to log in.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/example/accounts/pkg/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:], os.Getenv, os.Stdin, os.Stderr)
	if err == nil {
		_, err = run(ctx, o, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "import:", err)
		os.Exit(1)
	}
}

// Options are what one run does.
type Options struct {
	URL, File, Format   string // Format: jsonl or csv
	Token, Email        string
	Password            string
	State, Refusals     string
	Batch               int
	HTTP                *http.Client
	Progress            bool // a progress bar, rather than a line per batch
	maxBatches          int  // tests: stop after this many batches, as an interruption would
	maxBytesPerRequest  int
	retriesPerLineTotal int
}

// maxRequestBytes keeps a batch under the service's 4 MiB.
const maxRequestBytes = 3_500_000

func parseFlags(args []string, getenv func(string) string, stdin io.Reader, stderr io.Writer) (Options, error) {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:3000", "the stack's API base URL")
	fs.StringVar(&o.File, "file", "", "input: JSON Lines (.jsonl, .ndjson) or CSV with a header row (.csv)")
	fs.StringVar(&o.Format, "format", "", "jsonl or csv (default: from the file's extension)")
	fs.StringVar(&o.Token, "token", getenv("ACCOUNTS_TOKEN"), "a staff token (default $ACCOUNTS_TOKEN)")
	fs.StringVar(&o.Email, "email", "", "log in as this staff member instead (password from $ACCOUNTS_PASSWORD or standard input)")
	fs.StringVar(&o.State, "state", "", "state file recording progress (default <file>.import-state.json)")
	fs.StringVar(&o.Refusals, "refused", "", "where refused lines go (default <file>.refused.jsonl)")
	fs.IntVar(&o.Batch, "batch", 1000, "users per request (at most 1000)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.File == "" {
		return o, errors.New("-file is required")
	}
	if o.Token == "" && o.Email != "" {
		o.Password = getenv("ACCOUNTS_PASSWORD")
		if o.Password == "" {
			fmt.Fprint(stderr, "Password for "+o.Email+": ")
			line, _ := bufio.NewReader(stdin).ReadString('\n')
			o.Password = strings.TrimRight(line, "\r\n")
		}
	}
	o.Progress = term.IsTerminal(int(os.Stderr.Fd()))
	return o, nil
}

// State is what the state file records: how far the input was imported.
type State struct {
	File string `json:"file"`
	// Offset is the byte offset after the last completed batch; Line the
	// last input line it held.
	Offset int64  `json:"offset"`
	Line   int    `json:"line"`
	Totals Totals `json:"totals"`
	Done   bool   `json:"done"`
}

// Totals add up the service's answers.
type Totals struct {
	Created  int `json:"created"`
	Skipped  int `json:"skipped"`
	Refused  int `json:"refused"`
	Warnings int `json:"warnings"`
}

// errInterrupted ends a run that stopped before the end of its input.
var errInterrupted = errors.New("interrupted: run the same command again to go on")

func (o *Options) defaults() error {
	if o.Batch == 0 {
		o.Batch = 1000
	}
	if o.Batch < 0 || o.Batch > 1000 {
		return errors.New("-batch must be between 1 and 1000")
	}
	if o.State == "" {
		o.State = o.File + ".import-state.json"
	}
	if o.Refusals == "" {
		o.Refusals = o.File + ".refused.jsonl"
	}
	if o.Format == "" {
		o.Format = "jsonl"
		if strings.HasSuffix(strings.ToLower(o.File), ".csv") {
			o.Format = "csv"
		}
	}
	if o.Format != "jsonl" && o.Format != "csv" {
		return errors.New("-format must be jsonl or csv")
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	if o.maxBytesPerRequest == 0 {
		o.maxBytesPerRequest = maxRequestBytes
	}
	if o.retriesPerLineTotal == 0 {
		o.retriesPerLineTotal = 3
	}
	return nil
}

// record is one user of the input: its JSON object, the input line it
// started on, and the byte offset after it.
type record struct {
	json []byte
	line int
	end  int64
}

// run imports o.File and returns the totals (also printed to stdout).
func run(ctx context.Context, o Options, stdout, stderr io.Writer) (Totals, error) {
	if err := o.defaults(); err != nil {
		return Totals{}, err
	}
	st, err := loadState(o.State, o.File)
	if err != nil {
		return Totals{}, err
	}
	if st.Done {
		fmt.Fprintf(stdout, "%s was imported already (%s); delete it to import again.\n", o.File, o.State)
		return st.Totals, nil
	}
	f, err := os.Open(o.File)
	if err != nil {
		return Totals{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Totals{}, err
	}
	next, err := reader(f, o.Format, st.Offset, st.Line)
	if err != nil {
		return Totals{}, err
	}
	c, auth, err := connect(ctx, o)
	if err != nil {
		return Totals{}, err
	}
	refusals, err := os.OpenFile(o.Refusals, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return Totals{}, err
	}
	defer refusals.Close()

	var bar *progressbar.ProgressBar
	if o.Progress {
		bar = progressbar.NewOptions64(info.Size(), progressbar.OptionSetWriter(stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("importing"), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionShowCount())
		_ = bar.Set64(st.Offset)
	}
	batches := 0
	for {
		batch, err := nextBatch(next, o)
		if err != nil {
			return st.Totals, err
		}
		if len(batch) == 0 {
			break
		}
		if o.maxBatches > 0 && batches == o.maxBatches {
			return st.Totals, errInterrupted
		}
		if err := sendBatch(ctx, c, auth, o, batch, &st.Totals, refusals); err != nil {
			if ctx.Err() != nil {
				return st.Totals, errInterrupted
			}
			return st.Totals, err
		}
		batches++
		last := batch[len(batch)-1]
		st.Offset, st.Line = last.end, last.line
		if err := saveState(o.State, st); err != nil {
			return st.Totals, err
		}
		if bar != nil {
			_ = bar.Set64(st.Offset)
		} else {
			fmt.Fprintf(stderr, "line %d: %d created, %d skipped, %d refused\n", st.Line, st.Totals.Created, st.Totals.Skipped, st.Totals.Refused)
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	st.Done = true
	if err := saveState(o.State, st); err != nil {
		return st.Totals, err
	}
	t := st.Totals
	fmt.Fprintf(stdout, "%d created, %d skipped (already there), %d refused, %d with warnings.\n", t.Created, t.Skipped, t.Refused, t.Warnings)
	if t.Refused > 0 {
		fmt.Fprintf(stdout, "Refused lines, with their errors: %s\n", o.Refusals)
	}
	return t, nil
}

// nextBatch reads up to o.Batch records within the request size.
func nextBatch(next func() (*record, error), o Options) ([]record, error) {
	var batch []record
	size := 0
	for len(batch) < o.Batch {
		r, err := next()
		if err != nil {
			return nil, err
		}
		if r == nil {
			break
		}
		batch = append(batch, *r)
		if size += len(r.json) + 1; size > o.maxBytesPerRequest {
			break
		}
	}
	return batch, nil
}

// sendBatch imports one batch; lines the service could not write now
// (service_unavailable) are sent again, and a failed request is retried
// whole, which the service's skip makes harmless.
func sendBatch(ctx context.Context, c *client.ClientWithResponses, auth client.RequestEditorFn, o Options, batch []record, t *Totals, refusals io.Writer) error {
	for attempt := 0; len(batch) > 0; attempt++ {
		var body bytes.Buffer
		for _, r := range batch {
			body.Write(r.json)
			body.WriteByte('\n')
		}
		res, err := c.UsersImportWithBodyWithResponse(ctx, "application/x-ndjson", &body, auth)
		if err == nil && res.JSON200 == nil {
			err = fmt.Errorf("the service answered %d: %s", res.StatusCode(), strings.TrimSpace(string(res.Body)))
			if res.StatusCode() < 500 && res.StatusCode() != http.StatusTooManyRequests {
				return err // will not get better by itself
			}
		}
		if err != nil {
			if attempt >= o.retriesPerLineTotal || ctx.Err() != nil {
				return err
			}
			backoff(ctx, attempt)
			continue
		}
		var again []record
		for _, r := range res.JSON200.Results {
			if r.Line < 1 || r.Line > len(batch) {
				return fmt.Errorf("the service answered for line %d of a %d-line batch", r.Line, len(batch))
			}
			in := batch[r.Line-1]
			if r.Result == client.ImportResultResultRefused && r.Error != nil && *r.Error == "service_unavailable" && attempt < o.retriesPerLineTotal {
				again = append(again, in)
				continue
			}
			switch r.Result {
			case client.ImportResultResultCreated:
				t.Created++
			case client.ImportResultResultSkipped:
				t.Skipped++
			default:
				t.Refused++
				r.Line = in.line // the input's line, not the batch's
				b, _ := json.Marshal(r)
				if _, err := refusals.Write(append(b, '\n')); err != nil {
					return err
				}
			}
			if r.Warnings != nil && len(*r.Warnings) > 0 {
				t.Warnings++
			}
		}
		batch = again
		if len(again) > 0 {
			backoff(ctx, attempt)
		}
	}
	return nil
}

func backoff(ctx context.Context, attempt int) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(1<<attempt) * 500 * time.Millisecond):
	}
}

// connect builds the client and the staff credentials: the token given, or
// one from logging in.
func connect(ctx context.Context, o Options) (*client.ClientWithResponses, client.RequestEditorFn, error) {
	c, err := client.NewClientWithResponses(strings.TrimRight(o.URL, "/"), client.WithHTTPClient(o.HTTP))
	if err != nil {
		return nil, nil, err
	}
	tok := o.Token
	if tok == "" {
		if o.Email == "" {
			return nil, nil, errors.New("give -token (or ACCOUNTS_TOKEN), or -email to log in")
		}
		res, err := c.AuthLoginWithResponse(ctx, client.LoginRequest{Login: &o.Email, Password: o.Password})
		if err != nil {
			return nil, nil, err
		}
		if res.JSON200 == nil {
			return nil, nil, fmt.Errorf("logging in as %s: the service answered %d", o.Email, res.StatusCode())
		}
		tok = res.JSON200.Token
	}
	return c, func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Token "+tok)
		return nil
	}, nil
}

func loadState(path, file string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{File: file}, nil
	}
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("%s: %w", path, err)
	}
	if st.File != file {
		return State{}, fmt.Errorf("%s records the import of %s, not %s", path, st.File, file)
	}
	return st, nil
}

// saveState writes the state atomically (a rename), so an interruption
// leaves the old state or the new one.
func saveState(path string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// reader returns the records of f from offset on (line is the last input
// line before offset); nil at the end.
func reader(f *os.File, format string, offset int64, line int) (func() (*record, error), error) {
	if format == "csv" {
		return csvReader(f, offset, line)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	pos := offset
	return func() (*record, error) {
		for {
			b, err := br.ReadBytes('\n')
			if len(b) == 0 && err == io.EOF {
				return nil, nil
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			pos += int64(len(b))
			line++
			if t := bytes.TrimSpace(b); len(t) > 0 {
				return &record{json: t, line: line, end: pos}, nil
			}
		}
	}, nil
}

// csvReader reads CSV with a header row: each row becomes an object of the
// header's fields, empty cells left out; true/false columns and numbers are
// typed as the service takes them, custom_data is JSON text, and list fields
// are separated by ";".
func csvReader(f *os.File, offset int64, line int) (func() (*record, error), error) {
	hr := csv.NewReader(f)
	header, err := hr.Read()
	if err != nil {
		return nil, fmt.Errorf("reading the CSV header: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	start, _ := hr.FieldPos(0)
	if offset == 0 {
		offset, line = hr.InputOffset(), start
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.FieldsPerRecord = len(header)
	return func() (*record, error) {
		row, err := r.Read()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		l, _ := r.FieldPos(0)
		obj := map[string]any{}
		for i, v := range row {
			if v == "" {
				continue
			}
			obj[header[i]] = csvValue(header[i], v)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		return &record{json: b, line: line + l, end: offset + r.InputOffset()}, nil
	}, nil
}

var (
	boolFields = map[string]bool{"is_staff": true, "is_support": true, "is_active": true, "notifications_enabled": true,
		"agree_with_policy": true, "is_identity_manager": true}
	intFields  = map[string]bool{"token_lifetime": true, "gender": true}
	listFields = map[string]bool{"nationalities": true, "eduperson_assurance": true, "managed_isds": true}
)

func csvValue(field, v string) any {
	switch {
	case boolFields[field]:
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b
		}
	case intFields[field]:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	case listFields[field]:
		return strings.Split(v, ";")
	case field == "custom_data":
		if json.Valid([]byte(v)) {
			return json.RawMessage(v)
		}
	}
	return v // the service says what is wrong with it
}
