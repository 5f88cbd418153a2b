package localstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/uuid"
)

// Handler is a Lambda function behind an HTTP API (payload format 2.0), as
// handed to lambda.Start.
type Handler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// MaxRequestBodyBytes is API Gateway's own limit on a request body (10 MiB);
// a larger body gets 413 before any handler runs. Handlers enforce the
// application's smaller limit themselves.
const MaxRequestBodyBytes = 10 << 20

// DefaultAccountID is the account id put into events when
// ServerOptions.AccountID is empty.
const DefaultAccountID = "123456789012"

// ServerOptions configures NewServer.
type ServerOptions struct {
	// AccountID goes into RequestContext.AccountID; empty means
	// DefaultAccountID.
	AccountID string
	// Region goes into the function ARN of the Lambda context; empty means
	// us-east-1.
	Region string
	// Logger receives a Debug line per request and an Error line per
	// failed function; nil means slog.Default().
	Logger *slog.Logger
}

type segKind int

// Segment kinds, ordered so that a higher kind is more specific.
const (
	segGreedy  segKind = iota + 1 // {name+}: one or more remaining segments
	segParam                      // {name}: exactly one segment
	segLiteral                    // text: exactly this segment
)

type segment struct {
	kind  segKind
	value string // literal text or parameter name
}

type route struct {
	Route
	key     string
	segs    []segment
	handler Handler
}

type server struct {
	routes   []*route
	fallback *route // the $default route, if any
	opts     ServerOptions
	log      *slog.Logger
}

// NewServer returns an http.Handler that serves routes in process the way an
// API Gateway HTTP API would: each request is matched to a route (literal
// segments beat {param} segments, which beat {greedy+} ones; a trailing
// slash is optional; ANY matches every method; a $default route takes what
// nothing else matches), turned into a payload 2.0 event, handed to
// handlers[route.FunctionID], and the handler's response is written back.
// A path no route matches gets 404 and a path matched only for other
// methods gets 405, both with a JSON error envelope and a Request-Id header.
// A handler that returns an error (or panics) gets 502, as from API Gateway.
// NewServer fails when a route has no handler, or on a malformed or
// duplicate route.
func NewServer(routes []Route, handlers map[string]Handler, opts ServerOptions) (http.Handler, error) {
	s := &server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.opts.AccountID == "" {
		s.opts.AccountID = DefaultAccountID
	}
	if s.opts.Region == "" {
		s.opts.Region = "us-east-1"
	}
	seen := map[string]string{}
	for _, r := range routes {
		h := handlers[r.FunctionID]
		if h == nil {
			return nil, fmt.Errorf("localstack: no handler for function %s (route %s)", r.FunctionID, r.Key())
		}
		c := &route{Route: r, key: r.Key(), handler: h}
		c.Method = strings.ToUpper(c.Method)
		if c.Method == "" {
			c.Method = "ANY"
		}
		norm := DefaultRoute
		if r.Path == DefaultRoute {
			if s.fallback != nil {
				return nil, fmt.Errorf("localstack: two $default routes (%s and %s)", s.fallback.FunctionID, r.FunctionID)
			}
			s.fallback = c
		} else {
			segs, err := parsePattern(r.Path)
			if err != nil {
				return nil, fmt.Errorf("localstack: route %s of %s: %w", r.Key(), r.FunctionID, err)
			}
			c.segs = segs
			s.routes = append(s.routes, c)
			norm = c.Method + " " + patternKey(segs)
		}
		if prev, ok := seen[norm]; ok {
			return nil, fmt.Errorf("localstack: route %s of %s duplicates a route of %s", r.Key(), r.FunctionID, prev)
		}
		seen[norm] = r.FunctionID
	}
	return s, nil
}

// parsePattern splits a route path such as /things/{id} into segments.
func parsePattern(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("path %q does not start with /", p)
	}
	var segs []segment
	parts := splitPath(p)
	for i, part := range parts {
		switch {
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "+}"):
			name := part[1 : len(part)-2]
			if name == "" || i != len(parts)-1 {
				return nil, fmt.Errorf("greedy segment %q must be named and last", part)
			}
			segs = append(segs, segment{segGreedy, name})
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name := part[1 : len(part)-1]
			if name == "" || strings.ContainsAny(name, "{}") {
				return nil, fmt.Errorf("bad path parameter %q", part)
			}
			segs = append(segs, segment{segParam, name})
		case part == "" || strings.ContainsAny(part, "{}"):
			return nil, fmt.Errorf("bad path segment %q", part)
		default:
			segs = append(segs, segment{segLiteral, part})
		}
	}
	return segs, nil
}

// patternKey is a path with parameter names erased, to find duplicates.
func patternKey(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch s.kind {
		case segLiteral:
			b.WriteString(s.value)
		case segParam:
			b.WriteString("{}")
		case segGreedy:
			b.WriteString("{+}")
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// splitPath splits /a/b/ into [a b]: the trailing slash is optional and /
// has no segments.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match matches request segments (still escaped) against r; it returns the
// path parameters (unescaped) and a specificity score.
func (r *route) match(parts []string) (map[string]string, []segKind, bool) {
	var params map[string]string
	score := make([]segKind, 0, len(r.segs))
	for i, s := range r.segs {
		if i >= len(parts) {
			return nil, nil, false
		}
		switch s.kind {
		case segLiteral:
			if unescape(parts[i]) != s.value {
				return nil, nil, false
			}
		case segParam:
			if parts[i] == "" {
				return nil, nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[s.value] = unescape(parts[i])
		case segGreedy:
			rest := parts[i:]
			if slices.Contains(rest, "") {
				return nil, nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[s.value] = unescape(strings.Join(rest, "/"))
			return params, append(score, s.kind), true
		}
		score = append(score, s.kind)
	}
	if len(parts) != len(r.segs) {
		return nil, nil, false
	}
	return params, score, true
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// moreSpecific reports whether score a beats score b: the first position
// where they differ decides; a longer path wins a tie.
func moreSpecific(a, b []segKind) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

// pick finds the route for method and path; it reports allowed methods
// when the path matched only routes of other methods.
func (s *server) pick(method string, parts []string) (*route, map[string]string, []string) {
	var (
		best       *route
		bestParams map[string]string
		bestScore  []segKind
		allowed    []string
	)
	for _, r := range s.routes {
		params, score, ok := r.match(parts)
		if !ok {
			continue
		}
		if r.Method != "ANY" && r.Method != method {
			allowed = append(allowed, r.Method)
			continue
		}
		if best != nil {
			c := moreSpecific(score, bestScore)
			// At equal paths, an exact method beats ANY.
			if c < 0 || (c == 0 && !(best.Method == "ANY" && r.Method != "ANY")) {
				continue
			}
		}
		best, bestParams, bestScore = r, params, score
	}
	if best == nil && s.fallback != nil {
		return s.fallback, nil, nil
	}
	slices.Sort(allowed)
	return best, bestParams, slices.Compact(allowed)
}

func (s *server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	reqID := uuid.NewString()
	w.Header().Set("Apigw-Requestid", reqID)

	rawPath := req.URL.EscapedPath()
	r, params, allowed := s.pick(req.Method, splitPath(rawPath))
	if r == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			s.envelope(w, reqID, http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s is not allowed on %s; allowed: %s.", req.Method, rawPath, strings.Join(allowed, ", ")))
		} else {
			s.envelope(w, reqID, http.StatusNotFound, "not_found", fmt.Sprintf("No route for %s %s.", req.Method, rawPath))
		}
		s.log.DebugContext(req.Context(), "localstack: no route", "method", req.Method, "path", rawPath, "request_id", reqID)
		return
	}

	body, err := io.ReadAll(io.LimitReader(req.Body, MaxRequestBodyBytes+1))
	if err != nil {
		s.apigwError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > MaxRequestBodyBytes {
		s.apigwError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}

	ev := s.event(req, r, params, reqID, rawPath, body, start)
	ctx := lambdacontext.NewContext(req.Context(), &lambdacontext.LambdaContext{
		AwsRequestID:       uuid.NewString(),
		InvokedFunctionArn: fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.opts.Region, s.opts.AccountID, r.FunctionID),
	})
	resp, err := s.invoke(ctx, r.handler, ev)
	if err == nil {
		err = writeResponse(w, resp)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "localstack: function failed", "function", r.FunctionID, "route", r.key,
			"request_id", reqID, "error", err)
		s.apigwError(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	s.log.DebugContext(ctx, "localstack: request", "function", r.FunctionID, "route", r.key,
		"request_id", reqID, "status", resp.StatusCode, "took", time.Since(start))
}

// invoke calls h, turning a panic into an error as the Lambda runtime would.
func (s *server) invoke(ctx context.Context, h Handler, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h(ctx, ev)
}

// event builds the payload 2.0 event API Gateway would send.
func (s *server) event(req *http.Request, r *route, params map[string]string, reqID, rawPath string, body []byte, now time.Time) events.APIGatewayV2HTTPRequest {
	sourceIP := req.RemoteAddr
	if host, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		sourceIP = host
	}
	headers := make(map[string]string, len(req.Header)+4)
	var cookies []string
	for name, values := range req.Header {
		lname := strings.ToLower(name)
		if lname == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lname] = strings.Join(values, ",")
	}
	headers["host"] = req.Host
	if len(req.TransferEncoding) > 0 {
		headers["transfer-encoding"] = strings.Join(req.TransferEncoding, ",")
	}
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	if _, ok := headers["x-forwarded-proto"]; !ok {
		headers["x-forwarded-proto"] = "http"
	}
	if _, ok := headers["x-forwarded-port"]; !ok {
		if addr, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if _, port, err := net.SplitHostPort(addr.String()); err == nil {
				headers["x-forwarded-port"] = port
			}
		}
	}

	var query map[string]string
	if req.URL.RawQuery != "" {
		values, _ := url.ParseQuery(req.URL.RawQuery) // keeps what parsed
		if len(values) > 0 {
			query = make(map[string]string, len(values))
			for k, vs := range values {
				query[k] = strings.Join(vs, ",")
			}
		}
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              r.key,
		RawPath:               rawPath,
		RawQueryString:        req.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     r.key,
			AccountID:    s.opts.AccountID,
			Stage:        "$default",
			RequestID:    reqID,
			APIID:        "local",
			DomainName:   req.Host,
			DomainPrefix: domainPrefix(req.Host),
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    req.Method,
				Path:      rawPath,
				Protocol:  req.Proto,
				SourceIP:  sourceIP,
				UserAgent: req.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if isTextual(req.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if net.ParseIP(host) != nil {
		return host
	}
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

// isTextual reports whether a body of this content type travels as text
// rather than base64 in the event.
func isTextual(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/graphql":
		return true
	}
	return false
}

// writeResponse writes a handler's response; an invalid one is an error.
func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return fmt.Errorf("invalid status code %d in the function's response", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return fmt.Errorf("response body is not valid base64: %w", err)
		}
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // API Gateway does not sniff; neither do we
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return nil
}

// envelope writes the service's JSON error envelope.
func (s *server) envelope(w http.ResponseWriter, reqID string, status int, code, desc string) {
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", reqID)
	securityHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// apigwError writes an error the way API Gateway itself words it.
func (s *server) apigwError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	h := w.Header()
	for k := range h {
		if k != "Apigw-Requestid" {
			delete(h, k)
		}
	}
	h.Set("Content-Type", "application/json")
	securityHeaders(h)
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSpace(b))
}

// securityHeaders are on every answer the server makes itself, as the
// service's own answers carry them (httpapi.Wrap). API Gateway's own answers
// in AWS carry neither: docs/SECURITY.md, "Response headers".
func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}
