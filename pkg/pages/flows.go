package pages

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// required adds "This field is required." to each empty field of v's form.
func required(v *view, fields ...string) bool {
	ok := true
	for _, f := range fields {
		if v.Form[f] == "" {
			v.Fields[f] = append(v.Fields[f], v.T("This field is required."))
			ok = false
		}
	}
	if !ok {
		v.status = http.StatusBadRequest
	}
	return ok
}

func (p *Pages) show(v *view, pageName, title string) *httpapi.Response {
	v.Page, v.Title = pageName, title
	return p.render(v)
}

// --- log in, sign up, resend, forgot -------------------------------------

func (p *Pages) loginForm(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	if rq.principal != nil {
		return redirect(p.prefix(ctx) + "me"), nil
	}
	return p.show(v, "login", "title.login"), nil
}

func (p *Pages) login(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "login", "title.login"
	if !required(v, "login") || rq.form.Get("password") == "" {
		if rq.form.Get("password") == "" {
			v.Fields["password"] = append(v.Fields["password"], v.T("This field is required."))
		}
		v.status = http.StatusBadRequest
		return p.render(v), nil
	}
	res, err := p.Users.Login(ctx, v.Form["login"], rq.form.Get("password"), rq.SourceIP())
	if err != nil {
		return p.failure(v, err), nil
	}
	httpapi.SetUser(ctx, res.User.UUID)
	p.startSession(rq, res.Token, res.Expires)
	return redirect(p.prefix(ctx) + "me"), nil
}

func (p *Pages) signupForm(_ context.Context, _ *request, v *view) (*httpapi.Response, error) {
	return p.show(v, "signup", "title.signup"), nil
}

func (p *Pages) signup(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "signup", "title.signup"
	email, pw := v.Form["email"], rq.form.Get("password")
	first, last, lang := v.Form["first_name"], v.Form["last_name"], v.Lang
	in := users.ProfileInput{Email: &email, Password: &pw, FirstName: &first, LastName: &last, PreferredLanguage: &lang}
	u, err := p.Users.Register(ctx, in, rq.SourceIP())
	if err != nil {
		return p.failure(v, err), nil
	}
	httpapi.SetUser(ctx, u.UUID)
	return redirect(p.prefix(ctx) + "login?m=signed_up" + "&lang=" + v.Lang), nil
}

// simpleForm is the GET of a one-field form.
func (p *Pages) simpleForm(pageName, title string) page {
	return func(_ context.Context, _ *request, v *view) (*httpapi.Response, error) {
		return p.show(v, pageName, title), nil
	}
}

func (p *Pages) resend(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "resend", "title.resend"
	if err := p.Users.ResendActivation(ctx, v.Form["email"], rq.SourceIP()); err != nil {
		return p.failure(v, err), nil
	}
	return redirect(p.prefix(ctx) + "resend?m=resent"), nil
}

func (p *Pages) forgot(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "forgot", "title.forgot"
	if err := p.Users.PasswordReset(ctx, v.Form["email"], rq.SourceIP()); err != nil {
		return p.failure(v, err), nil
	}
	return redirect(p.prefix(ctx) + "forgot?m=sent"), nil
}

// --- the pages of mailed links --------------------------------------------

// describe fills v from a mailed code without consuming it; the page then
// speaks the language of the code's account.
func (p *Pages) describe(ctx context.Context, rq *request, v *view, code, purpose string) error {
	info, err := p.Users.DescribeCode(ctx, code, purpose)
	if err != nil {
		return err
	}
	v.Info, v.Code = info, code
	if rq.principal == nil {
		v.Lang = negotiate(info.Language, rq.Header("accept-language"))
	}
	return nil
}

func (p *Pages) activateForm(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "activate", "title.activate"
	if err := p.describe(ctx, rq, v, rq.Query().Get("code"), users.PurposeActivation); err != nil {
		return p.badCode(v, "code.bad_activate", err), nil
	}
	return p.render(v), nil
}

func (p *Pages) activate(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "activate", "title.activate"
	code := v.Form["code"]
	if err := p.describe(ctx, rq, v, code, users.PurposeActivation); err != nil {
		return p.badCode(v, "code.bad_activate", err), nil
	}
	if rq.form.Get("password") == "" {
		v.Fields["password"] = []string{v.T("This field is required.")}
		v.status = http.StatusBadRequest
		return p.render(v), nil
	}
	u, err := p.Users.Activate(ctx, code, rq.form.Get("password"))
	if err != nil {
		if isCodeError(err) {
			return p.badCode(v, "code.bad_activate", err), nil
		}
		if e, ok := httpapi.AsError(err); ok && len(e.Fields) == 0 && e.Status < 500 && e.Status != http.StatusTooManyRequests {
			// A wrong password: beside its field; the code stays usable.
			v.Fields["password"] = []string{translate(v.Lang, e.Message)}
			v.status, v.err = e.Status, e
			return p.render(v), nil
		}
		return p.failure(v, err), nil
	}
	httpapi.SetUser(ctx, u.UUID)
	return redirect(p.prefix(ctx) + "login?m=activated" + "&lang=" + v.Lang), nil
}

func (p *Pages) resetForm(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "reset", "title.reset"
	if err := p.describe(ctx, rq, v, rq.Query().Get("code"), users.PurposeReset); err != nil {
		return p.badCode(v, "code.bad_reset", err), nil
	}
	if !v.Info.HasPassword {
		v.Title = "title.set"
	}
	return p.render(v), nil
}

func (p *Pages) reset(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "reset", "title.reset"
	code := v.Form["code"]
	if err := p.describe(ctx, rq, v, code, users.PurposeReset); err != nil {
		return p.badCode(v, "code.bad_reset", err), nil
	}
	if !v.Info.HasPassword {
		v.Title = "title.set"
	}
	if !p.passwordsAgree(rq, v) {
		return p.render(v), nil
	}
	if err := p.Users.PasswordResetConfirm(ctx, code, rq.form.Get("new_password")); err != nil {
		if isCodeError(err) {
			return p.badCode(v, "code.bad_reset", err), nil
		}
		return p.failure(v, err), nil
	}
	// The reset ended the account's token; this browser starts afresh too,
	// whoever was logged in, so the login that follows is the reset's.
	p.endSession(rq)
	return redirect(p.prefix(ctx) + "login?m=password_reset" + "&lang=" + v.Lang), nil
}

// passwordsAgree checks that a new password was typed twice the same.
func (p *Pages) passwordsAgree(rq *request, v *view) bool {
	a, b := rq.form.Get("new_password"), rq.form.Get("new_password2")
	switch {
	case a == "":
		v.Fields["new_password"] = []string{v.T("This field is required.")}
	case a != b:
		v.Fields["new_password2"] = []string{v.T("pw.mismatch")}
	default:
		return true
	}
	v.status = http.StatusBadRequest
	return false
}

func (p *Pages) confirmForm(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "confirm-email", "title.confirm"
	if err := p.describe(ctx, rq, v, rq.Query().Get("code"), users.PurposeEmailChange); err != nil {
		return p.badCode(v, "code.bad_confirm", err), nil
	}
	return p.render(v), nil
}

func (p *Pages) confirm(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "confirm-email", "title.confirm"
	code := v.Form["code"]
	if err := p.describe(ctx, rq, v, code, users.PurposeEmailChange); err != nil {
		return p.badCode(v, "code.bad_confirm", err), nil
	}
	// The account's own session is proof enough; without it, the code
	// (the new mailbox) is not: the account's password must come too.
	var u *users.User
	var err error
	if rq.principal != nil && rq.principal.User.UUID == v.Info.User {
		u, err = p.Users.ConfirmEmail(ctx, rq.principal.User, code)
	} else {
		u, err = p.Users.ConfirmEmailCode(ctx, code, rq.form.Get("password"))
	}
	if err != nil {
		if isCodeError(err) {
			return p.badCode(v, "code.bad_confirm", err), nil
		}
		return p.failure(v, err), nil
	}
	httpapi.SetUser(ctx, u.UUID)
	if rq.principal != nil && rq.principal.User.UUID == u.UUID {
		// The change moved the credential epoch on: the token ended.
		p.endSession(rq)
	}
	return redirect(p.prefix(ctx) + "login?m=email_changed" + "&lang=" + v.Lang), nil
}

// --- my account ------------------------------------------------------------

// profileFields are the common fields the account page edits.
var profileFields = []string{"first_name", "last_name", "job_title", "organization", "phone_number"}

func fillProfile(v *view, u *users.User) {
	for f, val := range map[string]string{"first_name": u.FirstName, "last_name": u.LastName, "job_title": u.JobTitle,
		"organization": u.Organization, "phone_number": u.PhoneNumber} {
		v.Form[f] = val
	}
	lang, _ := users.Language(u.PreferredLanguage)
	v.Form["preferred_language"] = lang
	v.Form["version"] = strconv.FormatInt(u.Version, 10)
}

func (p *Pages) me(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	if r := p.requireSession(ctx, rq); r != nil {
		return r, nil
	}
	httpapi.SetUser(ctx, rq.principal.User.UUID)
	fillProfile(v, rq.principal.User)
	return p.show(v, "me", "title.me"), nil
}

// account re-shows the account page after a failed change, keeping what was
// typed into the form that failed.
func (p *Pages) account(v *view, u *users.User, keep ...string) {
	typed := map[string]string{}
	for _, k := range keep {
		typed[k] = v.Form[k]
	}
	fillProfile(v, u)
	for k, val := range typed {
		v.Form[k] = val
	}
	v.Page, v.Title = "me", "title.me"
}

func (p *Pages) profile(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	u := rq.principal.User
	in := users.ProfileInput{}
	vals := map[string]*string{}
	for _, f := range profileFields {
		val := v.Form[f]
		vals[f] = &val
	}
	in.FirstName, in.LastName, in.JobTitle = vals["first_name"], vals["last_name"], vals["job_title"]
	in.Organization, in.PhoneNumber = vals["organization"], vals["phone_number"]
	lang := v.Form["preferred_language"]
	if !slices.Contains(users.Languages, lang) {
		p.account(v, u, profileFields...)
		v.Fields["preferred_language"] = []string{v.T("This field is required.")}
		v.status = http.StatusBadRequest
		return p.render(v), nil
	}
	in.PreferredLanguage = &lang
	nu, err := p.Users.Update(ctx, u, u, in, false, `"`+v.Form["version"]+`"`)
	if err != nil {
		if e, ok := httpapi.AsError(err); ok && e.Status == http.StatusPreconditionFailed {
			p.account(v, u)
			v.Alert, v.status, v.err = v.T("stale"), e.Status, e
			return p.render(v), nil
		}
		p.account(v, u, append(profileFields, "preferred_language")...)
		return p.failure(v, err), nil
	}
	httpapi.SetUser(ctx, nu.UUID)
	return redirect(p.prefix(ctx) + "me?m=saved"), nil
}

func (p *Pages) password(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	u := rq.principal.User
	p.account(v, u)
	if !p.passwordsAgree(rq, v) {
		return p.render(v), nil
	}
	next := rq.form.Get("new_password")
	if err := p.Users.ChangePassword(ctx, u, u, rq.form.Get("current_password"), next); err != nil {
		return p.failure(v, err), nil
	}
	// A changed password may end the account's token; this browser stays
	// logged in with the token of a fresh login.
	if res, err := p.Users.Login(ctx, u.Email, next, rq.SourceIP()); err == nil {
		p.startSession(rq, res.Token, res.Expires)
	} else {
		p.endSession(rq)
	}
	return redirect(p.prefix(ctx) + "me?m=password_saved"), nil
}

func (p *Pages) email(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	u := rq.principal.User
	if _, err := p.Users.ChangeEmail(ctx, u, v.Form["email"], rq.SourceIP()); err != nil {
		p.account(v, u, "email")
		return p.failure(v, err), nil
	}
	return redirect(p.prefix(ctx) + "me?m=email_requested"), nil
}

func (p *Pages) cancelEmail(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	if _, err := p.Users.CancelChangeEmail(ctx, rq.principal.User); err != nil {
		p.account(v, rq.principal.User)
		return p.failure(v, err), nil
	}
	return redirect(p.prefix(ctx) + "me?m=email_cancelled"), nil
}

func (p *Pages) deleteForm(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	if r := p.requireSession(ctx, rq); r != nil {
		return r, nil
	}
	return p.show(v, "delete", "title.delete"), nil
}

func (p *Pages) delete(ctx context.Context, rq *request, v *view) (*httpapi.Response, error) {
	v.Page, v.Title = "delete", "title.delete"
	if v.Form["confirm"] != "yes" {
		v.Fields["confirm"] = []string{v.T("This field is required.")}
		v.status = http.StatusBadRequest
		return p.render(v), nil
	}
	if err := p.Users.Delete(ctx, rq.principal.User); err != nil {
		return p.failure(v, err), nil
	}
	p.endSession(rq)
	return redirect(p.prefix(ctx) + "login?m=deleted"), nil
}

func (p *Pages) logout(ctx context.Context, rq *request, _ *view) (*httpapi.Response, error) {
	if err := p.Users.Logout(ctx, rq.principal); err != nil {
		return nil, err
	}
	p.endSession(rq)
	return redirect(p.prefix(ctx) + "login?m=logged_out"), nil
}
