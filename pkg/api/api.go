// Package api owns the HTTP endpoints: one method per Lambda function, each
// turning an HTTP API event into a users.Service call and its answer into
// the contract's shape.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/example/accounts/pkg/apikeys"
	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/images"
	"github.com/example/accounts/pkg/users"
)

// API holds what the endpoints share.
type API struct {
	Users *users.Service
	// Groups holds applications, groups and role grants (docs/GROUPS.md).
	Groups *groups.Service
	Log    *slog.Logger
	// Remote is the remote identity source; nil when none is configured.
	Remote IdentitySource
	// Images keeps uploaded images; nil when no bucket is configured.
	Images *images.Store
	// Keys is users' API keys (pkg/apikeys); nil serves none.
	Keys *apikeys.Service
}

// Handlers maps each function's logical id in template.yaml to its handler;
// the local server serves the template's routes through it.
func (a *API) Handlers() map[string]httpapi.LambdaHandler {
	return map[string]httpapi.LambdaHandler{
		"SignUpFunction":               a.SignUp(),
		"ActivateFunction":             a.Activate(),
		"ResendActivationFunction":     a.ResendActivation(),
		"LoginFunction":                a.Login(),
		"LogoutFunction":               a.Logout(),
		"MeFunction":                   a.Me(),
		"DeleteSelfFunction":           a.DeleteSelf(),
		"ListUsersFunction":            a.ListUsers(),
		"GetUserFunction":              a.GetUser(),
		"UpdateUserFunction":           a.UpdateUser(),
		"DeleteUserFunction":           a.DeleteUser(),
		"GetTokenFunction":             a.GetToken(),
		"RefreshTokenFunction":         a.RefreshToken(),
		"ChangeEmailFunction":          a.ChangeEmail(),
		"CancelChangeEmailFunction":    a.CancelChangeEmail(),
		"ConfirmEmailFunction":         a.ConfirmEmail(),
		"ChangePasswordFunction":       a.ChangePassword(),
		"PasswordResetFunction":        a.PasswordReset(),
		"PasswordResetConfirmFunction": a.PasswordResetConfirm(),
		"PullRemoteUserFunction":       a.PullRemoteUser(),
		"ResendMailsFunction":          a.ResendMails(),
		"GetImageFunction":             a.GetImage(),
		"SchemaFunction":               a.Schema(),
		"ImportUsersFunction":          a.ImportUsers(),
		"CreateScopeFunction":          a.CreateScope(),
		"ListScopesFunction":           a.ListScopes(),
		"GetScopeFunction":             a.GetScope(),
		"UpdateScopeFunction":          a.UpdateScope(),
		"DeleteScopeFunction":          a.DeleteScope(),
		"ChangeMembersFunction":        a.ChangeMembers(),
		"ListScopeUsersFunction":       a.ListScopeUsers(),
		"CreateApiKeyFunction":         a.CreateAPIKey(),
		"ListApiKeysFunction":          a.ListAPIKeys(),
		"RevokeApiKeyFunction":         a.RevokeAPIKey(),
	}
}

// baseURL is the service's public base URL (users.Service.PublicURL): a
// request's Host or X-Forwarded-* headers never reach a link or a url.
func (a *API) baseURL(ctx context.Context) string { return a.Users.PublicURL(ctx) }

// authenticate resolves the caller from the Authorization header.
func (a *API) authenticate(ctx context.Context, r *httpapi.Request) (*users.Principal, error) {
	return a.Users.Authenticate(ctx, r.Header("authorization"))
}

// userResponse answers with a user object, its ETag, and field selection.
func (a *API) userResponse(ctx context.Context, r *httpapi.Request, status int, u *users.User, token string) (*httpapi.Response, error) {
	v := a.Users.View(u, a.baseURL(ctx))
	v.Token = token
	body, err := selectFields(v, r.Query()["field"])
	if err != nil {
		return nil, err
	}
	return httpapi.JSON(status, body).WithHeader("ETag", ETag(u)), nil
}

// ETag is a user's entity tag: its version.
func ETag(u *users.User) string { return `"` + strconv.FormatInt(u.Version, 10) + `"` }

// selectFields keeps only the named fields of v when any are named
// (field=a&field=b, or field=a,b).
func selectFields(v any, fields []string) (any, error) {
	if len(fields) == 0 {
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, httpapi.Internal(err)
	}
	out := map[string]json.RawMessage{}
	for _, f := range fields {
		for _, name := range strings.Split(f, ",") {
			name = strings.TrimSpace(name)
			if val, ok := m[name]; ok {
				out[name] = val
			} else if name != "" && name != "token" {
				return nil, httpapi.Invalid(map[string][]string{"field": {"Unknown field: " + name + "."}})
			}
		}
	}
	return out, nil
}

// notFoundAs404 turns users.ErrNotFound into the contract's 404.
func notFoundAs404(err error) error {
	if errors.Is(err, users.ErrNotFound) {
		return httpapi.NotFound("")
	}
	return err
}
