package api

import (
	"context"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// ecJoin checks the applications and groups an eContext create names and
// returns what joins the new account to them.
func (a *API) ecJoin(ctx context.Context, caller *users.Principal, apps, groups []string) (users.Join, error) {
	if len(apps)+len(groups) > 0 {
		return users.Join{}, httpapi.Invalid(map[string][]string{"applications": {"Not yet."}})
	}
	return users.Join{}, nil
}

// ecMemberships fills v's applications, groups and API keys.
func (a *API) ecMemberships(ctx context.Context, u *users.User, v *ecUser) error { return nil }
