// Command echo is a tiny Lambda function for the lambdatest tests. It
// answers an event with the event itself and what the runtime told it about
// the invocation, and misbehaves on request:
//
//	{"fail": "msg"}    the handler returns an error
//	{"panic": "msg"}   the handler panics (the process then exits)
//	{"sleep_ms": 1500} the handler sleeps, ignoring its deadline
//	{"exit": 3}        the process exits without answering
//	{"big": 7000000}   the answer is a string of that many bytes
//
// With ECHO_INIT_FAIL set it reports a failed init to the Runtime API and
// exits, as a runtime does when the function cannot start. With ECHO_SIGTERM
// set it asks for SIGTERM at shutdown (lambda.WithEnableSIGTERM, which
// registers an internal extension) and logs it. With ECHO_IDLE set it never
// polls, so that a test can speak the Runtime API in its place.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Fail    string `json:"fail"`
	Panic   string `json:"panic"`
	SleepMs int    `json:"sleep_ms"`
	Exit    *int   `json:"exit"`
	Big     int    `json:"big"`
}

type reply struct {
	Event        json.RawMessage `json:"event"`
	Invocation   int             `json:"invocation"`
	RequestID    string          `json:"request_id"`
	FunctionARN  string          `json:"function_arn"`
	DeadlineMs   int64           `json:"deadline_ms"`
	FunctionName string          `json:"function_name"`
	MemoryMB     string          `json:"memory_mb"`
	Region       string          `json:"region"`
	TraceID      string          `json:"trace_id"`
	Extra        string          `json:"extra"`
}

var invocations int

func handle(ctx context.Context, event json.RawMessage) (any, error) {
	invocations++
	var req request
	_ = json.Unmarshal(event, &req)
	switch {
	case req.Fail != "":
		return nil, errors.New(req.Fail)
	case req.Panic != "":
		panic(req.Panic)
	case req.Exit != nil:
		os.Exit(*req.Exit)
	case req.SleepMs > 0:
		time.Sleep(time.Duration(req.SleepMs) * time.Millisecond)
	case req.Big > 0:
		return strings.Repeat("x", req.Big), nil
	}
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	return reply{
		Event:        event,
		Invocation:   invocations,
		RequestID:    lc.AwsRequestID,
		FunctionARN:  lc.InvokedFunctionArn,
		DeadlineMs:   deadline.UnixMilli(),
		FunctionName: lambdacontext.FunctionName,
		MemoryMB:     os.Getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
		Region:       os.Getenv("AWS_REGION"),
		TraceID:      os.Getenv("_X_AMZN_TRACE_ID"),
		Extra:        os.Getenv("ECHO_EXTRA"),
	}, nil
}

func main() {
	log.Printf("echo: init pid=%d", os.Getpid())
	if msg := os.Getenv("ECHO_INIT_FAIL"); msg != "" {
		reportInitError(msg)
		os.Exit(1)
	}
	if os.Getenv("ECHO_IDLE") != "" {
		time.Sleep(time.Hour)
	}
	var opts []lambda.Option
	if os.Getenv("ECHO_SIGTERM") != "" {
		opts = append(opts, lambda.WithEnableSIGTERM(func() {
			log.Print("echo: SIGTERM")
			os.Exit(0)
		}))
	}
	lambda.StartWithOptions(handle, opts...)
}

func reportInitError(msg string) {
	body, _ := json.Marshal(map[string]string{"errorMessage": msg, "errorType": "Runtime.EchoInitError"})
	url := fmt.Sprintf("http://%s/2018-06-01/runtime/init/error", os.Getenv("AWS_LAMBDA_RUNTIME_API"))
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.EchoInitError")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Printf("echo: reporting init error: %v", err)
		return
	}
	resp.Body.Close()
	log.Printf("echo: init error reported: %s", resp.Status)
}
