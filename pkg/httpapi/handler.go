package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
)

// LambdaHandler is what every function hands to lambda.Start and what the
// local server calls in process.
type LambdaHandler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Func is an endpoint: it returns a Response or an error (an *Error shapes
// the answer; anything else is a 500).
type Func func(ctx context.Context, r *Request) (*Response, error)

// Response is an endpoint's answer before it becomes an event.
type Response struct {
	Status  int
	Body    any // marshalled as JSON when not nil
	Headers map[string]string
	// Raw is a body sent as it is (an HTML page, a stylesheet), with the
	// Content-Type in Headers; it is used when Body is nil.
	Raw string
	// Cookies are Set-Cookie header values.
	Cookies []string
	// Err is an error already rendered into this response (a page that
	// shows it); it goes into the request's log line as a returned error does.
	Err error
	// Binary is a body of bytes (an image), sent base64 in the event, with
	// the Content-Type in Headers; it is used when Body is nil.
	Binary []byte
}

// Bytes answers status with b as the body, of content type ctype.
func Bytes(status int, b []byte, ctype string) *Response {
	return (&Response{Status: status, Binary: b}).WithHeader("Content-Type", ctype)
}

// JSON answers status with v as the body.
func JSON(status int, v any) *Response { return &Response{Status: status, Body: v} }

// NoContent answers 204.
func NoContent() *Response { return &Response{Status: http.StatusNoContent} }

// WithHeader sets a header on the response.
func (r *Response) WithHeader(k, v string) *Response {
	if r.Headers == nil {
		r.Headers = map[string]string{}
	}
	r.Headers[k] = v
	return r
}

type logInfo struct {
	mu   sync.Mutex
	user string
}

type logKey struct{}

// SetUser records the authenticated user's uuid for the request log line.
func SetUser(ctx context.Context, uuid string) {
	if li, ok := ctx.Value(logKey{}).(*logInfo); ok {
		li.mu.Lock()
		li.user = uuid
		li.mu.Unlock()
	}
}

type ridKey struct{}

type ipKey struct{}

// ClientIP returns the source IP of ctx's request ("" outside one), for the
// per-IP limits that apply below the handler (HTTP Basic logins).
func ClientIP(ctx context.Context) string {
	s, _ := ctx.Value(ipKey{}).(string)
	return s
}

type apiKey struct{}

// APIStage returns the id and stage of the API Gateway API that received
// ctx's request, as API Gateway set them in the event: the service's own
// execute-api URL is built from them where no public URL is configured.
// Unlike the Host and X-Forwarded-* headers, no client can choose them.
func APIStage(ctx context.Context) (id, stage string) {
	v, _ := ctx.Value(apiKey{}).([2]string)
	return v[0], v[1]
}

// WithClientIP returns ctx carrying ip as the request's source IP.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

type routeKey struct{}

// Route returns the name of the endpoint serving ctx's request ("" outside
// one), so that what a request does below the handler can be traced to it.
func Route(ctx context.Context) string {
	s, _ := ctx.Value(routeKey{}).(string)
	return s
}

// WithRoute names the endpoint or trigger ctx's work is for (Route).
func WithRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, routeKey{}, route)
}

// RequestID returns the request id in ctx, for log lines below the handler.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(ridKey{}).(string)
	return s
}

// Wrap turns an endpoint into a LambdaHandler: it sets the request id,
// recovers panics, renders errors in the contract's envelope and logs one
// JSON line per request. It never returns a Go error, so the Lambda service
// always gets an HTTP answer.
func Wrap(route string, log *slog.Logger, fn Func) LambdaHandler {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (out events.APIGatewayV2HTTPResponse, _ error) {
		start := time.Now()
		id := ev.RequestContext.RequestID
		if id == "" {
			id = uuid.NewString()
		}
		li := &logInfo{}
		ctx = context.WithValue(ctx, logKey{}, li)
		ctx = context.WithValue(ctx, ridKey{}, id)
		ctx = context.WithValue(ctx, routeKey{}, route)
		ctx = WithClientIP(ctx, ev.RequestContext.HTTP.SourceIP)
		ctx = context.WithValue(ctx, apiKey{}, [2]string{ev.RequestContext.APIID, ev.RequestContext.Stage})
		req := newRequest(ev, id)

		var resp *Response
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = Internal(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
				}
			}()
			resp, err = fn(ctx, req)
		}()
		if err != nil {
			// Any other error is a 500; the log line below reads the same *Error.
			if _, ok := AsError(err); !ok {
				err = Internal(err)
			}
			resp = errorResponse(err)
		} else if resp != nil && resp.Err != nil {
			err = resp.Err
			if _, ok := AsError(err); !ok {
				err = Internal(err)
			}
		}
		out = render(resp, id)
		li.mu.Lock()
		user := li.user
		li.mu.Unlock()
		attrs := []any{
			slog.String("request_id", id),
			slog.String("route", route),
			slog.String("method", ev.RequestContext.HTTP.Method),
			slog.Int("status", out.StatusCode),
			slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if user != "" {
			attrs = append(attrs, slog.String("user", user))
		}
		level := slog.LevelInfo
		if err != nil {
			e, _ := AsError(err)
			attrs = append(attrs, slog.String("error", e.Code))
			if e.Cause != nil {
				attrs = append(attrs, slog.String("cause", e.Cause.Error()))
			}
			if out.StatusCode >= 500 {
				level = slog.LevelError
			}
		}
		log.Log(ctx, level, "request", attrs...)
		return out, nil
	}
}

func errorResponse(err error) *Response {
	e, ok := AsError(err)
	if !ok {
		e = Internal(err)
	}
	body := map[string]any{"error": e.Code, "error_description": e.Message}
	if e.Status == http.StatusBadRequest {
		body["payload"] = e.Message
		if len(e.Fields) > 0 {
			body["fields"] = e.Fields
		}
	}
	r := JSON(e.Status, body)
	if e.Status == http.StatusUnauthorized {
		r.WithHeader("WWW-Authenticate", "Token")
	}
	if e.RetryAfter > 0 {
		r.WithHeader("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	return r
}

// render makes r the event every answer is: with Request-Id, nosniff, and
// Cache-Control: no-store unless the endpoint chose otherwise, since answers
// carry tokens, codes and personal data that no cache may keep.
func render(r *Response, id string) events.APIGatewayV2HTTPResponse {
	out := events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Headers: map[string]string{"Request-Id": id, "Cache-Control": "no-store"}}
	for k, v := range r.Headers {
		out.Headers[k] = v
	}
	out.Headers["X-Content-Type-Options"] = "nosniff"
	out.Cookies = r.Cookies
	if r.Body == nil && r.Binary != nil {
		out.Body = base64.StdEncoding.EncodeToString(r.Binary)
		out.IsBase64Encoded = true
		return out
	}
	if r.Body == nil && r.Raw != "" {
		out.Body = r.Raw
	}
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return render(errorResponse(Internal(err)), id)
		}
		out.Body = string(b)
		out.Headers["Content-Type"] = "application/json"
	}
	return out
}
