package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// eContext's user routes are served by the functions that serve the
// contract's: POST /api/users/user by SignUpFunction, GET, PATCH and DELETE
// /api/users/user/{uuid} by GetUser, UpdateUser and DeleteUser. The path
// picks eContext's body and envelope (docs/GROUPS.md), as /user picks
// UbiOps'.

// isEContextUser tells eContext's user routes from the contract's.
func isEContextUser(r *httpapi.Request) bool {
	p := strings.TrimRight(r.Path(), "/")
	return p == "/api/users/user" || strings.HasPrefix(p, "/api/users/user/")
}

// ecUserInput is eContext's user body.
type ecUserInput struct {
	Name         *string         `json:"name"`
	Email        *string         `json:"email"`
	Password     *string         `json:"password"`
	CustomData   json.RawMessage `json:"custom_data"`
	Applications *[]string       `json:"applications"`
	Groups       *[]string       `json:"groups"`
	// Status (ENABLED or DISABLED) is staff's on PATCH.
	Status *string `json:"status"`
}

// ecUserReadOnly are the fields of eContext's user a client may send back
// after reading it; they are ignored.
var ecUserReadOnly = map[string]bool{
	"id": true, "username": true, "href": true, "created_at": true, "modified_at": true, "apikeys": true,
}

// MaxJoinScopes bounds the applications and groups one eContext create
// names: each is a grant written in the account's own transaction, which
// DynamoDB caps at 100 items.
const MaxJoinScopes = 20

// ecUser is eContext's user object.
type ecUser struct {
	ID           string          `json:"id"`
	Username     string          `json:"username"`
	Email        string          `json:"email"`
	Name         string          `json:"name"`
	Status       string          `json:"status"`
	Href         string          `json:"href"`
	CustomData   json.RawMessage `json:"custom_data"`
	CreatedAt    string          `json:"created_at"`
	ModifiedAt   string          `json:"modified_at"`
	Applications []any           `json:"applications"`
	Groups       []any           `json:"groups"`
	Apikeys      []any           `json:"apikeys"`
}

// ecView is u as eContext shows it, with its applications, groups and API
// keys.
func (a *API) ecView(ctx context.Context, u *users.User) (ecUser, error) {
	v := ecUser{
		ID: u.UUID, Username: u.Username, Email: u.Email, Name: u.FullName(), Status: string(u.Status),
		Href:       a.baseURL(ctx) + "/api/users/user/" + u.UUID,
		CustomData: json.RawMessage("null"), CreatedAt: groups.EContextTime(u.DateJoined), ModifiedAt: groups.EContextTime(u.Modified),
		Applications: []any{}, Groups: []any{}, Apikeys: []any{},
	}
	if u.CustomData != "" {
		v.CustomData = json.RawMessage(u.CustomData)
	}
	if err := a.ecMemberships(ctx, u, &v); err != nil {
		return ecUser{}, err
	}
	return v, nil
}

// ecUserAnswer answers with u in eContext's envelope.
func (a *API) ecUserAnswer(ctx context.Context, status int, started time.Time, u *users.User) (*httpapi.Response, error) {
	v, err := a.ecView(ctx, u)
	if err != nil {
		return nil, err
	}
	return econtext(status, started, map[string]any{"user": v}).WithHeader("ETag", ETag(u)), nil
}

// ecSignUp serves POST /api/users/user: without credentials a self sign-up;
// with Basic or Token credentials of staff, or of an owner or admin of
// every application and group named, the same account created by them
// (registration_method admin), a member of those scopes from its first
// write. Either way the account is UNVERIFIED until the person activates
// it from the mail, as eContext shows it.
func (a *API) ecSignUp(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
	started := time.Now()
	var in ecUserInput
	if err := r.DecodeJSON(&in, ecUserReadOnly); err != nil {
		return nil, err
	}
	if in.Status != nil {
		return nil, httpapi.Invalid(map[string][]string{"status": {"An account starts UNVERIFIED; it is ENABLED by its activation."}})
	}
	var caller *users.Principal
	if r.Header("authorization") != "" {
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		caller = p
	}
	if caller != nil && !caller.User.IsStaff && (caller.User.IsSupport || len(deref(in.Applications))+len(deref(in.Groups)) == 0) {
		// As on POST /api/users: with credentials, a create is staff's, or
		// that of the owners and admins of the scopes it names.
		return nil, httpapi.Forbidden("Only staff, or the owners and admins of the applications and groups named, create accounts for others.")
	}
	join, err := a.ecJoin(ctx, caller, deref(in.Applications), deref(in.Groups))
	if err != nil {
		return nil, err
	}
	if caller != nil {
		join.Method = "admin"
	}
	u, err := a.Users.RegisterJoining(ctx, users.ProfileInput{
		Name: in.Name, Email: in.Email, Password: in.Password, CustomData: in.CustomData,
	}, r.SourceIP(), join)
	if err != nil {
		return nil, err
	}
	httpapi.SetUser(ctx, u.UUID)
	return a.ecUserAnswer(ctx, http.StatusCreated, started, u)
}

func deref(s *[]string) []string {
	if s == nil {
		return nil
	}
	return *s
}

// ecUpdate serves PATCH /api/users/user/{uuid}: name, email, custom_data,
// and (staff) status, with the contract's rules for each (PATCH
// /api/users/{uuid}). A password and memberships have routes of their own.
func (a *API) ecUpdate(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
	started := time.Now()
	var in ecUserInput
	if err := r.DecodeJSON(&in, ecUserReadOnly); err != nil {
		return nil, err
	}
	bad := map[string][]string{}
	if in.Password != nil {
		bad["password"] = []string{"Change a password with POST /api/users/{uuid}/change_password."}
	}
	if in.Applications != nil {
		bad["applications"] = []string{"Change memberships with the application's add_user and delete_user."}
	}
	if in.Groups != nil {
		bad["groups"] = []string{"Change memberships with the group's add_user and delete_user."}
	}
	pin := users.ProfileInput{Email: in.Email, CustomData: in.CustomData}
	if in.Name != nil {
		// eContext's name is the whole name: the contract's first_name takes
		// it and last_name goes, or a last_name set through the contract's
		// routes would trail every name eContext sets.
		pin.FirstName, pin.LastName = in.Name, ptr("")
	}
	if in.Status != nil {
		switch *in.Status {
		case string(users.StatusEnabled):
			pin.IsActive = ptr(true)
		case string(users.StatusDisabled):
			pin.IsActive = ptr(false)
		default:
			bad["status"] = []string{"Must be ENABLED or DISABLED."}
		}
	}
	if len(bad) > 0 {
		return nil, httpapi.Invalid(bad)
	}
	p, t, err := a.target(ctx, r, changeAccess)
	if err != nil {
		return nil, err
	}
	if in.Email != nil && *in.Email != t.Email {
		// An email change changes credentials: not with an API key.
		if err := ownCredentials(p); err != nil {
			return nil, err
		}
	}
	u, err := a.Users.Update(ctx, p.User, t, pin, false, r.Header("if-match"))
	if err != nil {
		return nil, err
	}
	return a.ecUserAnswer(ctx, http.StatusOK, started, u)
}

func ptr[T any](v T) *T { return &v }
