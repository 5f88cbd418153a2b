package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// MaxMultipartBytes bounds a multipart body: a file of at most MaxFileBytes
// and the form's fields.
const MaxMultipartBytes = MaxFileBytes + MaxBodyBytes

// MaxFileBytes bounds one uploaded file.
const MaxFileBytes = 2 << 20

// File is an uploaded file part.
type File struct {
	Field, Filename, ContentType string
	Data                         []byte
}

// DecodeInput reads a body into dst as DecodeJSON does, and also a form
// (application/x-www-form-urlencoded) or multipart/form-data body, whose
// fields map to dst's JSON names with the same strictness: unknown fields
// refused, types checked. Multipart file parts are accepted only under the
// names in files, and returned by name; a file anywhere else is refused.
func (r *Request) DecodeInput(dst any, ignore map[string]bool, files map[string]bool) (map[string]*File, error) {
	mt, params, perr := mime.ParseMediaType(r.Header("content-type"))
	switch {
	case perr == nil && mt == "application/x-www-form-urlencoded":
		body, err := r.Body()
		if err != nil {
			return nil, err
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, BadRequest("The body is not a valid form.")
		}
		return nil, decodeFields(vals, dst, ignore)
	case perr == nil && mt == "multipart/form-data":
		body, err := r.bodyUpTo(MaxMultipartBytes)
		if err != nil {
			return nil, err
		}
		return decodeMultipart(body, params["boundary"], dst, ignore, files)
	}
	return nil, r.DecodeJSON(dst, ignore)
}

// BodyUpTo is Body with its own bound, for the routes that take more than
// MaxBodyBytes (an import).
func (r *Request) BodyUpTo(max int) ([]byte, error) { return r.bodyUpTo(max) }

// bodyUpTo is Body with its own bound.
func (r *Request) bodyUpTo(max int) ([]byte, error) {
	b := []byte(r.Event.Body)
	if r.Event.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(b)) > max+3 {
			return nil, TooLarge(max)
		}
		d, err := base64.StdEncoding.DecodeString(r.Event.Body)
		if err != nil {
			return nil, BadRequest("The body is not valid base64.")
		}
		b = d
	}
	if len(b) > max {
		return nil, TooLarge(max)
	}
	return b, nil
}

func decodeMultipart(body []byte, boundary string, dst any, ignore map[string]bool, files map[string]bool) (map[string]*File, error) {
	if boundary == "" {
		return nil, BadRequest("The multipart body has no boundary.")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	vals := url.Values{}
	got := map[string]*File{}
	fieldBytes := 0
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, BadRequest("The body is not valid multipart/form-data.")
		}
		name := p.FormName()
		if name == "" {
			return nil, BadRequest("Every part of the body needs a form field name.")
		}
		if p.FileName() != "" {
			if !files[name] {
				return nil, Invalid(map[string][]string{name: {"A file is not accepted here."}})
			}
			if got[name] != nil {
				return nil, Invalid(map[string][]string{name: {"Send one file."}})
			}
			data, err := io.ReadAll(io.LimitReader(p, MaxFileBytes+1))
			if err != nil {
				return nil, BadRequest("The body is not valid multipart/form-data.")
			}
			if len(data) > MaxFileBytes {
				return nil, &Error{Status: 413, Code: "payload_too_large", Message: "Ensure the file is at most 2 MiB.", Fields: map[string][]string{name: {"Ensure the file is at most 2 MiB."}}}
			}
			got[name] = &File{Field: name, Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data}
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, MaxBodyBytes+1))
		if err != nil {
			return nil, BadRequest("The body is not valid multipart/form-data.")
		}
		if fieldBytes += len(v); fieldBytes > MaxBodyBytes {
			return nil, TooLarge(MaxBodyBytes)
		}
		vals.Add(name, string(v))
	}
	if err := decodeFields(vals, dst, ignore); err != nil {
		return nil, err
	}
	return got, nil
}

// decodeFields turns form values into the JSON object dst's fields read,
// each as its Go type says (a string, a boolean, a number, a list of
// repeated values, or JSON text for a raw JSON field), then decodes it as
// JSON is: one mechanism, one strictness.
func decodeFields(vals url.Values, dst any, ignore map[string]bool) error {
	kinds := fieldTypes(reflect.TypeOf(dst))
	obj := map[string]json.RawMessage{}
	bad := map[string][]string{}
	for name, vs := range vals {
		t, ok := kinds[name]
		if !ok {
			obj[name] = json.RawMessage(`null`) // unknown or ignored: DecodeObject says which
			continue
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		last := vs[len(vs)-1]
		// Python clients write None as "None" (str(None)).
		isNull := strings.TrimSpace(last) == "" || last == "None" || last == "null"
		var raw any
		switch {
		case t == reflect.TypeOf(json.RawMessage{}):
			s := strings.TrimSpace(last)
			if isNull {
				obj[name] = json.RawMessage(`null`)
			} else if json.Valid([]byte(s)) {
				obj[name] = json.RawMessage(s)
			} else {
				bad[name] = append(bad[name], "Expected JSON.")
			}
			continue
		case t.Kind() == reflect.Slice:
			var items []string
			for _, v := range vs {
				if v != "" {
					items = append(items, v)
				}
			}
			if items == nil {
				items = []string{}
			}
			raw = items
		case t.Kind() == reflect.Bool:
			switch strings.ToLower(strings.TrimSpace(last)) {
			case "true", "1", "on", "yes":
				raw = true
			case "false", "0", "off", "no", "":
				raw = false
			default:
				bad[name] = append(bad[name], "Expected a boolean.")
				continue
			}
		case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
			if isNull {
				obj[name] = json.RawMessage(`null`)
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(last), 10, 64)
			if err != nil {
				bad[name] = append(bad[name], "Expected a number.")
				continue
			}
			raw = n
		default:
			raw = last
		}
		b, _ := json.Marshal(raw)
		obj[name] = b
	}
	if len(bad) > 0 {
		return Invalid(bad)
	}
	body, _ := json.Marshal(obj)
	return DecodeObject(body, dst, ignore)
}

// fieldTypes maps a struct's JSON names to their Go types.
func fieldTypes(t reflect.Type) map[string]reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]reflect.Type{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			for k, v := range fieldTypes(f.Type) {
				out[k] = v
			}
			continue
		}
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		out[name] = f.Type
	}
	return out
}
