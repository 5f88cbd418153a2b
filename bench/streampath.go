package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/testenv"
)

// StreamPath is the event side measured: how long a sign-up's mail takes to
// reach SES through the outbox and the stream, and what the stream
// function does per record (priced in the cost model).
type StreamPath struct {
	// Measured is when this part ran (-only-stream keeps the rest).
	Measured string `json:"measured,omitempty"`
	Runs     int    `json:"runs"`
	// To SES: from the sign-up's answer to the stream function handing the
	// mail to SES (the poller polls every 50 ms, as Lambda polls a shard
	// about 4 times a second).
	ToSESP50MS float64 `json:"to_ses_p50_ms"`
	ToSESP95MS float64 `json:"to_ses_p95_ms"`
	// What the stream function did over the whole bench run.
	Records          int     `json:"records"`
	Invocations      int     `json:"invocations"`
	HandlerMS        float64 `json:"handler_ms"` // in the handler, all invocations
	DynamoDBRequests int     `json:"dynamodb_requests"`
	Capacity         float64 `json:"capacity_units"`
	Mails            int     `json:"mails"`
	Events           int     `json:"events"`
	// Per thousand records, priced (cost model).
	PerThousand StreamCost `json:"per_thousand_records"`
}

// StreamCost is the stream function's cost per thousand records.
type StreamCost struct {
	MemoryMB    int     `json:"memory_mb"`
	LambdaUSD   float64 `json:"lambda_usd"`
	DynamoDBUSD float64 `json:"dynamodb_usd"`
	EventsUSD   float64 `json:"eventbridge_usd"`
	SESUSD      float64 `json:"ses_usd"`
	TotalUSD    float64 `json:"total_usd"`
	Method      string  `json:"method"`
}

// streamPath signs up n accounts, one at a time, and times each one's mail
// from the answer to the SES call.
func (st *stack) streamPath(ctx context.Context, n int) (*StreamPath, error) {
	var mu sync.Mutex
	sent := map[string]time.Time{}
	st.env.SetMailFault(func(m mail.Message) error {
		mu.Lock()
		if _, ok := sent[strings.ToLower(m.To)]; !ok {
			sent[strings.ToLower(m.To)] = time.Now()
		}
		mu.Unlock()
		return nil
	})
	defer st.env.SetMailFault(nil)
	var lat []float64
	for i := range n {
		addr := strings.ToLower(testenv.Email(fmt.Sprintf("bench-stream-%d", i)))
		_, err := st.do(ctx, request{method: http.MethodPost, path: "/api/users", want: http.StatusCreated, body: map[string]any{"email": addr, "password": testenv.DefaultPassword}})
		if err != nil {
			return nil, fmt.Errorf("stream path: %w", err)
		}
		answered := time.Now()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			at, ok := sent[addr]
			mu.Unlock()
			if ok {
				lat = append(lat, ms(at.Sub(answered)))
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("stream path: no mail to %s within 30 s", addr)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	sum := summarizeF(lat)
	return &StreamPath{Runs: n, ToSESP50MS: sum.p50, ToSESP95MS: sum.p95}, nil
}

// streamTotals fills in what the stream function did over the whole run.
func (st *stack) streamTotals(p *StreamPath) {
	if p == nil || st.env.Stream == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = st.env.Stream.Drain(ctx)
	p.Records, p.Invocations = st.env.Stream.Stats()
	p.HandlerMS = round2(ms(st.env.Stream.Busy()))
	snap := st.env.StreamRequests.Snapshot()
	p.DynamoDBRequests, p.Capacity = snap.Requests, round2(snap.Capacity)
	p.Events = len(st.env.Bus.Events())
	p.Mails = strings.Count(st.env.StreamLogs.String(), `"msg":"mail sent"`)
}

// streamCost prices a thousand records of what the run's stream function
// did on average.
func streamCost(pr *Prices, mem memorySizes, p *StreamPath) StreamCost {
	c := StreamCost{MemoryMB: mem.of("StreamFunction"),
		Method: "the run's totals scaled to 1,000 records: Lambda requests per invocation and GB-seconds of the handler time (this machine's, not scaled); DynamoDB capacity units as DynamoDB Local reported them, priced as writes (the stream function mostly writes: the mail's lease and delete, the event marker); one PutEvents entry per event; one SES send per mail"}
	if p == nil || p.Records == 0 {
		return c
	}
	k := 1000 / float64(p.Records)
	inv := float64(p.Invocations) * k
	seconds := p.HandlerMS / 1000 * k
	c.LambdaUSD = round4(inv/1e6*pr.Lambda.PerMillionRequests + seconds*float64(c.MemoryMB)/1024*pr.Lambda.PerGBSecond)
	c.DynamoDBUSD = round4(p.Capacity * k / 1e6 * pr.DynamoDB.PerMillionWRU)
	c.EventsUSD = round4(float64(p.Events) * k / 1e6 * pr.EventBridge.PerMillionEvents)
	c.SESUSD = round4(float64(p.Mails) * k / 1000 * pr.SES.PerThousand)
	c.TotalUSD = round4(c.LambdaUSD + c.DynamoDBUSD + c.EventsUSD + c.SESUSD)
	return c
}

// streamReport is the report's section on the event side.
func streamReport(p *StreamPath) string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## The event side: outbox mail through the stream\n\n")
	if p.Measured != "" {
		w("Measured by one run of this part (`go run ./bench -only-stream`) on %s.\n\n", p.Measured)
	}
	w("Requests queue their mail in the table; the stream function sends it (docs/EVENTS.md). Locally the stream poller (`pkg/localstack`) runs the same handler over DynamoDB Local's stream, polling each shard every 50 ms (Lambda polls a shard about four times a second, and the mapping's batching window is 1 s, so on AWS add up to about 1.25 s).\n\n")
	w("| | p50 ms | p95 ms | runs |\n|---|---:|---:|---:|\n")
	w("| sign-up answered → the stream function hands the mail to SES | %.2f | %.2f | %d |\n\n", p.ToSESP50MS, p.ToSESP95MS, p.Runs)
	w("Over the run that measured this, the stream function handled **%d records** in %d invocations (%.1f records each), %.0f ms in the handler, %d DynamoDB requests (%.2f per record, %.1f capacity units), %d mails, %d events.\n\n",
		p.Records, p.Invocations, float64(p.Records)/float64(max(1, p.Invocations)), p.HandlerMS, p.DynamoDBRequests, float64(p.DynamoDBRequests)/float64(max(1, p.Records)), p.Capacity, p.Mails, p.Events)
	c := p.PerThousand
	w("Cost per **1,000 records** (%d MB): Lambda $%.4f, DynamoDB $%.4f, EventBridge $%.4f, SES $%.4f, **total $%.4f**. Method: %s.\n\n", c.MemoryMB, c.LambdaUSD, c.DynamoDBUSD, c.EventsUSD, c.SESUSD, c.TotalUSD, c.Method)
	return b.String()
}
