package api

import (
	"context"
	"net/http"

	"github.com/example/accounts/pkg/apikeys"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// errAPIKeyCannot answers a request authenticated with an API key on a
// route that changes credentials (a password, an email, the token, API
// keys, the account itself): those need the user's own token or password.
var errAPIKeyCannot = httpapi.Forbidden("An API key cannot do this: it changes the account's credentials. Use the account's own token or password.")

// ownCredentials refuses p when it authenticated with an API key.
func ownCredentials(p *users.Principal) error {
	if p.ViaAPIKey() {
		return errAPIKeyCannot
	}
	return nil
}

// credentialTarget is target for a route that changes credentials: the
// route's access rule first (so others still get 404), then no API key.
func (a *API) credentialTarget(ctx context.Context, r *httpapi.Request, rule access) (*users.Principal, *users.User, error) {
	p, t, err := a.target(ctx, r, rule)
	if err != nil {
		return nil, nil, err
	}
	if err := ownCredentials(p); err != nil {
		return nil, nil, err
	}
	return p, t, nil
}

// keys is the API key service, or a 404 where none is configured.
func (a *API) keys() (*apikeys.Service, error) {
	if a.Keys == nil {
		return nil, httpapi.NotFound("")
	}
	return a.Keys, nil
}

// CreateAPIKey serves POST /api/users/{uuid}/apikeys (self, staff; not
// with an API key): 201 with the key, shown this once.
func (a *API) CreateAPIKey() httpapi.LambdaHandler {
	return httpapi.Wrap("CreateAPIKey", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in apikeys.Input
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		ks, err := a.keys()
		if err != nil {
			return nil, err
		}
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		c, err := ks.Create(ctx, t, in)
		if err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusCreated, c), nil
	})
}

// ListAPIKeys serves GET /api/users/{uuid}/apikeys (self, staff, support):
// the live keys, without secrets.
func (a *API) ListAPIKeys() httpapi.LambdaHandler {
	return httpapi.Wrap("ListAPIKeys", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		ks, err := a.keys()
		if err != nil {
			return nil, err
		}
		_, t, err := a.target(ctx, r, readAccess)
		if err != nil {
			return nil, err
		}
		list, err := ks.List(ctx, t.UUID)
		if err != nil {
			return nil, err
		}
		return httpapi.JSON(http.StatusOK, list), nil
	})
}

// RevokeAPIKey serves DELETE /api/users/{uuid}/apikeys/{id} (self, staff;
// not with an API key): 204, and the key stops working at once.
func (a *API) RevokeAPIKey() httpapi.LambdaHandler {
	return httpapi.Wrap("RevokeAPIKey", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		ks, err := a.keys()
		if err != nil {
			return nil, err
		}
		_, t, err := a.credentialTarget(ctx, r, changeAccess)
		if err != nil {
			return nil, err
		}
		if err := ks.Revoke(ctx, t, r.PathParam("id")); err != nil {
			return nil, err
		}
		return httpapi.NoContent(), nil
	})
}
