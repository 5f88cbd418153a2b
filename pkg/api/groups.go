package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// Applications and groups (docs/GROUPS.md): the eContext-shaped routes on
// /api/applications/application and /api/groups/group, and Waldur's
// membership actions on them. One function serves a verb group for both
// kinds; the kind comes from the path.

// kindOf is the scope kind a route's path names.
func kindOf(r *httpapi.Request) string {
	if strings.HasPrefix(r.Path(), "/api/groups/") {
		return groups.KindGroup
	}
	return groups.KindApplication
}

// econtext is eContext's envelope: {"econtext": {"result": ..., "elapsed": s}}.
func econtext(status int, start time.Time, result map[string]any) *httpapi.Response {
	return httpapi.JSON(status, map[string]any{"econtext": map[string]any{"result": result, "elapsed": time.Since(start).Seconds()}})
}

// pageParams reads page and page_size (at most groups.MaxPageSize).
func pageParams(r *httpapi.Request) (int, int, error) {
	page, size := 1, groups.DefaultPageSize
	p := map[string][]string{}
	if s := r.Query().Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			p["page"] = []string{fmt.Sprintf("Enter a whole number from 1 to %d.", maxPage)}
		}
		page = n
	}
	if s := r.Query().Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > groups.MaxPageSize {
			p["page_size"] = []string{fmt.Sprintf("Enter a whole number from 1 to %d.", groups.MaxPageSize)}
		}
		size = n
	}
	if len(p) > 0 {
		return 0, 0, httpapi.Invalid(p)
	}
	return page, size, nil
}

// CreateScope serves POST /api/applications/application (staff) and POST
// /api/groups/group (staff, owners and admins of its application).
func (a *API) CreateScope() httpapi.LambdaHandler {
	return httpapi.Wrap("CreateScope", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		start := time.Now()
		var in groups.ScopeInput
		if err := r.DecodeJSON(&in, groups.ReadOnlyFields); err != nil {
			return nil, err
		}
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		kind := kindOf(r)
		if kind == groups.KindApplication && in.Application != nil {
			return nil, httpapi.Invalid(map[string][]string{"application": {"Unknown field."}})
		}
		v, err := a.Groups.Create(ctx, p.User, kind, in)
		if err != nil {
			return nil, err
		}
		return econtext(http.StatusCreated, start, map[string]any{kind: v}), nil
	})
}

// ListScopes serves GET /api/applications/application and GET
// /api/groups/group (optional application=<id>): the scopes the caller may
// read, paged.
func (a *API) ListScopes() httpapi.LambdaHandler {
	return httpapi.Wrap("ListScopes", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		start := time.Now()
		page, size, err := pageParams(r)
		if err != nil {
			return nil, err
		}
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		kind := kindOf(r)
		app := ""
		if kind == groups.KindGroup {
			app = r.Query().Get("application")
		}
		res, err := a.Groups.List(ctx, p.User, kind, app, page, size)
		if err != nil {
			return nil, err
		}
		return econtext(http.StatusOK, start, map[string]any{kind + "s": res.Items, "count": res.Count}).
			WithHeader("X-Result-Count", strconv.Itoa(res.Count)), nil
	})
}

// GetScope serves GET /api/applications/application/{id} and GET
// /api/groups/group/{id}.
func (a *API) GetScope() httpapi.LambdaHandler {
	return httpapi.Wrap("GetScope", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		start := time.Now()
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		kind := kindOf(r)
		v, err := a.Groups.Get(ctx, p.User, kind, r.PathParam("id"))
		if err != nil {
			return nil, err
		}
		return econtext(http.StatusOK, start, map[string]any{kind: v}), nil
	})
}

// UpdateScope serves PUT and PATCH on an application or a group.
func (a *API) UpdateScope() httpapi.LambdaHandler {
	return httpapi.Wrap("UpdateScope", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		start := time.Now()
		var in groups.ScopeInput
		if err := r.DecodeJSON(&in, groups.ReadOnlyFields); err != nil {
			return nil, err
		}
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		kind := kindOf(r)
		v, err := a.Groups.Update(ctx, p.User, kind, r.PathParam("id"), in, r.Method() == http.MethodPut)
		if err != nil {
			return nil, err
		}
		return econtext(http.StatusOK, start, map[string]any{kind: v}), nil
	})
}

// DeleteScope serves DELETE on an application (staff) or a group (staff,
// owners and admins of its application): 204.
func (a *API) DeleteScope() httpapi.LambdaHandler {
	return httpapi.Wrap("DeleteScope", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := a.Groups.Delete(ctx, p.User, kindOf(r), r.PathParam("id")); err != nil {
			return nil, err
		}
		return httpapi.NoContent(), nil
	})
}

// ChangeMembers serves POST .../{id}/add_user (201), update_user (200) and
// delete_user (204) on an application or a group, in Waldur's shape.
func (a *API) ChangeMembers() httpapi.LambdaHandler {
	return httpapi.Wrap("ChangeMembers", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		var in groups.MemberInput
		if err := r.DecodeJSON(&in, nil); err != nil {
			return nil, err
		}
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		kind, id := kindOf(r), r.PathParam("id")
		path := strings.TrimSuffix(r.Path(), "/")
		switch path[strings.LastIndex(path, "/")+1:] {
		case "add_user":
			m, err := a.Groups.AddUser(ctx, p.User, kind, id, in)
			if err != nil {
				return nil, err
			}
			return httpapi.JSON(http.StatusCreated, m), nil
		case "update_user":
			m, err := a.Groups.UpdateUser(ctx, p.User, kind, id, in)
			if err != nil {
				return nil, err
			}
			return httpapi.JSON(http.StatusOK, m), nil
		default: // delete_user
			if err := a.Groups.DeleteUser(ctx, p.User, kind, id, in); err != nil {
				return nil, err
			}
			return httpapi.NoContent(), nil
		}
	})
}

// ListScopeUsers serves GET .../{id}/list_users (role=<names>, paged, with
// X-Result-Count and Link), in Waldur's shape: two DynamoDB requests.
func (a *API) ListScopeUsers() httpapi.LambdaHandler {
	return httpapi.Wrap("ListScopeUsers", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		page, size, err := pageParams(r)
		if err != nil {
			return nil, err
		}
		roles, err := groups.ParseRoles("role", strings.Join(r.Query()["role"], ","))
		if err != nil {
			return nil, err
		}
		// It authenticates after the Query of the scope, in the request
		// that reads the page (docs/GROUPS.md "Budgets").
		res, err := a.Groups.ListUsers(ctx, r.Header("authorization"), kindOf(r), r.PathParam("id"), roles, page, size)
		if err != nil {
			return nil, err
		}
		self := a.baseURL(ctx) + strings.TrimSuffix(r.Path(), "/")
		return httpapi.JSON(http.StatusOK, res.Members).
			WithHeader("X-Result-Count", strconv.Itoa(res.Count)).
			WithHeader("Link", pageLinks(self, r.Query(), page, size, res.Count)), nil
	})
}

// userResponseWithGrants is userResponse with the user's role grants in
// permissions (one GetItem more, for a user ever granted a role).
func (a *API) userResponseWithGrants(ctx context.Context, r *httpapi.Request, status int, u *users.User, token string) (*httpapi.Response, error) {
	v := a.Users.View(u, a.baseURL(ctx))
	v.Token = token
	if a.Groups != nil && u.HasGrants && wantsField(r, "permissions") {
		ps, err := a.Groups.PermissionsFor(ctx, u)
		if err != nil {
			return nil, err
		}
		v.Permissions = permissionsAny(ps)
	}
	body, err := selectFields(v, r.Query()["field"])
	if err != nil {
		return nil, err
	}
	return httpapi.JSON(status, body).WithHeader("ETag", ETag(u)), nil
}

// wantsField reports whether field selection keeps name (no selection
// keeps everything).
func wantsField(r *httpapi.Request, name string) bool {
	fs := r.Query()["field"]
	if len(fs) == 0 {
		return true
	}
	for _, f := range fs {
		for _, n := range strings.Split(f, ",") {
			if strings.TrimSpace(n) == name {
				return true
			}
		}
	}
	return false
}

func permissionsAny(ps []groups.Permission) []any {
	out := make([]any, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// pagePermissions reads the permissions of a list page's users who were
// ever granted a role (one BatchGetItem per 100; none when no one on the
// page was), unless field selection leaves them out.
func (a *API) pagePermissions(ctx context.Context, r *httpapi.Request, us []*users.User) (map[string][]groups.Permission, error) {
	var with []*users.User
	for _, u := range us {
		if u.HasGrants { // a user never granted a role holds none
			with = append(with, u)
		}
	}
	if a.Groups == nil || len(with) == 0 || !wantsField(r, "permissions") {
		return nil, nil
	}
	return a.Groups.PermissionsOfMany(ctx, with)
}
