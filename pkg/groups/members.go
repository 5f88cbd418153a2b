package groups

import (
	"context"
	"strings"

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
// its application), with role keeping only those roles when set: one
// Query of the scope's grants and one BatchGetItem of the page's users,
// whatever the scope's size (the Query reads one more request per MB of
// grants, about 8,000 of them).
func (s *Service) ListUsers(ctx context.Context, caller *users.User, kind, id string, roles []string, page, size int) (*MembersPage, error) {
	sid, ok := parseID(id)
	if !ok {
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
	if it == nil || it.Kind != kind {
		return nil, httpapi.NotFound("")
	}
	grants, err := grantsIn(items, it.Kind, it.Application)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !caller.IsStaff && !caller.IsSupport {
		member := false
		for _, g := range grants {
			if g.User == caller.UUID && g.active(now) {
				member = true
			}
		}
		if !member && it.Kind == KindGroup {
			// An owner or admin of the application: one GetItem more.
			g, err := s.currentGrant(ctx, it.Application, caller.UUID)
			if err != nil {
				return nil, err
			}
			member = g != nil && g.active(now) && manages(g.Role)
		}
		if !member {
			return nil, httpapi.NotFound("")
		}
	}
	var kept []*grantItem
	for _, g := range grants {
		if g.active(now) && (len(roles) == 0 || contains(roles, g.Role)) {
			kept = append(kept, g)
		}
	}
	res := &MembersPage{Count: len(kept), Members: []Member{}}
	off := (page - 1) * size
	if off >= len(kept) {
		return res, nil
	}
	kept = kept[off:min(off+size, len(kept))]
	ids := make([]string, len(kept))
	for i, g := range kept {
		ids[i] = g.User
	}
	us, err := s.users.GetMany(ctx, ids)
	if err != nil {
		return nil, err
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
// a member of (else the answer is empty), and of an application whose
// groups alone they are in, the members of those groups. One Query of the
// scope's partition (one more per MB of grants).
func (s *Service) Members(ctx context.Context, caller *users.User, q MemberQuery) ([]string, error) {
	var scope string
	switch {
	case q.ProjectUUID != "":
		scope = q.ProjectUUID
	case q.CustomerUUID != "":
		scope = q.CustomerUUID
	}
	id, ok := parseID(scope)
	if !ok {
		return []string{}, nil
	}
	hi := memberPrefix + "\uffff"
	if q.ProjectUUID == "" {
		hi = mirrorPrefix + "\uffff" // the application's own grants and its groups' mirrors
	}
	items, err := s.partition(ctx, id, memberPrefix, hi)
	if err != nil {
		return nil, err
	}
	kind := KindApplication
	if q.ProjectUUID != "" {
		kind = KindGroup
	}
	grants, err := grantsIn(items, kind, "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	visible := caller.IsStaff || caller.IsSupport
	// In an application's partition, a caller holding a grant only on some
	// of its groups sees those groups' members, not the application's
	// (as list_users of the application refuses them).
	var within map[string]bool
	for _, g := range grants {
		if !g.active(now) || g.User != caller.UUID {
			continue
		}
		if q.ProjectUUID != "" || g.ScopeType == KindApplication {
			visible = true
		} else if !visible {
			if within == nil {
				within = map[string]bool{}
			}
			within[g.ScopeID] = true
		}
	}
	if visible {
		within = nil
	}
	visible = visible || within != nil
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
	if !visible {
		return out, nil
	}
	for u := range hits {
		out = append(out, u)
	}
	slicesSort(out)
	return out, nil
}

// MemberPage is a page of GET /api/users filtered by scope: the users q
// selects (Members), in uuid order, with their permissions. One Query of
// the scope and one BatchGetItem of the page's users and their grants (up
// to 50 users a request).
func (s *Service) MemberPage(ctx context.Context, caller *users.User, q MemberQuery, page, size int) ([]*users.User, map[string][]Permission, int, error) {
	ids, err := s.Members(ctx, caller, q)
	if err != nil {
		return nil, nil, 0, err
	}
	off := (page - 1) * size
	if off >= len(ids) {
		return nil, nil, len(ids), nil
	}
	pageIDs := ids[off:min(off+size, len(ids))]
	keys := make([]map[string]types.AttributeValue, len(pageIDs))
	for i, id := range pageIDs {
		keys[i] = grantsKey(id)
	}
	us, items, err := s.users.GetManyAlong(ctx, pageIDs, keys)
	if err != nil {
		return nil, nil, 0, err
	}
	byUser := map[string]map[string]*userGrant{}
	for _, item := range items {
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
