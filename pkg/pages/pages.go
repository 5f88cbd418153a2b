// Package pages owns the pages people use from a browser under /account/:
// sign-up, activation, login, password reset, email confirmation and their
// own account. They are server-rendered (html/template, no script), call
// the same users.Service methods as the API (so rate limits, lockout and
// logs are the same), and every mailed link lands on one of them.
package pages

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// Pages serves the pages.
type Pages struct {
	Users *users.Service
	Log   *slog.Logger
}

// New builds the pages on the service.
func New(svc *users.Service, log *slog.Logger) *Pages { return &Pages{Users: svc, Log: log} }

// Handlers maps the pages' function in template.yaml to its handler.
func (p *Pages) Handlers() map[string]httpapi.LambdaHandler {
	return map[string]httpapi.LambdaHandler{"PagesFunction": p.Handler()}
}

// Handler serves GET and POST /account/{page}.
func (p *Pages) Handler() httpapi.LambdaHandler {
	return httpapi.Wrap("Pages", p.Log, p.serve)
}

// page is one page's GET or POST.
type page func(ctx context.Context, rq *request, v *view) (*httpapi.Response, error)

// routes are the pages by method and name (the path below /account/). A
// GET never changes anything: a mailed link only shows the form whose POST
// does what the mail says.
func (p *Pages) routes() map[string]page {
	return map[string]page{
		"GET login":          p.loginForm,
		"POST login":         p.login,
		"GET signup":         p.signupForm,
		"POST signup":        p.signup,
		"GET activate":       p.activateForm,
		"POST activate":      p.activate,
		"GET resend":         p.simpleForm("resend", "title.resend"),
		"POST resend":        p.resend,
		"GET forgot":         p.simpleForm("forgot", "title.forgot"),
		"POST forgot":        p.forgot,
		"GET reset":          p.resetForm,
		"POST reset":         p.reset,
		"GET confirm-email":  p.confirmForm,
		"POST confirm-email": p.confirm,
		"GET me":             p.me,
		"POST profile":       p.profile,
		"POST password":      p.password,
		"POST email":         p.email,
		"POST cancel-email":  p.cancelEmail,
		"GET delete":         p.deleteForm,
		"POST delete":        p.delete,
		"POST logout":        p.logout,
	}
}

// formNames are the CSRF form names of the POST pages that need no session.
var publicForms = map[string]bool{"login": true, "signup": true, "activate": true, "resend": true,
	"forgot": true, "reset": true, "confirm-email": true}

func (p *Pages) brand() config.Branding {
	if p.Users == nil {
		return config.Branding{ProductName: config.DefaultProductName, AccentColor: config.DefaultAccentColor}
	}
	return p.Users.Config().Branding
}

// prefix is the absolute path of the pages, for redirects: below the
// service's public URL, which comes from configuration only.
func (p *Pages) prefix(ctx context.Context) string {
	if u, err := url.Parse(p.Users.PublicURL(ctx)); err == nil {
		return strings.TrimRight(u.Path, "/") + "/account/"
	}
	return "/account/"
}

func (p *Pages) serve(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
	name := strings.Trim(strings.TrimPrefix(r.Path(), "/account"), "/")
	if name == "style.css" && r.Method() == http.MethodGet {
		return p.style(), nil
	}
	rq := p.newRequest(ctx, r)
	v := &view{Brand: p.brand(), Support: p.Users.Config().SupportEmail, Page: name,
		Form: map[string]string{}, Fields: map[string][]string{}}
	v.Lang = negotiate("", r.Header("accept-language"))
	if rq.principal != nil {
		v.User, v.LoggedIn = rq.principal.User, true
		v.Lang = negotiate(rq.principal.User.PreferredLanguage, r.Header("accept-language"))
	}
	csrf, err := p.csrf(ctx, rq)
	if err != nil {
		return p.answer(rq, p.failure(v, err)), nil
	}
	v.csrf = csrf
	if name == "" && r.Method() == http.MethodGet {
		return p.answer(rq, redirect(p.prefix(ctx)+"me")), nil
	}
	h, ok := p.routes()[r.Method()+" "+name]
	if !ok {
		v.Page, v.Title, v.status = "message", "title.notfound", http.StatusNotFound
		v.Detail = "notfound.body"
		return p.answer(rq, p.render(v)), nil
	}
	if r.Method() == http.MethodPost {
		form, err := p.readForm(rq)
		if err != nil {
			return p.answer(rq, p.failure(v, err)), nil
		}
		if !publicForms[name] && rq.principal == nil {
			return p.answer(rq, redirect(p.prefix(ctx)+"login?m=login_first")), nil
		}
		ok, err := p.checkForm(ctx, rq, name, form.Get("csrf"))
		if err != nil {
			return p.answer(rq, p.failure(v, err)), nil
		}
		if !ok {
			v.Page, v.Title, v.Detail, v.status = "message", "title.csrf", "csrf.body", http.StatusForbidden
			v.err = httpapi.Forbidden("The form's token is missing or wrong.")
			return p.answer(rq, p.render(v)), nil
		}
		for k := range form {
			v.Form[k] = strings.TrimSpace(form.Get(k))
		}
		rq.form = form
	} else {
		v.Notice = notice(r.Query().Get("m"))
		// A redirect from a code's page keeps the account's language.
		if l, ok := users.Language(r.Query().Get("lang")); ok && rq.principal == nil {
			v.Lang = l
		}
	}
	resp, err := h(ctx, rq, v)
	if err != nil {
		return p.answer(rq, p.failure(v, err)), nil
	}
	return p.answer(rq, resp), nil
}

// readForm parses a posted urlencoded form.
func (p *Pages) readForm(rq *request) (url.Values, error) {
	b, err := rq.Body()
	if err != nil {
		return nil, err
	}
	if ct := rq.Header("content-type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, httpapi.BadRequest("The form could not be read.")
	}
	f, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, httpapi.BadRequest("The form could not be read.")
	}
	return f, nil
}

// notices are the flash messages a redirect may name (?m=); nothing else
// from the URL is shown.
var notices = map[string]bool{"signed_up": true, "activated": true, "sent": true, "resent": true,
	"password_reset": true, "email_changed": true, "logged_out": true, "deleted": true, "saved": true,
	"password_saved": true, "email_requested": true, "email_cancelled": true, "login_first": true}

func notice(m string) string {
	if notices[m] {
		return "m." + m
	}
	return ""
}

// failure shows err on v's page: field problems beside their fields, any
// other 4xx as the page's alert, anything else as the error page.
func (p *Pages) failure(v *view, err error) *httpapi.Response {
	e, ok := httpapi.AsError(err)
	if !ok {
		e = httpapi.Internal(err)
	}
	v.err, v.status = e, e.Status
	if e.Status >= 500 || v.csrf == nil || templates[v.Page] == nil {
		v.Page, v.Title, v.Detail, v.Notice = "message", "title.error", "error.body", ""
		v.Alert = translate(v.Lang, e.Message)
		return p.render(v)
	}
	if len(e.Fields) > 0 {
		for f, msgs := range e.Fields {
			for _, m := range msgs {
				v.Fields[f] = append(v.Fields[f], translate(v.Lang, m))
			}
		}
	} else {
		v.Alert = strings.TrimSpace(translate(v.Lang, e.Message) + " " + retryText(v.Lang, e))
	}
	return p.render(v)
}

// isCodeError tells a code that cannot be used from other refusals.
func isCodeError(err error) bool {
	e, ok := httpapi.AsError(err)
	return ok && (e.Message == "This code is invalid, already used or expired." || len(e.Fields["code"]) > 0)
}

// badCode shows that a mailed link cannot be used, and what to do.
func (p *Pages) badCode(v *view, detail string, err error) *httpapi.Response {
	v.Alert, v.Detail, v.Code, v.status = v.T("code.bad"), detail, "", http.StatusBadRequest
	v.err = err
	return p.render(v)
}

// requireSession sends a visitor without a session to the login page.
func (p *Pages) requireSession(ctx context.Context, rq *request) *httpapi.Response {
	if rq.principal == nil {
		return redirect(p.prefix(ctx) + "login?m=login_first")
	}
	return nil
}
