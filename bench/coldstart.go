package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/example/accounts/pkg/lambdatest"
)

// ColdStart is one function's cold start, the median of several: from the
// process start to its first poll for an event, and the first invocation.
type ColdStart struct {
	Function      string  `json:"function"`
	FirstPollMS   float64 `json:"first_poll_ms"`
	FirstPollMin  float64 `json:"first_poll_min_ms"`
	FirstPollMax  float64 `json:"first_poll_max_ms"`
	FirstInvokeMS float64 `json:"first_invoke_ms"`
	Runs          int     `json:"runs"`
	Event         string  `json:"event"`
	Status        int     `json:"status"`
}

// coldStarts starts each host-built binary runs times under the Lambda
// Runtime API of pkg/lambdatest, with the environment of the local stack,
// and invokes it once with its sample event. The starts go round the
// functions in turn, after one round that is not counted (it brings the
// files into the page cache and lets the freshly started stack settle), so
// that a burst of noise on the machine spreads over all functions instead
// of landing on a few.
func coldStarts(ctx context.Context, root string, st *stack, bins []builtFunction, memoryMB, runs int) ([]ColdStart, error) {
	cfg := st.env.Config
	vars := []string{
		"TABLE_NAME=" + cfg.TableName,
		"MAIL_FROM=" + cfg.MailFrom,
		"TOKEN_KEY=" + cfg.TokenKey,
		"AWS_REGION=" + cfg.Region,
		"DYNAMODB_ENDPOINT=" + cfg.DynamoEndpoint,
		"SES_ENDPOINT=" + cfg.SESEndpoint,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
	}
	for k, v := range rateLimits {
		vars = append(vars, k+"="+v)
	}
	events := make([][]byte, len(bins))
	out := make([]ColdStart, len(bins))
	polls := make([][]time.Duration, len(bins))
	invokes := make([][]time.Duration, len(bins))
	for i, b := range bins {
		ev, name, err := sampleEvent(root, st, b.Function, b.Dir)
		if err != nil {
			return nil, err
		}
		events[i], out[i] = ev, ColdStart{Function: b.Function, Runs: runs, Event: name}
	}
	for round := 0; round <= runs; round++ {
		for i, b := range bins {
			poll, inv, status, err := coldStart(ctx, b, vars, memoryMB, events[i])
			if err != nil {
				return nil, fmt.Errorf("cold start of %s: %w", b.Function, err)
			}
			if round > 0 {
				polls[i], invokes[i], out[i].Status = append(polls[i], poll), append(invokes[i], inv), status
			}
		}
	}
	for i := range out {
		sp := summarize(polls[i])
		out[i].FirstPollMS, out[i].FirstPollMin, out[i].FirstPollMax = sp.p50, sp.min, sp.max
		out[i].FirstInvokeMS = summarize(invokes[i]).p50
	}
	return out, nil
}

// coldStart starts b once on a Runtime API server of its own: a server
// reused across processes can receive a killed process's last /next poll
// after the next process started, and take that process's first event.
func coldStart(ctx context.Context, b builtFunction, vars []string, memoryMB int, event []byte) (poll, invoke time.Duration, status int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	srv := lambdatest.New()
	defer srv.Close()
	fn, err := srv.Start(ctx, lambdatest.Config{Binary: b.host, Env: vars, Name: b.Function, MemoryMB: memoryMB})
	if err != nil {
		return 0, 0, 0, err
	}
	defer fn.Stop()
	if poll, err = fn.WaitFirstPoll(ctx); err != nil {
		return 0, 0, 0, fmt.Errorf("%w; output: %s", err, fn.Output())
	}
	res, err := fn.Invoke(ctx, event)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w; output: %s", err, fn.Output())
	}
	if res.Error != nil {
		return 0, 0, 0, fmt.Errorf("the function failed: %v", res.Error)
	}
	var answer struct {
		StatusCode int `json:"statusCode"`
	}
	_ = json.Unmarshal(res.Payload, &answer)
	return poll, res.Duration, answer.StatusCode, nil
}

// sampleEvent is events/<dir>.json, the function's sample HTTP API event;
// a function without one gets a bare event for its first route in the
// template.
func sampleEvent(root string, st *stack, id, dir string) ([]byte, string, error) {
	name := filepath.Join("events", dir+".json")
	if b, err := os.ReadFile(filepath.Join(root, name)); err == nil {
		return b, name, nil
	}
	for _, r := range st.tpl.Routes {
		if r.FunctionID != id {
			continue
		}
		method := r.Method
		if method == "ANY" {
			method = "GET"
		}
		ev := map[string]any{
			"version": "2.0", "routeKey": r.Key(), "rawPath": r.Path, "rawQueryString": "",
			"headers": map[string]string{"accept": "application/json", "host": "localhost"},
			"requestContext": map[string]any{
				"accountId": "123456789012", "apiId": "local", "domainName": "localhost", "stage": "$default",
				"requestId": "bench-cold-start", "routeKey": r.Key(),
				"http": map[string]string{"method": method, "path": r.Path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
			},
			"isBase64Encoded": false,
		}
		b, err := json.Marshal(ev)
		return b, "bare " + r.Key(), err
	}
	return nil, "", fmt.Errorf("%s has neither %s nor a route in template.yaml", id, name)
}
