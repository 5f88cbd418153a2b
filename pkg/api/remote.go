package api

import (
	"context"
	"net/http"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/remote"
)

// IdentitySource is the remote identity source pull_remote_user reads.
type IdentitySource interface {
	// UserInfo returns what the source holds about username; its errors are
	// the contract's (404 for an unknown user, 502 for a failing source).
	UserInfo(ctx context.Context, username string) (remote.Claims, error)
}

var _ IdentitySource = (*remote.Client)(nil)

// errNoIdentitySource answers pull_remote_user where no source is
// configured: the deployment's state, not the request's fault, and a retry
// will not help, so 503 without Retry-After.
var errNoIdentitySource = &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "service_unavailable",
	Message: "No remote identity source is configured for this service."}

// PullRemoteUser serves POST /api/users/{uuid}/pull_remote_user (staff):
// the user's identity-provider fields refreshed from the remote source,
// which is asked by username; the answer applies only to the account its
// sub is linked to (users.PullRemote), a 409 otherwise.
func (a *API) PullRemoteUser() httpapi.LambdaHandler {
	return httpapi.Wrap("PullRemoteUser", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		_, t, err := a.target(ctx, r, staffAccess)
		if err != nil {
			return nil, err
		}
		if a.Remote == nil {
			return nil, errNoIdentitySource
		}
		claims, err := a.Remote.UserInfo(ctx, t.Username)
		if err != nil {
			return nil, err
		}
		u, err := a.Users.PullRemote(ctx, t, claims)
		if err != nil {
			return nil, err
		}
		return a.userResponse(ctx, r, http.StatusOK, u, "")
	})
}

// ResendMails serves POST /api/users/{uuid}/resend_mail (staff): the
// user's mails that could not be sent (email_status failed) are queued
// again; those whose code has expired are dropped. 202 with the counts.
func (a *API) ResendMails() httpapi.LambdaHandler {
	return httpapi.Wrap("ResendMails", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		_, t, err := a.target(ctx, r, staffAccess)
		if err != nil {
			return nil, err
		}
		res, err := a.Users.ResendMails(ctx, t)
		if err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusAccepted, res), nil
	})
}
