// Package openapitest checks recorded HTTP exchanges (testenv.Exchanges)
// against the service's OpenAPI description (api/openapi.yaml): a route,
// status, header or body field the description does not declare is a
// problem, so the description cannot fall behind what the service does.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	openapi "github.com/example/accounts/api"
	"github.com/example/accounts/pkg/testenv"
)

// Load parses and validates the embedded description.
func Load(ctx context.Context) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.YAML)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml is not a valid OpenAPI description: %w", err)
	}
	return doc, nil
}

// JSON Lines bodies (POST /api/users/import) are described as text: each
// line is checked by the service, which answers per line.
func init() {
	text := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", text)
	openapi3filter.RegisterBodyDecoder("application/jsonl", text)
}

// transportHeaders are set below the service (net/http, API Gateway) and
// need no declaration.
var transportHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "Date": true, "Apigw-Requestid": true}

// Checker validates exchanges made against a server at a base URL.
type Checker struct {
	doc    *openapi3.T
	router routers.Router
	base   *url.URL
}

// NewChecker loads the description with base as its only server.
func NewChecker(ctx context.Context, base string) (*Checker, error) {
	doc, err := Load(ctx)
	if err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	// Requests are matched without their trailing slash (see check), so
	// the paths are too.
	for path, item := range doc.Paths.Map() {
		if trimmed := strings.TrimRight(path, "/"); trimmed != path && trimmed != "" {
			doc.Paths.Delete(path)
			doc.Paths.Set(trimmed, item)
		}
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	return &Checker{doc: doc, router: r, base: u}, nil
}

// Check returns one line per distinct problem, with how often it occurred
// and one request that showed it; none means every exchange is described.
func (c *Checker) Check(ctx context.Context, exchanges []testenv.Exchange) []string {
	type seen struct {
		n       int
		example string
	}
	problems := map[string]*seen{}
	for _, ex := range exchanges {
		for _, p := range c.check(ctx, ex) {
			if s := problems[p]; s != nil {
				s.n++
			} else {
				problems[p] = &seen{n: 1, example: ex.Method + " " + ex.URL.RequestURI()}
			}
		}
	}
	out := make([]string, 0, len(problems))
	for p, s := range problems {
		out = append(out, fmt.Sprintf("%s (%d times; e.g. %s)", p, s.n, s.example))
	}
	sort.Strings(out)
	return out
}

// check validates one exchange.
func (c *Checker) check(ctx context.Context, ex testenv.Exchange) []string {
	// A server sees only the path and query of a request.
	req, err := http.NewRequestWithContext(ctx, ex.Method, c.base.ResolveReference(ex.URL).String(), bytes.NewReader(ex.RequestBody))
	if err != nil {
		return []string{err.Error()}
	}
	req.Header = ex.RequestHeader.Clone()
	// Every route answers with or without a trailing slash; the description
	// names each once, without it.
	u := *req.URL
	if p := strings.TrimRight(u.Path, "/"); p != "" {
		u.Path, u.RawPath = p, ""
	}
	req.URL = &u
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if alt := c.asTemplated(ex.Method, u.Path); alt != "" {
			// API Gateway routes GET /api/users/confirm_email, which only
			// POST has as a literal path, to GET /api/users/{uuid}; OpenAPI
			// prefers the literal path whatever the method.
			v := u
			v.Path = alt
			req.URL = &v
			route, params, err = c.router.FindRoute(req)
		}
	}
	if err != nil {
		// The router's own answer for a path or method that has no route
		// is no route of the service's.
		if (ex.Status == http.StatusNotFound || ex.Status == http.StatusMethodNotAllowed) && routerAnswer(ex.ResponseBody) {
			return nil
		}
		return []string{fmt.Sprintf("%s %s answered %d but the description has no such operation (%v)", ex.Method, u.Path, ex.Status, err)}
	}
	name := fmt.Sprintf("%s %s %d", ex.Method, route.Path, ex.Status)
	var problems []string
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticate, MultiError: true},
	}
	// A request the service accepted must be one the description declares;
	// the ones it refused are often malformed on purpose.
	if ex.Status < 300 && !ex.Truncated {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			problems = append(problems, name+": request: "+oneLine(err))
		}
	}
	op := route.Operation
	resp := op.Responses.Status(ex.Status)
	if resp == nil || resp.Value == nil {
		return append(problems, name+": status not declared")
	}
	for h := range ex.ResponseHeader {
		if transportHeaders[h] || (ex.Status == http.StatusMethodNotAllowed && h == "Allow") {
			continue
		}
		if !declared(resp.Value.Headers, h) {
			problems = append(problems, fmt.Sprintf("%s: header %s not declared", name, h))
		}
	}
	in.Request.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.Status, Header: ex.ResponseHeader,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(ex.ResponseBody)
	if len(ex.ResponseBody) == 0 && len(resp.Value.Content) > 0 && ex.Method != http.MethodHead {
		problems = append(problems, name+": empty body where the description has one")
	} else if len(ex.ResponseBody) > 0 && len(resp.Value.Content) == 0 {
		problems = append(problems, name+": a body where the description has none")
	} else if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		problems = append(problems, name+": response: "+oneLine(err))
	}
	return problems
}

// asTemplated returns path with the segments that a templated path of the
// description has as parameters for method replaced by a value no literal
// path has, or "" when no such path matches.
func (c *Checker) asTemplated(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for p, item := range c.doc.Paths.Map() {
		if item.GetOperation(strings.ToUpper(method)) == nil {
			continue
		}
		pat := strings.Split(strings.Trim(p, "/"), "/")
		if len(pat) != len(segs) || !strings.Contains(p, "{") {
			continue
		}
		out := make([]string, len(segs))
		for i, ps := range pat {
			switch {
			case strings.HasPrefix(ps, "{"):
				out[i] = "~" + segs[i]
			case ps == segs[i]:
				out[i] = ps
			default:
				out = nil
			}
			if out == nil {
				break
			}
		}
		if out != nil {
			return "/" + strings.Join(out, "/")
		}
	}
	return ""
}

func declared(headers openapi3.Headers, name string) bool {
	for k := range headers {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// routerAnswer reports whether body is the local router's no-route envelope.
func routerAnswer(body []byte) bool {
	var e struct{ Error string }
	_ = json.Unmarshal(body, &e)
	return e.Error == "not_found" || e.Error == "method_not_allowed"
}

// authenticate accepts a request whose Authorization header has the
// scheme's form (the service itself decides whether it is valid).
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(h, " ")
	want := map[string]string{"Token": "token", "Bearer": "bearer", "Basic": "basic", "ApiKey": "api-key"}[in.SecuritySchemeName]
	if want == "" || !strings.EqualFold(scheme, want) {
		return in.NewError(fmt.Errorf("no %s credentials", in.SecuritySchemeName))
	}
	return nil
}

// oneLine keeps a validation error short: kin-openapi's messages run over
// many lines with the whole schema and value.
func oneLine(err error) string {
	var parts []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, x := range e {
				walk(x)
			}
		case *openapi3filter.RequestError:
			if e.Err != nil {
				if me, ok := e.Err.(openapi3.MultiError); ok {
					walk(me)
					return
				}
			}
			parts = append(parts, firstLine(e.Error()))
		case *openapi3filter.ResponseError:
			if me, ok := e.Err.(openapi3.MultiError); ok {
				walk(me)
				return
			}
			parts = append(parts, firstLine(e.Error()))
		case *openapi3.SchemaError:
			p := strings.Join(e.JSONPointer(), "/")
			parts = append(parts, fmt.Sprintf("/%s: %s", p, e.Reason))
		default:
			parts = append(parts, firstLine(err.Error()))
		}
	}
	walk(err)
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), "; ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// RouteKeys returns the description's operations as "METHOD /path".
func RouteKeys(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, strings.ToUpper(method)+" "+strings.TrimRight(path, "/"))
		}
	}
	sort.Strings(out)
	return out
}
