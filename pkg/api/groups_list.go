package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// scopeListParams are what a GET /api/users filtered by scope accepts
// (docs/GROUPS.md "Filtering users by scope").
var scopeListParams = map[string]bool{"customer_uuid": true, "project_uuid": true, "organization_roles": true,
	"project_roles": true, "page": true, "page_size": true, "field": true}

// hasScopeFilter reports whether the query filters by scope.
func hasScopeFilter(r *httpapi.Request) bool {
	for k := range scopeParams {
		if _, ok := r.Query()[k]; ok {
			return true
		}
	}
	return false
}

// listByScope serves GET /api/users with customer_uuid, project_uuid,
// organization_roles or project_roles: the members of that scope the
// caller may see (staff and support: any scope; others: a scope they
// belong to), in uuid order, with X-Result-Count and Link. One Query of
// the scope's grants, then one BatchGetItem that authenticates and reads
// the page's users and their grants.
func (a *API) listByScope(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
	v := r.Query()
	p := map[string][]string{}
	var other []string
	for k := range v {
		if !scopeListParams[k] {
			other = append(other, k)
		}
	}
	if len(other) > 0 {
		slices.Sort(other)
		for _, k := range other {
			p[k] = []string{"This parameter cannot be combined with customer_uuid, project_uuid, organization_roles or project_roles."}
		}
	}
	var q groups.MemberQuery
	for _, f := range []struct {
		name string
		dst  *string
	}{{"customer_uuid", &q.CustomerUUID}, {"project_uuid", &q.ProjectUUID}} {
		if s := strings.TrimSpace(v.Get(f.name)); s != "" {
			if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
				p[f.name] = append(p[f.name], "Enter a valid UUID.")
			}
			*f.dst = s
		}
	}
	var err error
	if q.OrganizationRoles, err = rolesParam(v.Get("organization_roles"), "organization_roles", p); err == nil {
		q.ProjectRoles, _ = rolesParam(v.Get("project_roles"), "project_roles", p)
	}
	if q.CustomerUUID == "" && q.ProjectUUID == "" && len(p) == 0 {
		p["customer_uuid"] = []string{"Filter roles by a scope: give customer_uuid or project_uuid."}
	}
	page, size := 1, users.DefaultPageSize
	if s := v.Get("page"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 || page > maxPage {
			p["page"] = []string{fmt.Sprintf("Enter a whole number from 1 to %d.", maxPage)}
		}
	}
	if s := v.Get("page_size"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > users.MaxPageSize {
			p["page_size"] = []string{fmt.Sprintf("Enter a whole number from 1 to %d.", users.MaxPageSize)}
		}
	}
	fields := v["field"]
	if _, err := selectFields(users.View{}, fields); err != nil {
		return nil, err
	}
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	// It authenticates after the Query of the scope, in the request that
	// reads the page (docs/GROUPS.md "Budgets").
	us, perms, total, err := a.Groups.MemberPage(ctx, r.Header("authorization"), q, page, size)
	if err != nil {
		return nil, err
	}
	base := a.baseURL(ctx)
	out := make([]any, 0, len(us))
	for _, u := range us {
		uv := a.Users.View(u, base)
		uv.Permissions = permissionsAny(perms[u.UUID])
		sv, err := selectFields(uv, fields)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	self := base + "/api/users"
	if strings.HasSuffix(r.Path(), "/") {
		self += "/"
	}
	resp := httpapi.JSON(http.StatusOK, out)
	if r.Method() == http.MethodHead {
		resp = &httpapi.Response{Status: http.StatusOK}
	}
	return resp.WithHeader("X-Result-Count", strconv.Itoa(total)).
		WithHeader("Link", pageLinks(self, v, page, size, total)), nil
}

// rolesParam reads a comma-separated list of role names into p's problems.
func rolesParam(s, field string, p map[string][]string) ([]string, error) {
	rs, err := groups.ParseRoles(field, s)
	if err != nil {
		e, _ := httpapi.AsError(err)
		for k, msgs := range e.Fields {
			p[k] = append(p[k], msgs...)
		}
	}
	return rs, err
}
