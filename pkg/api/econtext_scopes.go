package api

import (
	"context"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// ecJoin checks the applications and groups an eContext create names (they
// exist, and the caller may add users to each) and returns what makes the
// new account a member of them in its own transaction.
func (a *API) ecJoin(ctx context.Context, caller *users.Principal, apps, grps []string) (users.Join, error) {
	if len(apps)+len(grps) == 0 {
		return users.Join{}, nil
	}
	if len(apps)+len(grps) > MaxJoinScopes {
		return users.Join{}, httpapi.Invalid(map[string][]string{"applications": {
			"At most " + strconv.Itoa(MaxJoinScopes) + " applications and groups together; add further memberships with add_user."}})
	}
	as, gs, err := a.Groups.Scopes(ctx, apps, grps)
	if err != nil {
		return users.Join{}, err
	}
	if caller == nil {
		// A self sign-up joins nothing: only staff and the scopes' owners
		// and admins add members.
		p := map[string][]string{}
		for _, x := range as {
			p["applications"] = append(p["applications"], "Only staff or an owner or admin of application "+x.ID+" may add users to it.")
		}
		for _, x := range gs {
			p["groups"] = append(p["groups"], "Only staff or an owner or admin of group "+x.ID+" may add users to it.")
		}
		return users.Join{}, httpapi.Invalid(p)
	}
	if err := a.Groups.CanAssign(ctx, caller, as, gs); err != nil {
		return users.Join{}, err
	}
	return users.Join{
		Items: func(u *users.User) []types.TransactWriteItem {
			u.HasGrants = true // written with the account: its reads then read its grants
			return a.Groups.JoinItemsBy(u.UUID, caller.User, as, gs, groups.RoleMember)
		},
		Failed: httpapi.Invalid(map[string][]string{"applications": {"An application or group named was deleted meanwhile; nothing was written."}}),
	}, nil
}

// ecMemberships fills v's applications, groups and API keys (never their
// secrets).
func (a *API) ecMemberships(ctx context.Context, u *users.User, v *ecUser) error {
	apps, grps, err := a.Groups.MemberOf(ctx, u.UUID)
	if err != nil {
		return err
	}
	for _, x := range apps {
		v.Applications = append(v.Applications, x)
	}
	for _, x := range grps {
		v.Groups = append(v.Groups, x)
	}
	if a.Keys != nil {
		ks, err := a.Keys.List(ctx, u.UUID)
		if err != nil {
			return err
		}
		for _, k := range ks {
			v.Apikeys = append(v.Apikeys, k)
		}
	}
	return nil
}
