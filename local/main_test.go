package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// freePort is a port nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}

// TestMakeRunShowsMailAndEvents runs what `make run` runs, on free ports
// and a data folder of its own, signs up over HTTP, and finds the mail in
// the inbox and the event on the events page it printed: both through the
// stream.
func TestMakeRunShowsMailAndEvents(t *testing.T) {
	t.Setenv("LOCAL_DATA_DIR", t.TempDir()) // not the developer's .local
	ports := map[string]string{"PORT": freePort(t), "DYNAMODB_PORT": freePort(t), "SES_PORT": freePort(t), "S3_PORT": freePort(t), "EVENTS_PORT": freePort(t)}
	for k, v := range ports {
		t.Setenv(k, v)
	}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewJSONHandler(io.Discard, nil)), out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	api := "http://127.0.0.1:" + ports["PORT"]
	for start := time.Now(); !strings.Contains(out.String(), "Stop with Ctrl-C"); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("run stopped: %v", err)
		default:
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("the local stack did not start; printed %q", out.String())
		}
	}
	printed := out.String()
	for _, want := range []string{api, "Inbox:  http://127.0.0.1:" + ports["SES_PORT"], "Events: http://127.0.0.1:" + ports["EVENTS_PORT"]} {
		if !strings.Contains(printed, want) {
			t.Errorf("make run printed %q, without %q", printed, want)
		}
	}
	email := "make-run-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.com"
	body, _ := json.Marshal(map[string]any{"email": email, "password": "violet-Tractor-93-lantern"})
	res, err := http.Post(api+"/api/users", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		UUID string `json:"uuid"`
	}
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || created.UUID == "" {
		t.Fatalf("sign-up: %d", res.StatusCode)
	}
	code := regexp.MustCompile(`/account/activate\?code=[A-Za-z0-9_-]+`)
	var mailed, evented bool
	for start := time.Now(); (!mailed || !evented) && time.Since(start) < 30*time.Second; time.Sleep(100 * time.Millisecond) {
		var store struct {
			Emails []struct {
				Destination struct {
					To []string `json:"to"`
				} `json:"destination"`
				Body struct {
					Text string `json:"text"`
				} `json:"body"`
			} `json:"emails"`
		}
		getJSON(t, "http://127.0.0.1:"+ports["SES_PORT"]+"/store", &store)
		for _, m := range store.Emails {
			if len(m.Destination.To) > 0 && strings.EqualFold(m.Destination.To[0], email) && code.MatchString(m.Body.Text) {
				mailed = true
			}
		}
		var evs []struct {
			DetailType string `json:"detail-type"`
			Detail     struct {
				User struct {
					UUID string `json:"uuid"`
				} `json:"user"`
			} `json:"detail"`
		}
		getJSON(t, "http://127.0.0.1:"+ports["EVENTS_PORT"]+"/events", &evs)
		for _, e := range evs {
			if e.DetailType == "account.signed_up" && e.Detail.User.UUID == created.UUID {
				evented = true
			}
		}
	}
	if !mailed {
		t.Error("the activation mail did not reach the local inbox")
	}
	if !evented {
		t.Error("account.signed_up did not reach the local events page")
	}
	page, err := http.Get("http://127.0.0.1:" + ports["EVENTS_PORT"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if !strings.Contains(string(b), "account.signed_up") {
		t.Errorf("the events page does not show the event: %.300s", b)
	}
}
