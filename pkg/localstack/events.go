package localstack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// EventBus is the local stack's EventBridge: an HTTP endpoint that takes
// PutEvents calls from the SDK (the AWS JSON 1.1 protocol, as EventBridge
// speaks it), keeps the events, and shows them: GET /events is the JSON
// list, GET / a page, like the local inbox. The stream function publishes
// to it through the same SDK call it makes on AWS.
type EventBus struct {
	mu     sync.Mutex
	events []Event
	// failNext makes the next n PutEvents calls fail (fault injection).
	failNext int
	srv      *http.Server
	ln       net.Listener
}

// Event is one event put on the bus.
type Event struct {
	ID         string          `json:"id"`
	Bus        string          `json:"event_bus_name"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
	Time       time.Time       `json:"time"`
}

// StartEventBus listens on addr ("127.0.0.1:0" for any port).
func StartEventBus(addr string) (*EventBus, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &EventBus{ln: ln}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// Endpoint is the bus's URL, for EVENTBRIDGE_ENDPOINT.
func (b *EventBus) Endpoint() string { return "http://" + b.ln.Addr().String() }

// Stop closes the bus.
func (b *EventBus) Stop() { _ = b.srv.Close() }

// Events returns the events put so far.
func (b *EventBus) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

// FailNext makes the next n PutEvents calls answer 500.
func (b *EventBus) FailNext(n int) {
	b.mu.Lock()
	b.failNext = n
	b.mu.Unlock()
}

var eventsPage = template.Must(template.New("events").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local events</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .6em;text-align:left;vertical-align:top}pre{margin:0}</style></head>
<body><h1>Events put on the local bus</h1><p>{{len .}} events, newest first. JSON: <a href="/events">/events</a>.</p>
<table><tr><th>time</th><th>detail-type</th><th>source</th><th>detail</th></tr>
{{range .}}<tr><td>{{.Time.Format "15:04:05"}}</td><td>{{.DetailType}}</td><td>{{.Source}}</td><td><pre>{{printf "%s" .Detail}}</pre></td></tr>{{end}}
</table></body></html>`))

func (b *EventBus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == "AWSEvents.PutEvents":
		b.putEvents(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/events":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(b.Events())
	case r.Method == http.MethodGet && r.URL.Path == "/":
		evs := b.Events()
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = eventsPage.Execute(w, evs)
	default:
		awsError(w, http.StatusBadRequest, "UnknownOperationException", "only PutEvents is served here")
	}
}

func (b *EventBus) putEvents(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	fail := b.failNext > 0
	if fail {
		b.failNext--
	}
	b.mu.Unlock()
	if fail {
		awsError(w, http.StatusInternalServerError, "InternalException", "injected failure")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		awsError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	var in struct {
		Entries []struct {
			EventBusName, Source, DetailType, Detail string
			Time                                     *float64
		}
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Entries) == 0 || len(in.Entries) > 10 {
		awsError(w, http.StatusBadRequest, "ValidationException", "Entries must hold 1 to 10 entries")
		return
	}
	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	b.mu.Lock()
	for _, e := range in.Entries {
		if e.Source == "" || e.DetailType == "" || !json.Valid([]byte(e.Detail)) || !strings.HasPrefix(strings.TrimSpace(e.Detail), "{") {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: "InvalidArgument", ErrorMessage: "Source, DetailType and a JSON object Detail are required"})
			continue
		}
		id := newID()
		t := time.Now().UTC()
		if e.Time != nil {
			t = time.Unix(int64(*e.Time), 0).UTC()
		}
		b.events = append(b.events, Event{ID: id, Bus: e.EventBusName, Source: e.Source, DetailType: e.DetailType, Detail: json.RawMessage(e.Detail), Time: t})
		out.Entries = append(out.Entries, result{EventID: id})
	}
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
