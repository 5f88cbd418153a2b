package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// SignUp serves POST /api/users (self sign-up; with staff credentials, the
// admin create) and POST /user (UbiOps: same effects, UbiOps' answer).
func (a *API) SignUp() httpapi.LambdaHandler {
	return httpapi.Wrap("SignUp", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		if isEContextUser(r) {
			return a.ecSignUp(ctx, r)
		}
		var in users.ProfileInput
		// JSON, or Waldur's UserRequestForm / UserRequestMultipart.
		files, err := r.DecodeInput(&in, users.ReadOnlyFields, imageFiles)
		if err != nil {
			return nil, err
		}
		var u *users.User
		// POST /user is UbiOps' sign-up, whatever Authorization its client
		// sends (it sends its configured token on every call).
		admin := r.Header("authorization") != "" && !isUbiOps(r)
		if admin {
			p, aerr := a.authenticate(ctx, r)
			if aerr != nil {
				return nil, aerr
			}
			if !p.User.IsStaff {
				return nil, httpapi.Forbidden("Only staff can create accounts for others.")
			}
		}
		up, err := a.takeImage(ctx, files, &in)
		if err != nil {
			return nil, err
		}
		if admin {
			u, err = a.Users.AdminCreate(ctx, in)
		} else {
			u, err = a.Users.Register(ctx, in, r.SourceIP())
		}
		a.settleImage(ctx, up, nil, u, err)
		if err != nil {
			return nil, err
		}
		httpapi.SetUser(ctx, u.UUID)
		if isUbiOps(r) {
			return httpapi.JSON(http.StatusCreated, ubiOpsPending(u, in)), nil
		}
		return a.userResponse(ctx, r, http.StatusCreated, u, "")
	})
}

// ubiOpsPending is UbiOps' UserPendingDetail: what the sign-up stored, with
// the optional fields it did not send as null (its client reads None).
func ubiOpsPending(u *users.User, in users.ProfileInput) map[string]*string {
	opt := func(stored string, sent ...*string) *string {
		for _, s := range sent {
			if s != nil {
				return &stored
			}
		}
		if stored == "" {
			return nil
		}
		return &stored
	}
	return map[string]*string{
		"email":   &u.Email,
		"name":    opt(u.FirstName, in.Name, in.FirstName),
		"surname": opt(u.LastName, in.Surname, in.LastName),
		"phone":   opt(u.PhoneNumber, in.Phone, in.PhoneNumber),
	}
}

// isUbiOps tells the UbiOps routes (/user, and /v2.1/user under UbiOps'
// base path) from the contract's (/api/...).
func isUbiOps(r *httpapi.Request) bool {
	p := strings.TrimRight(r.Path(), "/")
	return p == "/user" || p == "/v2.1/user"
}

type codeInput struct {
	Code string `json:"code"`
}

type activateInput struct {
	Code     string `json:"code"`
	Password string `json:"password"`
}

// Activate serves POST /api/auth/activate (code and the password chosen at
// sign-up). GET /api/auth/activate?code= (where an old mail's link lands,
// and what a mail scanner prefetches) changes nothing: it says what to POST.
func (a *API) Activate() httpapi.LambdaHandler {
	return httpapi.Wrap("Activate", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		if r.Method() == http.MethodGet {
			return httpapi.JSON(http.StatusOK, map[string]string{
				"detail": "To activate the account, POST the code and the password chosen at sign-up to this address.",
				"method": http.MethodPost, "fields": "code, password",
			}), nil
		}
		var in activateInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		u, err := a.Users.Activate(ctx, in.Code, in.Password)
		if err != nil {
			return nil, err
		}
		httpapi.SetUser(ctx, u.UUID)
		return a.userResponse(ctx, r, http.StatusOK, u, "")
	})
}

type emailInput struct {
	Email string `json:"email"`
}

// accepted is the answer of resend and reset, the same whether or not the
// address has an account.
func accepted(detail string) *httpapi.Response {
	return httpapi.JSON(http.StatusAccepted, map[string]string{"detail": detail})
}

// ResendActivation serves POST /api/auth/activation/resend.
func (a *API) ResendActivation() httpapi.LambdaHandler {
	return httpapi.Wrap("ResendActivation", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in emailInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		if err := a.Users.ResendActivation(ctx, in.Email, r.SourceIP()); err != nil {
			return nil, err
		}
		return accepted("If that address has an account waiting for activation, a new activation email is on its way."), nil
	})
}

type loginInput struct {
	Login    string `json:"login"`
	Email    string `json:"email"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// isWaldurAuth tells Waldur's /api-auth/... routes from /api/auth/....
func isWaldurAuth(r *httpapi.Request) bool { return strings.HasPrefix(r.Path(), "/api-auth/") }

// Login serves POST /api/auth/login and Waldur's POST /api-auth/password/
// (username or email and password; the same checks, limits and token,
// answered as {"token"}).
func (a *API) Login() httpapi.LambdaHandler {
	return httpapi.Wrap("Login", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in loginInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		login := in.Login
		if login == "" {
			login = in.Email
		}
		if login == "" {
			login = in.Username
		}
		fields := map[string][]string{}
		if strings.TrimSpace(login) == "" {
			fields["login"] = []string{"This field is required."}
		} else if len(login) > users.MaxEmail {
			fields["login"] = []string{"Ensure this field has no more than 254 characters."}
		}
		if in.Password == "" {
			fields["password"] = []string{"This field is required."}
		} else if len(in.Password) > 4*users.MaxPassword {
			fields["password"] = []string{"This password is too long."}
		}
		if len(fields) > 0 {
			return nil, httpapi.Invalid(fields)
		}
		res, err := a.Users.Login(ctx, login, in.Password, r.SourceIP())
		if err != nil {
			return nil, err
		}
		httpapi.SetUser(ctx, res.User.UUID)
		if isWaldurAuth(r) {
			// Waldur's CoreAuthToken.
			return httpapi.JSON(http.StatusOK, map[string]string{"token": res.Token}), nil
		}
		return httpapi.JSON(http.StatusOK, map[string]any{
			"token":      res.Token,
			"expires_at": users.TimeFormat(res.Expires),
			"user":       a.Users.View(res.User, a.baseURL(ctx)),
		}), nil
	})
}

// Logout serves POST /api/auth/logout and Waldur's POST /api-auth/logout/.
func (a *API) Logout() httpapi.LambdaHandler {
	return httpapi.Wrap("Logout", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := ownCredentials(p); err != nil {
			return nil, err // it would end the user's token
		}
		if err := a.Users.Logout(ctx, p); err != nil {
			return nil, err
		}
		return httpapi.NoContent(), nil
	})
}

// Me serves GET /api/users/me: the caller, with their token.
func (a *API) Me() httpapi.LambdaHandler {
	return httpapi.Wrap("Me", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		return a.userResponseWithGrants(ctx, r, http.StatusOK, p.User, a.Users.CurrentToken(ctx, p))
	})
}

// DeleteSelf serves DELETE /api/users (200 with the deleted user, ApiHub)
// and DELETE /user (204, UbiOps).
func (a *API) DeleteSelf() httpapi.LambdaHandler {
	return httpapi.Wrap("DeleteSelf", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := ownCredentials(p); err != nil {
			return nil, err
		}
		if err := a.Users.Delete(ctx, p.User); err != nil {
			return nil, err
		}
		a.settleImage(ctx, nil, p.User, nil, nil)
		if isUbiOps(r) {
			return httpapi.NoContent(), nil
		}
		return a.userResponse(ctx, r, http.StatusOK, p.User, "")
	})
}
