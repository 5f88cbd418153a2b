package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// listByScopeFiltered serves GET /api/users with a scope filter
// (customer_uuid, project_uuid, organization_roles, project_roles) and any
// other filter of the list or an ordering o: the members the scope filter
// selects for the caller (groups.Members: the same rule as the plain scope
// page), every one read by uuid, then filtered, ordered and paged in memory
// by the other parameters, with exact X-Result-Count and Link. At most
// users.Service.VisibleLimit members (1,000 by default), else a 400 asking
// for the scope filter alone or a narrower scope. Costs: authentication, one
// Query of the scope's grants (one more per MB), one BatchGetItem per 100
// members, and the page's permissions (one BatchGetItem).
func (a *API) listByScopeFiltered(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
	v := r.Query()
	rest := url.Values{}
	for k, vs := range v {
		if !scopeParams[k] {
			rest[k] = vs
		}
	}
	p := map[string][]string{}
	var mq groups.MemberQuery
	for _, f := range []struct {
		name string
		dst  *string
	}{{"customer_uuid", &mq.CustomerUUID}, {"project_uuid", &mq.ProjectUUID}} {
		if s := strings.TrimSpace(v.Get(f.name)); s != "" {
			if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
				p[f.name] = append(p[f.name], "Enter a valid UUID.")
			}
			*f.dst = s
		}
	}
	var err error
	if mq.OrganizationRoles, err = rolesParam(v.Get("organization_roles"), "organization_roles", p); err == nil {
		mq.ProjectRoles, _ = rolesParam(v.Get("project_roles"), "project_roles", p)
	}
	if mq.CustomerUUID == "" && mq.ProjectUUID == "" && len(p) == 0 {
		p["customer_uuid"] = []string{"Filter roles by a scope: give customer_uuid or project_uuid."}
	}
	q, err := parseListQuery(rest)
	if err != nil {
		e, ok := httpapi.AsError(err)
		if !ok || len(p) == 0 {
			return nil, err
		}
		for k, msgs := range e.Fields {
			p[k] = append(p[k], msgs...)
		}
	}
	fields := v["field"]
	if _, err := selectFields(users.View{}, fields); err != nil {
		return nil, err
	}
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	caller, err := a.authenticate(ctx, r)
	if err != nil {
		return nil, err
	}
	ids, err := a.Groups.Members(ctx, caller.User, mq)
	if err != nil {
		return nil, err
	}
	if limit := a.Users.VisibleLimit(); len(ids) > limit {
		return nil, users.TooManyToRead(limit, firstFilter(rest),
			"This scope has too many members to filter or order them: give the scope filter alone (pages in uuid order), or a narrower scope (project_uuid, organization_roles, project_roles).")
	}
	us, err := a.Users.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	res := q.ScopedPage(us)
	perms, err := a.pagePermissions(ctx, r, res.Users)
	if err != nil {
		return nil, err
	}
	base := a.baseURL(ctx)
	out := make([]any, 0, len(res.Users))
	for _, u := range res.Users {
		uv := a.Users.View(u, base)
		if ps, ok := perms[u.UUID]; ok {
			uv.Permissions = permissionsAny(ps)
		}
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
	return resp.WithHeader("X-Result-Count", strconv.Itoa(res.Total)).
		WithHeader("Link", pageLinks(self, v, q.Page, q.PageSize, res.Total)), nil
}

// firstFilter is the parameter a 400 names among rest: o when given, else
// the first filter in name order.
func firstFilter(rest url.Values) string {
	if _, ok := rest["o"]; ok {
		return "o"
	}
	best := ""
	for k := range rest {
		switch k {
		case "page", "page_size", "field":
			continue
		}
		if best == "" || k < best {
			best = k
		}
	}
	if best == "" {
		return "customer_uuid"
	}
	return best
}
