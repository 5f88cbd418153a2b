package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// MaxBodyBytes bounds every request body; larger ones get 413 before parsing.
const MaxBodyBytes = 64 << 10

// Request is the part of an HTTP API v2 event a handler reads.
type Request struct {
	Event     events.APIGatewayV2HTTPRequest
	RequestID string
	query     url.Values
}

func newRequest(ev events.APIGatewayV2HTTPRequest, id string) *Request {
	q, err := url.ParseQuery(ev.RawQueryString)
	if err != nil || (len(q) == 0 && len(ev.QueryStringParameters) > 0) {
		q = url.Values{}
		for k, v := range ev.QueryStringParameters {
			q[k] = strings.Split(v, ",")
		}
	}
	return &Request{Event: ev, RequestID: id, query: q}
}

// Method is the HTTP method.
func (r *Request) Method() string { return r.Event.RequestContext.HTTP.Method }

// Header returns a request header; HTTP API lower-cases header names.
func (r *Request) Header(name string) string {
	name = strings.ToLower(name)
	for k, v := range r.Event.Headers {
		if strings.ToLower(k) == name {
			return v
		}
	}
	return ""
}

// SourceIP is the client address API Gateway saw.
func (r *Request) SourceIP() string { return r.Event.RequestContext.HTTP.SourceIP }

// PathParam returns a path parameter such as {uuid}.
func (r *Request) PathParam(name string) string { return r.Event.PathParameters[name] }

// Query returns the query string, with repeated keys kept.
func (r *Request) Query() url.Values { return r.query }

// Path is the raw path.
func (r *Request) Path() string { return r.Event.RawPath }

// Body returns the decoded body bytes, refusing oversized bodies.
func (r *Request) Body() ([]byte, error) {
	b := []byte(r.Event.Body)
	if r.Event.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(b)) > MaxBodyBytes+3 {
			return nil, TooLarge(MaxBodyBytes)
		}
		d, err := base64.StdEncoding.DecodeString(r.Event.Body)
		if err != nil {
			return nil, BadRequest("The body is not valid base64.")
		}
		b = d
	}
	if len(b) > MaxBodyBytes {
		return nil, TooLarge(MaxBodyBytes)
	}
	return b, nil
}

// DecodeJSON reads a JSON object body into dst, a pointer to a struct.
// Fields dst does not declare are refused with 400 naming them, except those
// in ignore (read-only fields a client may send back after a GET). An empty
// body decodes as {}.
func (r *Request) DecodeJSON(dst any, ignore map[string]bool) error {
	body, err := r.Body()
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	// A body must say it is JSON; checked before parsing.
	mt, _, perr := mime.ParseMediaType(r.Header("content-type"))
	if perr != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return UnsupportedMediaType()
	}
	return DecodeObject(body, dst, ignore)
}

// DecodeObject is DecodeJSON's parsing step, apart for fuzzing and reuse.
func DecodeObject(body []byte, dst any, ignore map[string]bool) error {
	// JSON is UTF-8 (RFC 8259): Go's decoder would turn invalid bytes in a
	// string into U+FFFD, but keeps them verbatim in a json.RawMessage
	// (custom_data), which is then stored and echoed as it came.
	if !utf8.Valid(body) {
		return BadRequest("The body must be UTF-8 text.")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return jsonError(body, err)
	}
	if raw == nil {
		return BadRequest("The body must be a JSON object.")
	}
	known := jsonFields(reflect.TypeOf(dst))
	var unknown []string
	for k := range raw {
		if known[k] {
			continue
		}
		if ignore[k] {
			delete(raw, k)
			continue
		}
		unknown = append(unknown, k)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		fields := map[string][]string{}
		for _, k := range unknown {
			fields[k] = []string{"Unknown field."}
		}
		e := Invalid(fields)
		e.Message = "Unknown field(s): " + strings.Join(unknown, ", ") + "."
		return e
	}
	for k, v := range raw {
		one := map[string]json.RawMessage{k: v}
		b, _ := json.Marshal(one)
		if err := json.Unmarshal(b, dst); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return Invalid(map[string][]string{k: {"Expected " + describeKind(te.Type) + "."}})
			}
			return Invalid(map[string][]string{k: {"Invalid value."}})
		}
	}
	return nil
}

func describeKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return "another type"
}

func jsonError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(body, se.Offset)
		return BadRequest(fmt.Sprintf("The body is not valid JSON: %s at line %d, column %d.", se.Error(), line, col))
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return BadRequest("The body must be a JSON object.")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected end") {
		return BadRequest("The body is not valid JSON: it ends too early.")
	}
	return BadRequest("The body is not valid JSON.")
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off-1 && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// jsonFields lists the JSON names of a struct's fields, including embedded ones.
func jsonFields(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			for k := range jsonFields(f.Type) {
				out[k] = true
			}
			continue
		}
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = true
	}
	return out
}
