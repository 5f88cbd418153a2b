package pages

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	texttemplate "text/template"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/style.css
var styleSheet string

// templates holds one template set per page: the layout, the shared
// fields and the page's own content.
var templates = func() map[string]*template.Template {
	base := template.Must(template.ParseFS(templateFiles, "templates/layout.html"))
	out := map[string]*template.Template{}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, n))
	}
	return out
}()

var styleTemplate = texttemplate.Must(texttemplate.New("style.css").Parse(styleSheet))

// view is what a page's template reads.
type view struct {
	Lang    string
	Brand   config.Branding
	Support string // the support address, if any
	Page    string // the template
	Title   string // a message key
	Notice  string // a message key: what just succeeded
	Alert   string // a translated sentence: what went wrong
	Detail  string // a message key: what to do about it
	Fields  map[string][]string
	Form    map[string]string
	User    *users.User
	Info    users.CodeInfo
	Code    string
	// LoggedIn is whether the request carried a live session.
	LoggedIn bool
	status   int
	err      error
	csrf     func(form string) string
}

// OwnSession is whether the request carries the session of the account a
// code is for (then a confirmation needs no password).
func (v *view) OwnSession() bool { return v.User != nil && v.User.UUID == v.Info.User }

// T translates a message key.
func (v *view) T(key string) string { return translate(v.Lang, key) }

// CSRF is the token of one of the page's forms.
func (v *view) CSRF(form string) string { return v.csrf(form) }

// Languages are the choices of the language selector.
func (v *view) Languages() []string { return users.Languages }

// problem is one entry of the error summary: the message and the id of
// the field it is about, so the summary can link to it.
type problem struct{ ID, Message string }

// FieldErrors lists every field problem, for the summary above a form.
func (v *view) FieldErrors() []problem {
	var out []problem
	seen := map[string]bool{}
	add := func(f string) {
		for _, m := range v.Fields[f] {
			out = append(out, problem{ID: "f-" + f, Message: m})
		}
		seen[f] = true
	}
	for _, f := range fieldOrder {
		add(f)
	}
	var rest []string
	for f := range v.Fields {
		if !seen[f] {
			rest = append(rest, f)
		}
	}
	sort.Strings(rest)
	for _, f := range rest {
		add(f)
	}
	return out
}

// fieldOrder is the order of fields in the error summary.
var fieldOrder = []string{"login", "email", "username", "password", "current_password", "new_password", "new_password2",
	"first_name", "last_name", "job_title", "organization", "phone_number", "preferred_language", "code", "confirm"}

// input is one labelled form field.
type input struct {
	ID, Name, Type, Label, Auto, Value, Hint string
	Errors                                   []string
	Required                                 bool
	Optional                                 string
}

// Describedby lists the ids of the field's hint and errors.
func (i input) Describedby() string {
	var ids []string
	if i.Hint != "" {
		ids = append(ids, i.ID+"-hint")
	}
	if len(i.Errors) > 0 {
		ids = append(ids, i.ID+"-error")
	}
	return strings.Join(ids, " ")
}

// Input describes a field: name as posted, the label's message key, the
// input type and autocomplete token, then flags: "required", "optional",
// "rules" (the password rules as its hint).
func (v *view) Input(name, label, typ, auto string, flags ...string) input {
	in := input{ID: "f-" + name, Name: name, Type: typ, Label: v.T(label), Auto: auto, Errors: v.Fields[name]}
	if typ != "password" {
		in.Value = v.Form[name]
	}
	for _, f := range flags {
		switch f {
		case "required":
			in.Required = true
		case "optional":
			in.Optional = v.T("optional")
		case "rules":
			in.Hint = v.T("rules")
		}
	}
	return in
}

// securityHeaders go on every page.
func securityHeaders(b config.Branding) map[string]string {
	img := "'self'"
	if o := b.LogoOrigin(); o != "" {
		img += " " + o
	}
	return map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src " + img + "; style-src 'self'; script-src 'none'; " +
			"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"Referrer-Policy":            "no-referrer",
		"X-Content-Type-Options":     "nosniff",
		"X-Frame-Options":            "DENY",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Permissions-Policy":         "camera=(), microphone=(), geolocation=()",
	}
}

// render answers with the page v.Page; every page shows or takes a code, a
// password or a session's data, so none may be stored by a cache.
func (p *Pages) render(v *view) *httpapi.Response {
	t, ok := templates[v.Page]
	if !ok {
		return p.plain(http.StatusInternalServerError, "no page "+v.Page)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		p.Log.Error("page not rendered", "page", v.Page, "cause", err.Error())
		return p.plain(http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
	}
	status := v.status
	if status == 0 {
		status = http.StatusOK
	}
	r := &httpapi.Response{Status: status, Raw: b.String(), Headers: securityHeaders(v.Brand), Err: v.err}
	r.Headers["Content-Type"] = "text/html; charset=utf-8"
	r.Headers["Cache-Control"] = "no-store"
	return r
}

// plain is a last-resort text answer.
func (p *Pages) plain(status int, msg string) *httpapi.Response {
	r := &httpapi.Response{Status: status, Raw: msg + "\n", Headers: securityHeaders(p.brand())}
	r.Headers["Content-Type"] = "text/plain; charset=utf-8"
	r.Headers["Cache-Control"] = "no-store"
	return r
}

// style serves the stylesheet, with the accent colour filled in.
func (p *Pages) style() *httpapi.Response {
	var b bytes.Buffer
	if err := styleTemplate.Execute(&b, p.brand()); err != nil {
		return p.plain(http.StatusInternalServerError, "stylesheet")
	}
	r := &httpapi.Response{Status: http.StatusOK, Raw: b.String(), Headers: securityHeaders(p.brand())}
	r.Headers["Content-Type"] = "text/css; charset=utf-8"
	r.Headers["Cache-Control"] = "public, max-age=3600"
	return r
}

// redirect answers 303 See Other to a page; to is relative to /account/.
func redirect(to string) *httpapi.Response {
	return &httpapi.Response{Status: http.StatusSeeOther, Headers: map[string]string{
		"Location": to, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
	}}
}

// retryText is the sentence of a 429.
func retryText(lang string, e *httpapi.Error) string {
	if e.RetryAfter <= 0 {
		return ""
	}
	return fmt.Sprintf(translate(lang, "retry_in"), strconv.Itoa(e.RetryAfter))
}
