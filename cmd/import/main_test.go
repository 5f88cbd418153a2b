package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	os.Exit(code)
}

// cancelAfter forwards requests and, from the n-th on, cancels the run once
// the service has answered, before the command reads the answer: as if
// the command were killed while a batch was in flight.
type cancelAfter struct {
	n      int32
	seen   atomic.Int32
	cancel context.CancelFunc
}

func (c *cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if c.seen.Add(1) >= c.n && strings.HasSuffix(r.URL.Path, "/import") {
		if res != nil {
			res.Body.Close()
		}
		c.cancel()
		return nil, context.Canceled
	}
	return res, err
}

func lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestImportIsResumableAfterAnInterruption(t *testing.T) {
	staff := env.NewStaff(t, "cmd-staff", false)
	dir := t.TempDir()
	file := filepath.Join(dir, "users.jsonl")
	var in bytes.Buffer
	var emails []string
	for i := range 11 {
		if i == 4 {
			in.WriteString(`{"email":"not an address"}` + "\n\n") // line 5 refused; line 6 blank
			continue
		}
		e := testenv.Email(fmt.Sprintf("cmd%d", i))
		emails = append(emails, e)
		fmt.Fprintf(&in, `{"email":%q,"first_name":"User %d","date_joined":"2020-01-0%dT00:00:00Z"}`+"\n", e, i, 1+i%9)
	}
	if err := os.WriteFile(file, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Options{URL: env.URL, File: file, Token: staff.Token, Batch: 3}
	var out, errOut bytes.Buffer

	// 1. Stopped after two batches (lines 1-3, then 4-6).
	o := base
	o.maxBatches = 2
	if _, err := run(context.Background(), o, &out, &errOut); !errors.Is(err, errInterrupted) {
		t.Fatalf("first run: %v", err)
	}
	st, err := loadState(file+".import-state.json", file)
	if err != nil || st.Line != 7 || st.Done || st.Totals.Created != 5 || st.Totals.Refused != 1 {
		// Batch 2 is lines 4, 5 and 7 (6 is blank).
		t.Fatalf("state after two batches: %+v %v", st, err)
	}

	// 2. Killed while the third batch was in flight: the service created
	// its users, the command never heard.
	ctx, cancel := context.WithCancel(context.Background())
	o = base
	o.HTTP = &http.Client{Transport: &cancelAfter{n: 1, cancel: cancel}}
	if _, err := run(ctx, o, &out, &errOut); !errors.Is(err, errInterrupted) {
		t.Fatalf("second run: %v", err)
	}
	if st2, _ := loadState(file+".import-state.json", file); st2.Line != st.Line {
		t.Fatalf("the interrupted batch moved the state: %+v", st2)
	}

	// 3. The rerun goes on from line 8: the in-flight batch's users are
	// skipped, the rest created; the totals cover the whole file.
	out.Reset()
	errOut.Reset()
	withBar := base
	withBar.Progress = true
	tot, err := run(context.Background(), withBar, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "importing") || !strings.Contains(errOut.String(), "100%") {
		t.Errorf("progress bar: %q", errOut.String())
	}
	if tot.Created+tot.Skipped != len(emails) || tot.Skipped != 3 || tot.Refused != 1 {
		t.Fatalf("totals %+v", tot)
	}
	if !strings.Contains(out.String(), "7 created, 3 skipped (already there), 1 refused") {
		t.Errorf("summary: %q", out.String())
	}
	ref := lines(t, file+".refused.jsonl")
	if len(ref) != 1 || ref[0]["line"] != float64(5) || ref[0]["fields"].(map[string]any)["email"] == nil {
		t.Errorf("refusals: %v", ref)
	}
	// Every user exists once, with what the file said.
	for i, e := range emails {
		r := env.Do(t, "GET", "/api/users?email="+e, nil, "Authorization", "Token "+staff.Token)
		var got []map[string]any
		_ = json.Unmarshal(r.Body, &got)
		if r.Status != 200 || len(got) != 1 {
			t.Fatalf("user %d: %d %s", i, r.Status, r.Body)
		}
	}

	// 4. Done: a rerun says so; without the state file it creates nothing.
	out.Reset()
	if _, err := run(context.Background(), base, &out, &errOut); err != nil || !strings.Contains(out.String(), "imported already") {
		t.Fatalf("rerun after the end: %v %q", err, out.String())
	}
	if err := os.Remove(file + ".import-state.json"); err != nil {
		t.Fatal(err)
	}
	tot, err = run(context.Background(), base, &out, &errOut)
	if err != nil || tot.Created != 0 || tot.Skipped != len(emails) {
		t.Fatalf("rerun without state: %+v %v", tot, err)
	}
}

func TestImportReadsCSVAndLogsIn(t *testing.T) {
	staff := env.NewStaff(t, "cmd-staff", false)
	dir := t.TempDir()
	file := filepath.Join(dir, "users.csv")
	a, b := testenv.Email("csv-a"), testenv.Email("csv-b")
	// Django's pbkdf2_sha256 of "correct horse battery staple" (pkg/secret/testdata).
	hash := "pbkdf2_sha256$600000$saltsaltsalt1234$/zwqxPgxkxrG8rGjbG1fvy7WAg17IvjU9zlAkTmiZdk="
	csv := "email,username,first_name,is_support,status,date_joined,password_hash,custom_data\n" +
		a + ",csv-a-" + strings.Split(a, "@")[0][6:] + ",\"Ada, Countess\",true,ENABLED,2018-05-06T07:08:09Z," + hash + ",\"{\"\"plan\"\":\"\"pro\"\"}\"\n" +
		b + ",,,,DISABLED,,,\n" +
		"bad,,,,,,,\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	// Staff credentials instead of a token.
	tot, err := run(context.Background(), Options{URL: env.URL, File: file, Email: staff.Email, Password: staff.Password}, &out, &errOut)
	if err != nil || tot.Created != 2 || tot.Refused != 1 {
		t.Fatalf("csv import: %+v %v\n%s", tot, err, errOut.String())
	}
	if ref := lines(t, file+".refused.jsonl"); len(ref) != 1 || ref[0]["line"] != float64(4) {
		t.Errorf("refusals: %v", ref)
	}
	tok := env.Login(t, a, "correct horse battery staple")
	me := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok)
	m := me.JSON()
	if m["first_name"] != "Ada, Countess" || m["is_support"] != true || m["date_joined"] != "2018-05-06T07:08:09Z" ||
		m["custom_data"].(map[string]any)["plan"] != "pro" {
		t.Errorf("imported from CSV: %s", me.Body)
	}
	if r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": b, "password": "anything at all"}); r.Status != 401 {
		t.Errorf("disabled user without a password: %d", r.Status)
	}
}
