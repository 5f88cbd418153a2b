package api

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// access says who may act on a user resource.
type access int

const (
	// readAccess: self, staff, support; anyone else gets 404.
	readAccess access = iota
	// changeAccess: self and staff; support gets 403, anyone else 404.
	changeAccess
	// staffAccess: staff only; self and support get 403, anyone else 404.
	staffAccess
)

// target authenticates the caller and loads the {uuid} user, applying the
// route's access rule. Self-access costs no second read.
func (a *API) target(ctx context.Context, r *httpapi.Request, rule access) (*users.Principal, *users.User, error) {
	p, err := a.authenticate(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	id, err := uuid.Parse(r.PathParam("uuid"))
	if err != nil || len(r.PathParam("uuid")) != 36 {
		return nil, nil, httpapi.NotFound("")
	}
	t := p.User
	if id.String() != p.User.UUID {
		if !p.User.IsStaff && !p.User.IsSupport {
			return nil, nil, httpapi.NotFound("")
		}
		if t, err = a.Users.Get(ctx, id.String()); err != nil {
			return nil, nil, notFoundAs404(err)
		}
	}
	switch rule {
	case changeAccess:
		if !users.CanChange(p.User, t) {
			return nil, nil, httpapi.Forbidden("")
		}
	case staffAccess:
		if !p.User.IsStaff {
			return nil, nil, httpapi.Forbidden("")
		}
	}
	return p, t, nil
}

// GetUser serves GET /api/users/{uuid}.
func (a *API) GetUser() httpapi.LambdaHandler {
	return httpapi.Wrap("GetUser", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		started := time.Now()
		_, t, err := a.target(ctx, r, readAccess)
		if err != nil {
			return nil, err
		}
		if isEContextUser(r) {
			return a.ecUserAnswer(ctx, http.StatusOK, started, t)
		}
		return a.userResponseWithGrants(ctx, r, http.StatusOK, t, "")
	})
}

// UpdateUser serves PUT and PATCH /api/users/{uuid}.
func (a *API) UpdateUser() httpapi.LambdaHandler {
	return httpapi.Wrap("UpdateUser", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		if isEContextUser(r) {
			return a.ecUpdate(ctx, r)
		}
		var in users.ProfileInput
		// JSON, or Waldur's UserRequestForm / UserRequestMultipart.
		files, err := r.DecodeInput(&in, users.ReadOnlyFields, imageFiles)
		if err != nil {
			return nil, err
		}
		p, t, err := a.target(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		if in.Email != nil && *in.Email != t.Email {
			// An email change (staff's, here) changes credentials.
			if err := ownCredentials(p); err != nil {
				return nil, err
			}
		}
		up, err := a.takeImage(ctx, files, &in)
		if err != nil {
			return nil, err
		}
		u, err := a.Users.Update(ctx, p.User, t, in, r.Method() == http.MethodPut, r.Header("if-match"))
		a.settleImage(ctx, up, t, u, err)
		if err != nil {
			return nil, err
		}
		return a.userResponse(ctx, r, http.StatusOK, u, "")
	})
}

// DeleteUser serves DELETE /api/users/{uuid}.
func (a *API) DeleteUser() httpapi.LambdaHandler {
	return httpapi.Wrap("DeleteUser", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		started := time.Now()
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		var gone ecUser
		if isEContextUser(r) {
			// What is deleted is shown as it was.
			if gone, err = a.ecView(ctx, t); err != nil {
				return nil, err
			}
		}
		if err := a.Users.Delete(ctx, t); err != nil {
			return nil, err
		}
		a.settleImage(ctx, nil, t, nil, nil)
		if isEContextUser(r) {
			return econtext(http.StatusOK, started, map[string]any{"user": gone}), nil
		}
		return httpapi.NoContent(), nil
	})
}

// GetToken serves GET /api/users/{uuid}/token.
func (a *API) GetToken() httpapi.LambdaHandler {
	return httpapi.Wrap("GetToken", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		info, err := a.Users.Token(ctx, t)
		if err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusOK, info), nil
	})
}

// RefreshToken serves POST /api/users/{uuid}/refresh_token.
func (a *API) RefreshToken() httpapi.LambdaHandler {
	return httpapi.Wrap("RefreshToken", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		info, err := a.Users.RefreshToken(ctx, t)
		if err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusOK, info), nil
	})
}

// ChangeEmail serves POST /api/users/{uuid}/change_email.
func (a *API) ChangeEmail() httpapi.LambdaHandler {
	return httpapi.Wrap("ChangeEmail", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in emailInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		u, err := a.Users.ChangeEmail(ctx, t, in.Email, r.SourceIP())
		if err != nil {
			return nil, err
		}
		return a.userResponse(ctx, r, http.StatusOK, u, "")
	})
}

// CancelChangeEmail serves POST /api/users/{uuid}/cancel_change_email.
func (a *API) CancelChangeEmail() httpapi.LambdaHandler {
	return httpapi.Wrap("CancelChangeEmail", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		u, err := a.Users.CancelChangeEmail(ctx, t)
		if err != nil {
			return nil, err
		}
		return a.userResponse(ctx, r, http.StatusOK, u, "")
	})
}

// ConfirmEmail serves POST /api/users/confirm_email.
func (a *API) ConfirmEmail() httpapi.LambdaHandler {
	return httpapi.Wrap("ConfirmEmail", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in codeInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := ownCredentials(p); err != nil {
			return nil, err
		}
		u, err := a.Users.ConfirmEmail(ctx, p.User, in.Code)
		if err != nil {
			return nil, err
		}
		return a.userResponse(ctx, r, http.StatusOK, u, "")
	})
}

type passwordInput struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword serves POST /api/users/{uuid}/change_password.
func (a *API) ChangePassword() httpapi.LambdaHandler {
	return httpapi.Wrap("ChangePassword", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in passwordInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		p, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		if err := a.Users.ChangePassword(ctx, p.User, t, in.CurrentPassword, in.NewPassword); err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusOK, map[string]string{"detail": "The password has been changed."}), nil
	})
}

// PasswordReset serves POST /api/auth/password_reset.
func (a *API) PasswordReset() httpapi.LambdaHandler {
	return httpapi.Wrap("PasswordReset", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in emailInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		if err := a.Users.PasswordReset(ctx, in.Email, r.SourceIP()); err != nil {
			return nil, err
		}
		return accepted("If that address has an account, a password reset email is on its way."), nil
	})
}

type resetConfirmInput struct {
	Code        string `json:"code"`
	NewPassword string `json:"new_password"`
}

// PasswordResetConfirm serves POST /api/auth/password_reset/confirm.
func (a *API) PasswordResetConfirm() httpapi.LambdaHandler {
	return httpapi.Wrap("PasswordResetConfirm", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in resetConfirmInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		if err := a.Users.PasswordResetConfirm(ctx, in.Code, in.NewPassword); err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusOK, map[string]string{"detail": "The password has been reset; log in with the new one."}), nil
	})
}
