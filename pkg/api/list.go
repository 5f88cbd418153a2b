package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// ListUsers serves GET /api/users (HEAD: the same headers, no body): a page of users as a JSON array, with
// X-Result-Count (all matches) and an RFC 8288 Link header (first, prev,
// next, last). Staff and support see everyone, others only themselves.
// Every page is answered from an index: the flags, the exact filters and the
// word searches, by username or date joined, in two or three DynamoDB
// requests with Token auth at any page depth; see pkg/users/list.go,
// pkg/users/index.go and docs/LISTING.md.
func (a *API) ListUsers() httpapi.LambdaHandler {
	return httpapi.Wrap("ListUsers", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		if a.Groups != nil && hasScopeFilter(r) {
			return a.listByScope(ctx, r) // groups_list.go
		}
		q, err := parseListQuery(r.Query())
		if err != nil {
			return nil, err
		}
		fields := r.Query()["field"]
		if _, err := selectFields(users.View{}, fields); err != nil {
			return nil, err // unknown field names, even on an empty page
		}
		res, err := a.Users.List(ctx, r.Header("authorization"), q)
		if err != nil {
			return nil, err
		}
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
			v, err := selectFields(uv, fields)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		self := base + "/api/users"
		if strings.HasSuffix(r.Path(), "/") {
			self += "/"
		}
		resp := httpapi.JSON(http.StatusOK, out)
		if r.Method() == http.MethodHead {
			resp = &httpapi.Response{Status: http.StatusOK} // Waldur's users_count: the headers alone
		}
		return resp.
			WithHeader("X-Result-Count", strconv.Itoa(res.Total)).
			WithHeader("Link", pageLinks(self, r.Query(), q.Page, q.PageSize, res.Total)), nil
	})
}

// listParams are the query parameters GET /api/users knows.
var listParams = func() map[string]bool {
	m := map[string]bool{"email": true, "username": true, "username_list": true, "is_active": true, "is_staff": true,
		"is_support": true, "date_joined": true, "modified": true, "query": true, "o": true, "page": true,
		"page_size": true, "field": true, "agreement_date": true, "user_keyword": true}
	for _, f := range users.ContainsFilters {
		m[f] = true
	}
	for _, f := range users.WordFilters {
		m[f] = true
	}
	for _, f := range users.ExactFilters {
		m[f] = true
	}
	return m
}()

// scopeParams are Waldur's filters by customer or project: refused (400)
// until groups exist.
var scopeParams = map[string]bool{"customer_uuid": true, "project_uuid": true, "organization_roles": true, "project_roles": true}

// parseListQuery reads the list's query string; anything it does not know
// or cannot read is a 400 naming the parameters.
func parseListQuery(v url.Values) (users.ListQuery, error) {
	q := users.ListQuery{Page: 1, PageSize: users.DefaultPageSize}
	var unknown, scoped []string
	for k := range v {
		if scopeParams[k] {
			scoped = append(scoped, k)
		} else if !listParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(scoped) > 0 && len(unknown) == 0 {
		slices.Sort(scoped)
		fields := map[string][]string{}
		for _, k := range scoped {
			fields[k] = []string{"Filtering by customer or project is not available until groups exist."}
		}
		e := httpapi.Invalid(fields)
		e.Message = "Filtering by customer or project is not available yet: " + strings.Join(scoped, ", ") + "."
		return q, e
	}
	unknown = append(unknown, scoped...)
	if len(unknown) > 0 {
		slices.Sort(unknown)
		fields := map[string][]string{}
		for _, k := range unknown {
			fields[k] = []string{"Unknown query parameter."}
		}
		e := httpapi.Invalid(fields)
		e.Message = "Unknown query parameter(s): " + strings.Join(unknown, ", ") + "."
		return q, e
	}
	// The last value of a repeated parameter counts, as in Django.
	last := func(k string) string {
		vs := v[k]
		if len(vs) == 0 {
			return ""
		}
		return strings.TrimSpace(vs[len(vs)-1])
	}
	p := map[string][]string{}
	q.Email = last("email")
	q.Username = last("username")
	for _, n := range strings.Split(last("username_list"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			q.UsernameList = append(q.UsernameList, n)
		}
	}
	// These filters become keys: bound them as the fields they match are.
	if len(q.Email) > users.MaxEmail {
		p["email"] = append(p["email"], "Ensure this filter has no more than 254 characters.")
	}
	if len(q.Username) > users.MaxUsername {
		p["username"] = append(p["username"], "Ensure this filter has no more than 128 characters.")
	}
	for _, n := range q.UsernameList {
		if len(n) > users.MaxUsername {
			p["username_list"] = []string{"Ensure each username has no more than 128 characters."}
		}
	}
	if len(q.UsernameList) > maxUsernameList {
		p["username_list"] = append(p["username_list"], fmt.Sprintf("Ask for at most %d usernames at once.", maxUsernameList))
	}
	for _, f := range users.ContainsFilters {
		if s := last(f); s != "" {
			if q.Contains == nil {
				q.Contains = map[string]string{}
			}
			q.Contains[f] = s
		}
	}
	for _, f := range users.WordFilters {
		if s := last(f); s != "" {
			if q.Words == nil {
				q.Words = map[string]string{}
			}
			q.Words[f] = s
		}
	}
	for _, f := range users.ExactFilters {
		if s := last(f); s != "" {
			if q.Exact == nil {
				q.Exact = map[string]string{}
			}
			q.Exact[f] = s
		}
	}
	q.Search = last("query")
	q.Keyword = last("user_keyword")
	for _, b := range []struct {
		name string
		dst  **bool
	}{{"is_active", &q.IsActive}, {"is_staff", &q.IsStaff}, {"is_support", &q.IsSupport}} {
		s := last(b.name)
		if s == "" {
			continue
		}
		val, ok := parseBool(s)
		if !ok {
			p[b.name] = append(p[b.name], "Enter true or false.")
			continue
		}
		*b.dst = &val
	}
	for _, d := range []struct {
		name string
		dst  **time.Time
	}{{"date_joined", &q.JoinedSince}, {"modified", &q.ModifiedSince}, {"agreement_date", &q.AgreedSince}} {
		s := last(d.name)
		if s == "" {
			continue
		}
		t, ok := parseSince(s)
		if !ok {
			p[d.name] = append(p[d.name], "Enter a date (YYYY-MM-DD) or an RFC 3339 time.")
			continue
		}
		*d.dst = &t
	}
	if s := last("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPage {
			p["page"] = append(p["page"], fmt.Sprintf("Enter a whole number from 1 to %d.", maxPage))
		} else {
			q.Page = n
		}
	}
	if s := last("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > users.MaxPageSize {
			p["page_size"] = append(p["page_size"], fmt.Sprintf("Enter a whole number from 1 to %d.", users.MaxPageSize))
		} else {
			q.PageSize = n
		}
	}
	order, err := users.ParseOrder(v["o"])
	if err != nil {
		e, _ := httpapi.AsError(err)
		for k, msgs := range e.Fields {
			p[k] = append(p[k], msgs...)
		}
	}
	q.Order = order
	if len(p) > 0 {
		return q, httpapi.Invalid(p)
	}
	return q, nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// parseSince reads a date_joined or modified bound: a date (midnight UTC)
// or an RFC 3339 time (a "+" offset that arrived unescaped, as a space, is
// put back).
func parseSince(s string) (time.Time, bool) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true
	}
	for _, c := range []string{s, strings.Replace(s, " ", "+", 1)} {
		if t, err := time.Parse(time.RFC3339, c); err == nil {
			return t.UTC(), true
		}
	}
	if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// Bounds on list parameters: page keeps page*page_size far from overflow
// (no list has a billion users), username_list bounds the keys it reads.
const (
	maxPage         = 1_000_000
	maxUsernameList = 1000
)

// pageLinks is the Link header of a page: absolute URLs of the first,
// previous, next and last pages, keeping the other query parameters.
func pageLinks(self string, query url.Values, page, size, total int) string {
	last := max(1, (total+size-1)/size)
	link := func(n int, rel string) string {
		q := url.Values{}
		for k, vs := range query {
			q[k] = vs
		}
		q.Set("page", strconv.Itoa(n))
		return "<" + self + "?" + q.Encode() + `>; rel="` + rel + `"`
	}
	links := []string{link(1, "first")}
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(last, "last"))
	return strings.Join(links, ", ")
}
