package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/users"
)

// Permission is a role grant in Waldur's Permission shape (every field of
// its schema).
type Permission struct {
	UserUUID          string  `json:"user_uuid"`
	UserName          string  `json:"user_name"`
	UserSlug          string  `json:"user_slug"`
	Created           string  `json:"created"`
	ExpirationTime    *string `json:"expiration_time"`
	CreatedByFullName string  `json:"created_by_full_name"`
	CreatedByUsername string  `json:"created_by_username"`
	RoleName          string  `json:"role_name"`
	RoleDescription   string  `json:"role_description"`
	RoleUUID          string  `json:"role_uuid"`
	ScopeType         string  `json:"scope_type"`
	ScopeUUID         string  `json:"scope_uuid"`
	ScopeName         string  `json:"scope_name"`
	CustomerUUID      string  `json:"customer_uuid"`
	CustomerName      string  `json:"customer_name"`
}

// permissions renders a user's active grants, applications first, then by
// scope name and id.
func (s *Service) permissions(user string, grants map[string]*userGrant) []Permission {
	now := s.now()
	out := []Permission{}
	for id, g := range grants {
		if !g.active(now) {
			continue // an expired grant stops counting at once; TTL removes it later
		}
		r, _ := RoleByName(g.Role)
		p := Permission{UserUUID: user, Created: timeFormat(g.Created),
			CreatedByFullName: g.CreatedByFullName, CreatedByUsername: g.CreatedByUsername,
			RoleName: r.Name, RoleDescription: r.Description, RoleUUID: r.UUID,
			ScopeType: g.ScopeType, ScopeUUID: id, ScopeName: g.ScopeName,
			CustomerUUID: g.CustomerUUID, CustomerName: g.CustomerName}
		if g.Expires != nil {
			e := timeFormat(*g.Expires)
			p.ExpirationTime = &e
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Permission) int {
		if a.ScopeType != b.ScopeType {
			return strings.Compare(a.ScopeType, b.ScopeType) // application < group
		}
		if c := strings.Compare(a.ScopeName, b.ScopeName); c != 0 {
			return c
		}
		return strings.Compare(a.ScopeUUID, b.ScopeUUID)
	})
	return out
}

// PermissionsOf returns user's active grants (one GetItem). user_name and
// user_slug are left empty: PermissionsFor fills them from the user.
func (s *Service) PermissionsOf(ctx context.Context, userUUID string) ([]Permission, error) {
	g, err := s.grantsOf(ctx, userUUID)
	if err != nil {
		return nil, err
	}
	return s.permissions(userUUID, g), nil
}

// PermissionsFor is PermissionsOf with user_name (the full name, else the
// username) and user_slug filled from u.
func (s *Service) PermissionsFor(ctx context.Context, u *users.User) ([]Permission, error) {
	ps, err := s.PermissionsOf(ctx, u.UUID)
	if err != nil {
		return nil, err
	}
	fill(ps, u)
	return ps, nil
}

func fill(ps []Permission, u *users.User) {
	name := u.FullName()
	if strings.TrimSpace(name) == "" {
		name = u.Username
	}
	for i := range ps {
		ps[i].UserName, ps[i].UserSlug = name, u.SlugOrDefault()
	}
}

// PermissionsOfMany returns the permissions of each of us by uuid (one
// BatchGetItem per 100 users), for a page of a list.
func (s *Service) PermissionsOfMany(ctx context.Context, us []*users.User) (map[string][]Permission, error) {
	out := map[string][]Permission{}
	if len(us) == 0 {
		return out, nil
	}
	keys := make([]map[string]types.AttributeValue, 0, len(us))
	for _, u := range us {
		keys = append(keys, grantsKey(u.UUID))
	}
	items, err := table.BatchGet(ctx, s.db, s.table, keys, false)
	if err != nil {
		return nil, err
	}
	byUser := map[string]map[string]*userGrant{}
	for _, item := range items {
		g, err := userGrants(item)
		if err != nil {
			return nil, err
		}
		byUser[strings.TrimPrefix(table.String(item, "pk"), grantsPrefix)] = g
	}
	for _, u := range us {
		ps := s.permissions(u.UUID, byUser[u.UUID])
		fill(ps, u)
		out[u.UUID] = ps
	}
	return out, nil
}

// Scopes reads applications and groups by id in one BatchGetItem (for
// up to 100 ids); an id that is not a uuid, or names no scope of its
// kind, is a 400 naming it (fields applications / groups).
func (s *Service) Scopes(ctx context.Context, appIDs, groupIDs []string) ([]Application, []Group, error) {
	p := map[string][]string{}
	norm := func(field string, ids []string) []string {
		var out []string
		for _, raw := range ids {
			id, ok := parseID(raw)
			if !ok {
				p[field] = append(p[field], "Unknown id: "+raw+".")
				continue
			}
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out
	}
	apps, grps := norm("applications", appIDs), norm("groups", groupIDs)
	if len(p) > 0 {
		return nil, nil, httpapi.Invalid(p)
	}
	its, err := s.scopeItems(ctx, append(slices.Clone(apps), grps...))
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]*scopeItem{}
	for _, it := range its {
		byID[it.ID] = it
	}
	var (
		outA []Application
		outG []Group
	)
	for _, id := range apps {
		if it := byID[id]; it != nil && it.Kind == KindApplication {
			outA = append(outA, s.view(ctx, it).(Application))
		} else {
			p["applications"] = append(p["applications"], "Unknown application: "+id+".")
		}
	}
	for _, id := range grps {
		if it := byID[id]; it != nil && it.Kind == KindGroup {
			outG = append(outG, s.view(ctx, it).(Group))
		} else {
			p["groups"] = append(p["groups"], "Unknown group: "+id+".")
		}
	}
	if len(p) > 0 {
		return nil, nil, httpapi.Invalid(p)
	}
	// The groups' applications' names, for the grants' customer_name: one
	// BatchGetItem more for those not named too.
	var more []string
	for _, g := range outG {
		if byID[g.Application] == nil && !slices.Contains(more, g.Application) {
			more = append(more, g.Application)
		}
	}
	if len(more) > 0 {
		its, err := s.scopeItems(ctx, more)
		if err != nil {
			return nil, nil, err
		}
		for _, it := range its {
			byID[it.ID] = it
		}
	}
	for i := range outG {
		if a := byID[outG[i].Application]; a != nil && a.Kind == KindApplication {
			outG[i].appName = a.Name
		}
	}
	return outA, outG, nil
}

// CanAssign reports whether caller may grant roles on every one of apps
// and groups: staff may; anyone else must be an owner or admin of each
// application, and of each group or its application (one GetItem of the
// caller's grants). A scope they may not manage is a 400 naming it.
// Unlike the signature first announced, it takes ctx: it reads.
func (s *Service) CanAssign(ctx context.Context, caller *users.Principal, apps []Application, groups []Group) error {
	if caller == nil || caller.User == nil {
		return httpapi.Unauthorized("Authentication credentials were not provided.")
	}
	if caller.User.IsStaff {
		return nil
	}
	perms, err := s.grantsOf(ctx, caller.User.UUID)
	if err != nil {
		return err
	}
	now := s.now()
	may := func(id string) bool {
		g := perms[id]
		return g != nil && g.active(now) && manages(g.Role) && !caller.User.IsSupport // support change nothing
	}
	p := map[string][]string{}
	for _, a := range apps {
		if !may(a.ID) {
			p["applications"] = append(p["applications"], "You may not add users to application "+a.ID+".")
		}
	}
	for _, g := range groups {
		if !may(g.ID) && !may(g.Application) {
			p["groups"] = append(p["groups"], "You may not add users to group "+g.ID+".")
		}
	}
	if len(p) > 0 {
		return httpapi.Invalid(p)
	}
	return nil
}

// grantOn is what a new grant on a scope records.
type grantOn struct {
	kind, id, name, app, appName string
}

// creator is who made a grant.
type creator struct {
	uuid, username, fullName string
}

func creatorOf(u *users.User) creator {
	if u == nil {
		return creator{}
	}
	return creator{u.UUID, u.Username, u.FullName()}
}

// grantItems are the items of user's grant of role on sc: the scope-side
// grant (conditional on there being none), for a group its mirror in the
// application, the scope's existence, and the user-side attribute name
// and value (which the caller adds to the user-side update).
func (s *Service) grantItems(user string, sc grantOn, role string, expires *time.Time, by creator, now time.Time) ([]types.TransactWriteItem, types.AttributeValue, error) {
	g := grantItem{User: user, Role: role, ScopeType: sc.kind, ScopeID: sc.id, Application: sc.app, Created: now, CreatedBy: by.uuid, Expires: expires}
	if expires != nil {
		g.TTL = expires.Unix()
	}
	m, err := marshal(g, memberKey(sc.id, user))
	if err != nil {
		return nil, nil, err
	}
	items := []types.TransactWriteItem{s.put(m, "attribute_not_exists(pk)")}
	items = append(items, s.openCheck(sc.id, now))
	if sc.kind == KindGroup {
		n, err := marshal(g, mirrorKey(sc.app, user, sc.id))
		if err != nil {
			return nil, nil, err
		}
		items = append(items, s.put(n, ""))
	}
	ug := userGrant{Role: role, ScopeType: sc.kind, ScopeName: sc.name, CustomerUUID: sc.app, CustomerName: sc.appName,
		Created: now, CreatedBy: by.uuid, CreatedByUsername: by.username, CreatedByFullName: by.fullName, Expires: expires}
	av, err := attributevalue.Marshal(ug)
	if err != nil {
		return nil, nil, httpapi.Internal(err)
	}
	return items, av, nil
}

// userSideAdd is the update of user's item that adds grants (attribute
// name -> value), conditional on none of them being there and the count
// staying within MaxGrantsPerUser.
func (s *Service) userSideAdd(user string, attrs map[string]types.AttributeValue) types.TransactWriteItem {
	names := map[string]string{"#n": "n"}
	vals := map[string]types.AttributeValue{":k": table.N(int64(len(attrs))), ":left": table.N(int64(MaxGrantsPerUser - len(attrs)))}
	var sets, conds []string
	i := 0
	for name, v := range attrs {
		nk, vk := fmt.Sprintf("#g%d", i), fmt.Sprintf(":g%d", i)
		names[nk], vals[vk] = name, v
		sets = append(sets, nk+" = "+vk)
		conds = append(conds, "attribute_not_exists("+nk+")")
		i++
	}
	slices.Sort(sets)
	slices.Sort(conds)
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.table), Key: grantsKey(user),
		UpdateExpression:         aws.String("SET " + strings.Join(sets, ", ") + " ADD #n :k"),
		ConditionExpression:      aws.String("(attribute_not_exists(#n) OR #n <= :left) AND " + strings.Join(conds, " AND ")),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals}}
}

// JoinItems are the transaction items that give user role on each of
// apps and groups, recorded as created by createdBy (a user uuid; the
// creator's names stay empty: JoinItemsBy records them), for another
// package's transaction (eContext's POST /api/users/user): per
// application 2 items, per group 3, and 1 for the user's side. The
// transaction fails (a failed condition) when a scope is gone, the user
// already holds a grant on one, or the user would pass MaxGrantsPerUser.
// It does not check that the user exists: the caller's own transaction
// writes or checks the user, and must set users.User.HasGrants on it when
// apps or groups are given (lists skip the permissions of users without).
func (s *Service) JoinItems(userUUID, createdBy string, apps []Application, groups []Group, role string) []types.TransactWriteItem {
	return s.JoinItemsBy(userUUID, &users.User{UUID: createdBy}, apps, groups, role)
}

// JoinItemsBy is JoinItems recording by's username and full name too.
func (s *Service) JoinItemsBy(userUUID string, by *users.User, apps []Application, groups []Group, role string) []types.TransactWriteItem {
	if _, ok := RoleByName(role); !ok {
		role = RoleMember
	}
	now := s.now()
	var scs []grantOn
	appNames := map[string]string{}
	for _, a := range apps {
		scs = append(scs, grantOn{KindApplication, a.ID, a.Name, a.ID, a.Name})
		appNames[a.ID] = a.Name
	}
	for _, g := range groups {
		name := g.appName
		if n, ok := appNames[g.Application]; ok {
			name = n
		}
		scs = append(scs, grantOn{KindGroup, g.ID, g.Name, g.Application, name})
	}
	var items []types.TransactWriteItem
	attrs := map[string]types.AttributeValue{}
	for _, sc := range scs {
		its, av, err := s.grantItems(userUUID, sc, role, nil, creatorOf(by), now)
		if err != nil {
			continue // marshalling plain structs does not fail
		}
		items = append(items, its...)
		attrs[grantAttr+sc.id] = av
	}
	if len(attrs) > 0 {
		items = append(items, s.userSideAdd(userUUID, attrs))
	}
	return items
}

// MemberInput is the body of add_user, update_user and delete_user.
type MemberInput struct {
	User           string  `json:"user"`
	Role           string  `json:"role"`
	ExpirationTime *string `json:"expiration_time"`
}

// Member is a grant as the membership routes answer it (Waldur's user
// role shape).
type Member struct {
	UUID            string  `json:"uuid"`
	UserUUID        string  `json:"user_uuid"`
	UserUsername    string  `json:"user_username"`
	UserFullName    string  `json:"user_full_name"`
	UserEmail       string  `json:"user_email"`
	UserImage       *string `json:"user_image"`
	RoleName        string  `json:"role_name"`
	RoleUUID        string  `json:"role_uuid"`
	RoleDescription string  `json:"role_description"`
	ScopeType       string  `json:"scope_type"`
	ScopeUUID       string  `json:"scope_uuid"`
	Created         string  `json:"created"`
	CreatedByUUID   *string `json:"created_by_uuid"`
	ExpirationTime  *string `json:"expiration_time"`
}

func (s *Service) member(g *grantItem, u *users.User) Member {
	r, _ := RoleByName(g.Role)
	m := Member{UUID: g.User, UserUUID: g.User, RoleName: r.Name, RoleUUID: r.UUID, RoleDescription: r.Description,
		ScopeType: g.ScopeType, ScopeUUID: g.ScopeID, Created: timeFormat(g.Created)}
	if u != nil {
		m.UserUsername, m.UserFullName, m.UserEmail = u.Username, u.FullName(), u.Email
		if u.Image != "" {
			m.UserImage = &u.Image
		}
	}
	if g.CreatedBy != "" {
		m.CreatedByUUID = &g.CreatedBy
	}
	if g.Expires != nil {
		e := timeFormat(*g.Expires)
		m.ExpirationTime = &e
	}
	return m
}

// parseMember checks in for an action: the user always, the role and
// expiry when needed.
func (s *Service) parseMember(in MemberInput, needRole bool) (string, *time.Time, error) {
	p := map[string][]string{}
	if _, ok := parseID(in.User); !ok {
		p["user"] = append(p["user"], "Enter the uuid of a user.")
	}
	if needRole {
		if _, ok := RoleByName(in.Role); !ok {
			p["role"] = append(p["role"], "Select owner, admin or member.")
		}
	}
	var exp *time.Time
	if in.ExpirationTime != nil && *in.ExpirationTime != "" {
		t, err := time.Parse(time.RFC3339, *in.ExpirationTime)
		switch {
		case err != nil:
			p["expiration_time"] = append(p["expiration_time"], "Enter an RFC 3339 time.")
		case !t.After(s.now()):
			p["expiration_time"] = append(p["expiration_time"], "Enter a time in the future.")
		case t.UTC().Year() > 9999:
			// Its own offset may write it in 9999; stored in UTC it would be
			// a year no RFC 3339 time has, and every read of the grant fail.
			p["expiration_time"] = append(p["expiration_time"], "Enter a time before the year 10000 (UTC).")
		default:
			t = t.UTC().Truncate(time.Second)
			exp = &t
		}
	}
	if len(p) > 0 {
		return "", nil, httpapi.Invalid(p)
	}
	id, _ := parseID(in.User)
	return id, exp, nil
}

// appName is the name of it's application (it's own for one).
func (s *Service) appName(ctx context.Context, it *scopeItem) (string, error) {
	if it.Kind == KindApplication {
		return it.Name, nil
	}
	a, err := s.getScope(ctx, KindApplication, it.Application)
	if errors.Is(err, ErrNotFound) {
		return "", httpapi.NotFound("")
	}
	if err != nil {
		return "", err
	}
	return a.Name, nil
}

func (it *scopeItem) on(appName string) grantOn {
	app := it.Application
	if it.Kind == KindApplication {
		app = it.ID
	}
	return grantOn{it.Kind, it.ID, it.Name, app, appName}
}

// AddUser grants in.Role on scope kind/id to in.User (owners and admins of
// the scope or, for a group, of its application; staff): one
// TransactWriteItems holding both grant items, the scope's existence, the
// user's existence and the user's grant count.
func (s *Service) AddUser(ctx context.Context, caller *users.User, kind, id string, in MemberInput) (*Member, error) {
	user, exp, err := s.parseMember(in, true)
	if err != nil {
		return nil, err
	}
	it, perms, target, err := s.loadWith(ctx, caller, kind, id, manageAccess, user)
	if err != nil {
		return nil, err
	}
	if target == nil {
		return nil, httpapi.Invalid(map[string][]string{"user": {"Unknown user: " + user + "."}})
	}
	if in.Role == RoleOwner && !s.owns(caller, it, perms) {
		return nil, errOwnersOnly
	}
	name, err := s.appName(ctx, it)
	if err != nil {
		return nil, err
	}
	now := s.now()
	items, av, err := s.grantItems(user, it.on(name), in.Role, exp, creatorOf(caller), now)
	if err != nil {
		return nil, err
	}
	items = append(items, s.userSideAdd(user, map[string]types.AttributeValue{grantAttr + it.ID: av}), s.users.MarkGrants(user))
	err = s.transact(ctx, items)
	if failed, ok := table.TxCanceled(err); ok && failed[0] {
		// An expired grant stops counting at once: it is replaced, not
		// waited for (TTL removes it days later).
		if old, gerr := s.currentGrant(ctx, it.ID, user); gerr == nil && old != nil && !old.active(now) {
			err = s.replaceExpired(ctx, items, old, user, it.ID, av)
		}
	}
	if failed, ok := table.TxCanceled(err); ok && !failed[0] && !failed[1] && failed[len(items)-2] {
		// At the limit: the user's expired grants stop counting at once
		// too, so they make room (expired.go).
		err = s.addDroppingExpired(ctx, items, user, it.ID, av)
	}
	if err != nil {
		failed, ok := table.TxCanceled(err)
		if !ok {
			return nil, table.Error(err)
		}
		failed = failed[:min(len(failed), len(items))] // add_user's own items
		switch {
		case failed[0]:
			return nil, httpapi.Invalid(map[string][]string{"user": {"This user already holds a role here; use update_user to change it."}})
		case failed[1]:
			return nil, httpapi.NotFound("")
		case failed[len(failed)-1]:
			return nil, httpapi.Invalid(map[string][]string{"user": {"Unknown user: " + user + "."}})
		default:
			return nil, httpapi.BadRequest(fmt.Sprintf("A user may hold at most %d role grants; this user has reached that limit.", MaxGrantsPerUser))
		}
	}
	g := &grantItem{User: user, Role: in.Role, ScopeType: it.Kind, ScopeID: it.ID, Created: now, CreatedBy: caller.UUID, Expires: exp}
	m := s.member(g, target)
	return &m, nil
}

// currentGrant reads user's scope-side grant on scope.
func (s *Service) currentGrant(ctx context.Context, scope, user string) (*grantItem, error) {
	item, err := s.getItem(ctx, memberKey(scope, user))
	if err != nil {
		return nil, err
	}
	if item == nil {
		return nil, nil
	}
	return unmarshalGrant(item)
}

// unmarshalGrant reads a scope-side grant item (its role and expiry).
func unmarshalGrant(item map[string]types.AttributeValue) (*grantItem, error) {
	var g grantItem
	if err := attributevalue.UnmarshalMap(item, &g); err != nil {
		return nil, httpapi.Internal(err)
	}
	return &g, nil
}

// UpdateUser changes in.User's role (when given) and expiry (as given:
// absent or null removes it) on scope kind/id, in one TransactWriteItems.
// The write holds the grant to the role it was read with; demoting the
// last owner of a scope others are in is a 409 (owners.go).
func (s *Service) UpdateUser(ctx context.Context, caller *users.User, kind, id string, in MemberInput) (*Member, error) {
	user, exp, err := s.parseMember(in, in.Role != "")
	if err != nil {
		return nil, err
	}
	it, perms, target, err := s.loadWith(ctx, caller, kind, id, manageAccess, user)
	if err != nil {
		return nil, err
	}
	owner := s.owns(caller, it, perms)
	for attempt := 0; ; attempt++ {
		g, err := s.currentGrant(ctx, it.ID, user)
		if err != nil {
			return nil, err
		}
		if g == nil {
			return nil, httpapi.Invalid(map[string][]string{"user": {"This user holds no role here."}})
		}
		if !owner && (g.Role == RoleOwner || in.Role == RoleOwner) {
			return nil, errOwnersOnly
		}
		was := g.Role
		if in.Role != "" {
			g.Role = in.Role
		}
		var guard *types.TransactWriteItem
		if was == RoleOwner && g.Role != RoleOwner && !caller.IsStaff {
			if guard, err = s.ownerGuard(ctx, it.ID, user); err != nil {
				return nil, err
			}
		}
		items, err := s.updateGrantItems(it, user, g, was, exp, owner)
		if err != nil {
			return nil, err
		}
		if guard != nil {
			items = append(items, *guard)
		}
		err = s.transact(ctx, items)
		if err == nil {
			g.User, g.ScopeType, g.ScopeID = user, it.Kind, it.ID
			out := s.member(g, target)
			return &out, nil
		}
		failed, ok := table.TxCanceled(err)
		switch {
		case !ok:
			return nil, table.Error(err)
		case failed[2]:
			return nil, httpapi.NotFound("") // the scope is gone, or being deleted
		case attempt == grantAttempts-1:
			return nil, httpapi.Unavailable(err)
		}
		// The grant changed since it was read, or the other owner's did:
		// read again and decide again.
	}
}

// grantAttempts bounds the tries of an update_user or delete_user whose
// grant (or the other owner's) changes under it.
const grantAttempts = 4

// updateGrantItems are update_user's items: the scope-side grant g as it
// becomes (conditional on its role still being was, and on its not being an
// owner's for a caller who does not own the scope), the user-side
// attribute, the scope's open check and a group's mirror.
func (s *Service) updateGrantItems(it *scopeItem, user string, g *grantItem, was string, exp *time.Time, owner bool) ([]types.TransactWriteItem, error) {
	g.Expires, g.TTL = exp, 0
	if exp != nil {
		g.TTL = exp.Unix()
	}
	m, err := marshal(g, memberKey(it.ID, user))
	if err != nil {
		return nil, err
	}
	upd := "SET #g.#role = :role"
	vals := map[string]types.AttributeValue{":role": table.S(g.Role)}
	if exp != nil {
		upd += ", #g.#exp = :exp"
		vals[":exp"] = table.S(exp.Format(time.RFC3339Nano))
		if av, err := attributevalue.Marshal(*exp); err == nil {
			vals[":exp"] = av
		}
	} else {
		upd += " REMOVE #g.#exp"
	}
	put := s.put(m, "attribute_exists(pk) AND #was = :was")
	put.Put.ExpressionAttributeNames = map[string]string{"#was": "r"}
	put.Put.ExpressionAttributeValues = map[string]types.AttributeValue{":was": table.S(was)}
	if !owner {
		notOwner(put.Put.ConditionExpression, &put.Put.ExpressionAttributeNames, &put.Put.ExpressionAttributeValues)
	}
	items := []types.TransactWriteItem{
		put,
		{Update: &types.Update{TableName: aws.String(s.table), Key: grantsKey(user), UpdateExpression: aws.String(upd),
			ConditionExpression:      aws.String("attribute_exists(#g)"),
			ExpressionAttributeNames: map[string]string{"#g": grantAttr + it.ID, "#role": "role", "#exp": "expiration_time"}, ExpressionAttributeValues: vals}},
		s.openCheck(it.ID, s.now()),
	}
	if it.Kind == KindGroup {
		n, err := marshal(g, mirrorKey(it.Application, user, it.ID))
		if err != nil {
			return nil, err
		}
		items = append(items, s.put(n, ""))
	}
	return items, nil
}

// DeleteUser ends in.User's grant on scope kind/id: managers remove
// anyone, and anyone may remove themselves (leave the scope). One
// TransactWriteItems, conditional on the grant not being an owner's; an
// owner's (which only owners and staff end) is read and, unless staff end
// it, ended only while another owner remains in a scope others are in
// (owners.go): a 409 otherwise.
func (s *Service) DeleteUser(ctx context.Context, caller *users.User, kind, id string, in MemberInput) error {
	user, _, err := s.parseMember(MemberInput{User: in.User}, false)
	if err != nil {
		return err
	}
	want := manageAccess
	if user == caller.UUID {
		want = noAccess // leaving needs no role beyond the one left
	}
	var (
		it    *scopeItem
		perms map[string]*userGrant
		// read is the grant's role as read with the scope (a caller who is
		// not staff: an owner's grant is ended under the owner guard from
		// the first transaction on).
		read *grantItem
	)
	if want == noAccess && !caller.IsStaff {
		sid, ok := parseID(id)
		if !ok {
			return httpapi.NotFound("")
		}
		if it, _, read, err = s.scopeAndGrantsWith(ctx, kind, sid, "", &user); err != nil {
			return notFound(err)
		}
	} else if it, perms, read, err = s.loadMember(ctx, caller, kind, id, want, &user); err != nil {
		return err
	}
	if caller.IsSupport && !caller.IsStaff && user != caller.UUID {
		return httpapi.Forbidden("")
	}
	app := it.Application
	if it.Kind == KindApplication {
		app = it.ID
	}
	owner := want == noAccess || s.owns(caller, it, perms) // leaving needs no ownership
	var (
		ownerGrant bool // the grant was read as an owner's
		guard      *types.TransactWriteItem
	)
	if read != nil && read.Role == RoleOwner && !caller.IsStaff {
		if !owner {
			return errOwnersOnly
		}
		ownerGrant = true
		if guard, err = s.ownerGuard(ctx, it.ID, user); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		items := s.removeGrantItems(user, it.Kind, it.ID, app, true)
		if !caller.IsStaff && !ownerGrant {
			// The common case, in one transaction: not an owner's grant.
			d := items[0].Delete
			notOwner(d.ConditionExpression, &d.ExpressionAttributeNames, &d.ExpressionAttributeValues)
		}
		if guard != nil {
			items = append(items, *guard)
		}
		err := s.transact(ctx, items)
		if err == nil {
			return nil
		}
		if _, ok := table.TxCanceled(err); !ok {
			return table.Error(err)
		}
		cur, cerr := s.currentGrant(ctx, it.ID, user)
		switch {
		case cerr != nil:
			return cerr
		case cur == nil && want == noAccess:
			return httpapi.NotFound("")
		case cur == nil:
			return httpapi.Invalid(map[string][]string{"user": {"This user holds no role here."}})
		case cur.Role == RoleOwner && !owner:
			return errOwnersOnly
		case attempt == grantAttempts-1:
			return httpapi.Unavailable(err)
		}
		ownerGrant, guard = cur.Role == RoleOwner, nil
		if ownerGrant && !caller.IsStaff {
			if guard, err = s.ownerGuard(ctx, it.ID, user); err != nil {
				return err
			}
		}
	}
}

func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return httpapi.NotFound("")
	}
	return err
}

// removeGrantItems are the items that end user's grant on a scope: the
// scope-side grant (conditional on existing when strict), the mirror, the
// user-side attribute and the count.
func (s *Service) removeGrantItems(user, kind, scope, app string, strict bool) []types.TransactWriteItem {
	cond := ""
	if strict {
		cond = "attribute_exists(pk)"
	}
	items := []types.TransactWriteItem{s.del(memberKey(scope, user), cond),
		{Update: &types.Update{TableName: aws.String(s.table), Key: grantsKey(user),
			UpdateExpression: aws.String("REMOVE #g ADD #n :minus"), ConditionExpression: aws.String("attribute_exists(#g)"),
			ExpressionAttributeNames:  map[string]string{"#g": grantAttr + scope, "#n": "n"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":minus": table.N(-1)}}}}
	if kind == KindGroup {
		items = append(items, s.del(mirrorKey(app, user, scope), ""))
	}
	return items
}

// errOwnersOnly refuses an admin what only owners (and staff) do: grant
// the owner role, or change or end an owner's grant.
var errOwnersOnly = httpapi.Forbidden("Only an owner of the scope (or of its application) or staff may grant, change or remove the owner role.")

// owns reports whether caller may hand out and take away ownership of it:
// staff, and holders of an active owner grant on it or, for a group, on
// its application.
func (s *Service) owns(caller *users.User, it *scopeItem, perms map[string]*userGrant) bool {
	if caller.IsStaff {
		return true
	}
	now := s.now()
	for _, id := range []string{it.ID, it.Application} {
		if g := perms[id]; id != "" && g != nil && g.active(now) && g.Role == RoleOwner {
			return true
		}
	}
	return false
}

// notOwner adds to a grant item's condition that it is not an owner's
// (an admin's change, refused if the grant became an owner's meanwhile).
func notOwner(cond *string, names *map[string]string, vals *map[string]types.AttributeValue) {
	*cond = "(" + *cond + ") AND #role <> :owner"
	if *names == nil {
		*names = map[string]string{}
	}
	if *vals == nil {
		*vals = map[string]types.AttributeValue{}
	}
	(*names)["#role"] = "r" // the scope-side grant's role (grantItem)
	(*vals)[":owner"] = table.S(RoleOwner)
}

// replaceExpired turns add_user's items (grantItems', then the user-side
// add, then the user's existence check) into the replacement of user's
// expired grant old on scope: the scope-side grant and the user-side
// attribute are overwritten only if they still hold that expiry, and the
// count stays (the grant was counted when it was made). The transaction's
// failures read as add_user's.
func (s *Service) replaceExpired(ctx context.Context, items []types.TransactWriteItem, old *grantItem, user, scope string, av types.AttributeValue) error {
	exp, err := attributevalue.Marshal(*old.Expires)
	if err != nil {
		return httpapi.Internal(err)
	}
	out := slices.Clone(items)
	p := *out[0].Put
	p.ConditionExpression = aws.String("#ttl = :oldttl")
	p.ExpressionAttributeNames = map[string]string{"#ttl": "ttl"}
	p.ExpressionAttributeValues = map[string]types.AttributeValue{":oldttl": table.N(old.TTL)}
	out[0] = types.TransactWriteItem{Put: &p}
	out[len(out)-2] = types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.table), Key: grantsKey(user),
		UpdateExpression:          aws.String("SET #g = :g"),
		ConditionExpression:       aws.String("#g.#exp = :oldexp"),
		ExpressionAttributeNames:  map[string]string{"#g": grantAttr + scope, "#exp": "expiration_time"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":g": av, ":oldexp": exp}}}
	return s.transact(ctx, out)
}
