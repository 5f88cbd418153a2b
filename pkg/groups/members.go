package groups

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/users"
)

// MembersPage is one page of a scope's members.
type MembersPage struct {
	Members []Member
	Count   int
}

// ListUsers returns a page of scope kind/id's active grants (staff,
// support, members of the scope, and for a group the owners and admins of
// its application), with role keeping only those roles when set, for the
// caller authorization authenticates. Two requests whatever the scope's
// size (the Query reads one more per MB of grants, about 7,000 of them):
// the Query of the scope's grants first, then the authentication reading
// the page's users (and, for a group the caller is not in, the caller's
// grant on its application) in its own request (users.AuthenticateAlong).
// Authorisation is decided after, from what was read: a caller who may
// not read the scope gets the 404 of an unknown one and nothing else.
func (s *Service) ListUsers(ctx context.Context, authorization, kind, id string, roles []string, page, size int) (*MembersPage, error) {
	claimant, err := s.users.Claimant(authorization)
	if err != nil {
		return nil, err // no credential: no request
	}
	sid, ok := parseID(id)
	if !ok {
		if _, err := s.users.Authenticate(ctx, authorization); err != nil {
			return nil, err
		}
		return nil, httpapi.NotFound("")
	}
	items, err := s.partition(ctx, sid, scopeSK, memberPrefix+"\uffff")
	if err != nil {
		return nil, err
	}
	var it *scopeItem
	if len(items) > 0 && strings.HasPrefix(stringAttr(items[0], "sk"), scopeSK) {
		if it, err = unmarshalScope(items[0]); err != nil {
			return nil, err
		}
	}
	var grants []*grantItem
	if it != nil && it.Kind == kind {
		if grants, err = grantsIn(items, it.Kind, it.Application); err != nil {
			return nil, err
		}
	}
	now := s.now()
	var kept []*grantItem
	for _, g := range grants {
		if g.active(now) && (len(roles) == 0 || contains(roles, g.Role)) {
			kept = append(kept, g)
		}
	}
	res := &MembersPage{Count: len(kept), Members: []Member{}}
	off := (page - 1) * size
	kept = kept[min(off, len(kept)):min(off+size, len(kept))]
	ids := make([]string, len(kept))
	for i, g := range kept {
		ids[i] = g.User
	}
	var along []map[string]types.AttributeValue
	if it != nil && it.Kind == KindGroup && claimant != "" && !memberOf(grants, claimant, now) {
		// Perhaps an owner or admin of the application: read in the same request.
		along = append(along, memberKey(it.Application, claimant))
	}
	p, us, others, err := s.users.AuthenticateAlong(ctx, authorization, ids, along)
	if err != nil {
		return nil, err
	}
	if it == nil || it.Kind != kind {
		return nil, httpapi.NotFound("")
	}
	if ok, err := s.mayList(ctx, p.User, it, grants, others, len(along) > 0); err != nil {
		return nil, err
	} else if !ok {
		return nil, httpapi.NotFound("")
	}
	byID := map[string]*users.User{}
	for _, u := range us {
		byID[u.UUID] = u
	}
	for _, g := range kept {
		res.Members = append(res.Members, s.member(g, byID[g.User]))
	}
	return res, nil
}

// memberOf reports whether user holds an active grant among grants.
func memberOf(grants []*grantItem, user string, now time.Time) bool {
	for _, g := range grants {
		if g.User == user && g.active(now) {
			return true
		}
	}
	return false
}

// mayList reports whether caller may read scope it's members: staff,
// support, a member, and for a group an owner or admin of its application
// (their grant read among others when asked, or else, for Basic, whose
// user was not known before, one GetItem).
func (s *Service) mayList(ctx context.Context, caller *users.User, it *scopeItem, grants []*grantItem, others []map[string]types.AttributeValue, asked bool) (bool, error) {
	now := s.now()
	if caller.IsStaff || caller.IsSupport || memberOf(grants, caller.UUID, now) {
		return true, nil
	}
	if it.Kind != KindGroup {
		return false, nil
	}
	want := memberKey(it.Application, caller.UUID)
	var g *grantItem
	for _, item := range others {
		if table.String(item, "pk") == table.String(want, "pk") && table.String(item, "sk") == table.String(want, "sk") {
			var err error
			if g, err = unmarshalGrant(item); err != nil {
				return false, err
			}
		}
	}
	if !asked {
		var err error
		if g, err = s.currentGrant(ctx, it.Application, caller.UUID); err != nil {
			return false, err
		}
	}
	return g != nil && g.active(now) && manages(g.Role), nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// ParseRoles reads a comma-separated list of role names; an unknown name
// is a 400 under field.
func ParseRoles(field, s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if _, ok := RoleByName(r); !ok {
			return nil, httpapi.Invalid(map[string][]string{field: {"Unknown role: " + r + " (owner, admin or member)."}})
		}
		out = append(out, r)
	}
	return out, nil
}

// MemberQuery is GET /api/users's scope filter: customer_uuid (grants on
// the application or its groups), project_uuid (grants on the group),
// organization_roles (roles on the application) and project_roles (roles
// on groups).
type MemberQuery struct {
	CustomerUUID, ProjectUUID       string
	OrganizationRoles, ProjectRoles []string
}

// Members returns the uuids of the users q selects, in uuid order, for
// caller: staff and support any scope; anyone else only a scope they are
// a member of (else the answer is empty). One Query of the scope's
// partition (one more per MB of grants).
func (s *Service) Members(ctx context.Context, caller *users.User, q MemberQuery) ([]string, error) {
	grants, app, err := s.scopeGrants(ctx, q)
	if err != nil {
		return nil, err
	}
	sees, within := s.reach(caller, grants, q)
	if !sees {
		if app == "" {
			return []string{}, nil
		}
		// A group's application's owners and admins manage its grants, and
		// read its members (as list_users): one GetItem more.
		if ok, err := s.mayList(ctx, caller, &scopeItem{Kind: KindGroup, Application: app}, grants, nil, false); err != nil || !ok {
			return []string{}, err
		}
	}
	return s.selected(grants, q, within), nil
}

// scopeGrants reads the grants of q's scope and, for a group, the id of
// its application: one Query of its partition (one more per MB of
// grants); none for an id that is no scope's.
func (s *Service) scopeGrants(ctx context.Context, q MemberQuery) ([]*grantItem, string, error) {
	var scope string
	switch {
	case q.ProjectUUID != "":
		scope = q.ProjectUUID
	case q.CustomerUUID != "":
		scope = q.CustomerUUID
	}
	id, ok := parseID(scope)
	if !ok {
		return nil, "", nil
	}
	lo, hi := memberPrefix, memberPrefix+"\uffff"
	if q.ProjectUUID == "" {
		hi = mirrorPrefix + "\uffff" // the application's own grants and its groups' mirrors
	} else {
		lo = scopeSK // the group's item first: its application
	}
	items, err := s.partition(ctx, id, lo, hi)
	if err != nil {
		return nil, "", err
	}
	kind, app := KindApplication, ""
	if q.ProjectUUID != "" {
		kind = KindGroup
		if len(items) > 0 && table.String(items[0], "sk") == scopeSK {
			it, err := unmarshalScope(items[0])
			if err != nil {
				return nil, "", err
			}
			if it.Kind != KindGroup {
				return nil, "", nil // an application's id given as project_uuid
			}
			app = it.Application
		}
	}
	grants, err := grantsIn(items, kind, "")
	return grants, app, err
}

// reach reports whether caller may see the members of q's scope, whose
// grants are grants: staff and support, and its members. In an
// application's partition, a caller holding grants only on some of its
// groups (their mirrors) is a member of those groups, not of the
// application: within names them, and they see those groups' members
// only. within is nil when the whole scope is seen.
func (s *Service) reach(caller *users.User, grants []*grantItem, q MemberQuery) (bool, map[string]bool) {
	if caller.IsStaff || caller.IsSupport {
		return true, nil
	}
	now := s.now()
	var within map[string]bool
	for _, g := range grants {
		if !g.active(now) || g.User != caller.UUID {
			continue
		}
		if q.ProjectUUID != "" || g.ScopeType == KindApplication {
			return true, nil
		}
		if within == nil {
			within = map[string]bool{}
		}
		within[g.ScopeID] = true
	}
	return within != nil, within
}

// selected returns the users of grants that q selects, in uuid order;
// within, when set, keeps the grants on those groups only.
func (s *Service) selected(grants []*grantItem, q MemberQuery, within map[string]bool) []string {
	now := s.now()
	hits := map[string]bool{}
	for _, g := range grants {
		if !g.active(now) {
			continue
		}
		if within != nil && (g.ScopeType != KindGroup || !within[g.ScopeID]) {
			continue
		}
		if q.ProjectUUID != "" && q.CustomerUUID != "" && g.Application != "" && g.Application != q.CustomerUUID {
			continue
		}
		switch g.ScopeType {
		case KindApplication:
			if len(q.ProjectRoles) > 0 || (len(q.OrganizationRoles) > 0 && !contains(q.OrganizationRoles, g.Role)) {
				continue
			}
		case KindGroup:
			if len(q.OrganizationRoles) > 0 || (len(q.ProjectRoles) > 0 && !contains(q.ProjectRoles, g.Role)) {
				continue
			}
		}
		hits[g.User] = true
	}
	out := []string{}
	for u := range hits {
		out = append(out, u)
	}
	slicesSort(out)
	return out
}

// MemberPage is a page of GET /api/users filtered by scope for the caller
// authorization authenticates: the users q selects (Members), in uuid
// order, with their permissions. Two requests: the Query of the scope
// first, then the authentication reading the page's users and their
// grants in its own request (users.AuthenticateAlong; up to 49 users, more
// take a BatchGetItem per 50). Whether
// the caller may see the scope is decided after, from the Query: one who
// may not gets an empty page and nothing of what was read.
func (s *Service) MemberPage(ctx context.Context, authorization string, q MemberQuery, page, size int) ([]*users.User, map[string][]Permission, int, error) {
	claimant, err := s.users.Claimant(authorization)
	if err != nil {
		return nil, nil, 0, err // no credential: no request
	}
	grants, app, err := s.scopeGrants(ctx, q)
	if err != nil {
		return nil, nil, 0, err
	}
	ids := s.selected(grants, q, nil)
	off := (page - 1) * size
	pageIDs := ids[min(off, len(ids)):min(off+size, len(ids))]
	// A claimant holding grants only on some of an application's groups
	// sees those groups' members (reach), unless staff or support, which
	// only the authentication tells: both pages are read beside it.
	var narrowIDs, narrowPage []string
	if _, within := s.reach(&users.User{UUID: claimant}, grants, q); claimant != "" && within != nil {
		narrowIDs = s.selected(grants, q, within)
		narrowPage = narrowIDs[min(off, len(narrowIDs)):min(off+size, len(narrowIDs))]
	}
	readIDs := union(pageIDs, narrowPage)
	keys := make([]map[string]types.AttributeValue, len(readIDs), len(readIDs)+1)
	for i, id := range readIDs {
		keys[i] = grantsKey(id)
	}
	// A group's application's owners and admins read its members (as
	// list_users): the caller's grant on the application rides along.
	asked := app != "" && claimant != "" && !memberOf(grants, claimant, s.now())
	if asked {
		keys = append(keys, memberKey(app, claimant))
	}
	p, us, items, err := s.users.AuthenticateAlong(ctx, authorization, readIDs, keys)
	if err != nil {
		return nil, nil, 0, err
	}
	sees, within := s.reach(p.User, grants, q)
	if !sees {
		if app == "" {
			return nil, nil, 0, nil
		}
		ok, err := s.mayList(ctx, p.User, &scopeItem{Kind: KindGroup, Application: app}, grants, items, asked && claimant == p.User.UUID)
		if err != nil || !ok {
			return nil, nil, 0, err
		}
	}
	switch {
	case within != nil && narrowIDs != nil && claimant == p.User.UUID:
		// A member of only some of the application's groups: their page,
		// read beside the authentication.
		ids, pageIDs = narrowIDs, narrowPage
	case within != nil:
		// Basic credentials (no claimant): their page is read now, with
		// one more BatchGetItem.
		ids = s.selected(grants, q, within)
		pageIDs = ids[min(off, len(ids)):min(off+size, len(ids))]
		keys = keys[:0]
		for _, id := range pageIDs {
			keys = append(keys, grantsKey(id))
		}
		us, items = nil, nil
		if len(pageIDs) > 0 {
			if us, items, err = s.users.GetManyAlong(ctx, pageIDs, keys); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	us = inOrder(us, pageIDs)
	if len(pageIDs) == 0 {
		return nil, nil, len(ids), nil
	}
	byUser := map[string]map[string]*userGrant{}
	for _, item := range items {
		if table.String(item, "sk") != grantsSK {
			continue // the caller's application grant
		}
		g, err := userGrants(item)
		if err != nil {
			return nil, nil, 0, err
		}
		byUser[strings.TrimPrefix(table.String(item, "pk"), grantsPrefix)] = g
	}
	perms := map[string][]Permission{}
	for _, u := range us {
		ps := s.permissions(u.UUID, byUser[u.UUID])
		fill(ps, u)
		perms[u.UUID] = ps
	}
	return us, perms, len(ids), nil
}

// union returns a's ids then those of b not in a.
func union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := append([]string{}, a...)
	seen := map[string]bool{}
	for _, id := range a {
		seen[id] = true
	}
	for _, id := range b {
		if !seen[id] {
			out = append(out, id)
		}
	}
	return out
}

// inOrder returns the users of us whose ids are ids, in that order (the
// absent left out).
func inOrder(us []*users.User, ids []string) []*users.User {
	byID := make(map[string]*users.User, len(us))
	for _, u := range us {
		byID[u.UUID] = u
	}
	out := make([]*users.User, 0, len(ids))
	for _, id := range ids {
		if u := byID[id]; u != nil {
			out = append(out, u)
		}
	}
	return out
}
