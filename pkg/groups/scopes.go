package groups

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/users"
)

// ErrNotFound is returned when a scope does not exist (or is not of the
// kind asked).
var ErrNotFound = errors.New("groups: not found")

// ScopeInput is the body of a create, PUT or PATCH.
type ScopeInput struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Status      *string         `json:"status"`
	CustomData  json.RawMessage `json:"custom_data"`
	// Application is a group's application (required at creation; a PUT
	// or PATCH may only repeat it).
	Application *string `json:"application"`
}

// ReadOnlyFields are the output fields a body may echo back (GET-modify-PUT).
var ReadOnlyFields = map[string]bool{"id": true, "href": true, "created_at": true, "modified_at": true}

// View is a scope as the routes answer it: an Application or a Group.
type View any

func (s *Service) base(ctx context.Context) string {
	if s.users == nil {
		return ""
	}
	return s.users.PublicURL(ctx)
}

// view renders it for output.
func (s *Service) view(ctx context.Context, it *scopeItem) View {
	sc := it.scope(s.base(ctx))
	if it.Kind == KindGroup {
		return Group{Scope: sc, Application: it.Application}
	}
	return Application{Scope: sc}
}

// apply validates in and writes it to it; put requires every field a
// create does.
func apply(in *ScopeInput, it *scopeItem, put bool) error {
	p := map[string][]string{}
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		switch {
		case n == "":
			p["name"] = append(p["name"], "This field may not be blank.")
		case utf8.RuneCountInString(n) > MaxName:
			p["name"] = append(p["name"], fmt.Sprintf("Ensure this field has no more than %d characters.", MaxName))
		}
		it.Name = n
	} else if put {
		p["name"] = append(p["name"], "This field is required.")
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > MaxDescription {
			p["description"] = append(p["description"], fmt.Sprintf("Ensure this field has no more than %d characters.", MaxDescription))
		}
		it.Description = *in.Description
	} else if put {
		it.Description = ""
	}
	if in.Status != nil {
		switch st := strings.ToUpper(strings.TrimSpace(*in.Status)); st {
		case StatusEnabled, StatusDisabled:
			it.Status = st
		default:
			p["status"] = append(p["status"], "Select ENABLED or DISABLED.")
		}
	} else if put || it.Status == "" {
		it.Status = StatusEnabled
	}
	if in.CustomData != nil {
		raw := bytes.TrimSpace(in.CustomData)
		switch {
		case bytes.Equal(raw, []byte("null")):
			it.CustomData = ""
		case len(raw) == 0 || raw[0] != '{' || !json.Valid(raw):
			p["custom_data"] = append(p["custom_data"], "Enter a JSON object.")
		case len(raw) > MaxCustomData:
			p["custom_data"] = append(p["custom_data"], "Ensure custom_data has no more than 16 KiB.")
		default:
			var c bytes.Buffer
			if err := json.Compact(&c, raw); err != nil {
				p["custom_data"] = append(p["custom_data"], "Enter a JSON object.")
			}
			it.CustomData = c.String()
		}
	} else if put {
		it.CustomData = ""
	}
	if len(p) > 0 {
		return httpapi.Invalid(p)
	}
	return nil
}

// parseID reads a scope id from a path or a body: a uuid.
func parseID(s string) (string, bool) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", false
	}
	return id.String(), true
}

// sameID reports whether s names id (a uuid, in any case).
func sameID(s, id string) bool {
	got, ok := parseID(strings.TrimSpace(s))
	return ok && got == id
}

// Create makes an application (staff) or a group (staff, or an owner or
// admin of its application) from in.
func (s *Service) Create(ctx context.Context, caller *users.User, kind string, in ScopeInput) (View, error) {
	now := s.now()
	it := &scopeItem{Kind: kind, ID: uuid.NewString(), CreatedAt: now, ModifiedAt: now, Version: 1}
	if err := apply(&in, it, true); err != nil {
		return nil, err
	}
	switch kind {
	case KindApplication:
		if !caller.IsStaff {
			return nil, httpapi.Forbidden("Only staff create applications.")
		}
	case KindGroup:
		app, ok := "", false
		if in.Application != nil {
			app, ok = parseID(*in.Application)
		}
		if !ok {
			return nil, httpapi.Invalid(map[string][]string{"application": {"Enter the id of an application."}})
		}
		it.Application = app
		if !caller.IsStaff {
			if caller.IsSupport {
				return nil, httpapi.Forbidden("Support users change nothing.")
			}
			perms, err := s.grantsOf(ctx, caller.UUID)
			if err != nil {
				return nil, err
			}
			if g := perms[app]; g == nil || !g.active(s.now()) || !manages(g.Role) {
				return nil, unknownApplication(app) // an application the caller may not manage is not revealed
			}
		}
	}
	item, err := marshal(it, scopeKey(it.ID))
	if err != nil {
		return nil, err
	}
	cat := catalogueKey(kind, it.ID)
	if kind == KindGroup {
		cat["application"] = table.S(it.Application)
	}
	items := []types.TransactWriteItem{s.put(item, "attribute_not_exists(pk)"), s.put(cat, "")}
	if kind == KindGroup {
		// No group is made in an application being closed (close.go).
		open, names, vals := openCondition(now)
		names["#g"], names["#k"] = "groups", "kind"
		vals[":one"], vals[":app"], vals[":max"] = table.N(1), table.S(KindApplication), table.N(MaxGroupsPerApplication)
		items = append(items, s.put(groupEntryKey(it.Application, it.ID), ""),
			types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.table), Key: scopeKey(it.Application),
				UpdateExpression:          aws.String("ADD #g :one"),
				ConditionExpression:       aws.String("#k = :app AND (attribute_not_exists(#g) OR #g < :max) AND " + open),
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: vals}})
	}
	if err := s.transact(ctx, items); err != nil {
		if failed, ok := table.TxCanceled(err); ok && kind == KindGroup && failed[3] {
			if a, gerr := s.getScope(ctx, KindApplication, it.Application); gerr == nil && a.Groups >= MaxGroupsPerApplication {
				return nil, httpapi.BadRequest(fmt.Sprintf("An application holds at most %d groups; application %s has reached that limit.", MaxGroupsPerApplication, it.Application))
			}
			return nil, unknownApplication(it.Application)
		}
		return nil, table.Error(err)
	}
	return s.view(ctx, it), nil
}

func unknownApplication(id string) error {
	return httpapi.Invalid(map[string][]string{"application": {"Unknown application: " + id + "."}})
}

// access is what a caller may do with a scope.
type access int

const (
	noAccess     access = iota
	readAccess          // staff, support, members (and members of the application, for a group)
	manageAccess        // staff, owners and admins (of the group or its application)
)

// accessTo is caller's access to it, from their grants.
func (s *Service) accessTo(caller *users.User, it *scopeItem, perms map[string]*userGrant) access {
	if caller.IsStaff {
		return manageAccess
	}
	now := s.now()
	role := func(id string) string {
		if g := perms[id]; g != nil && g.active(now) {
			return g.Role
		}
		return ""
	}
	best := noAccess
	for _, id := range []string{it.ID, it.Application} {
		if id == "" {
			continue
		}
		switch r := role(id); {
		case manages(r) && !caller.IsSupport: // support change nothing, whatever they hold
			return manageAccess
		case manages(r):
			best = readAccess
		case r != "":
			best = readAccess
		}
	}
	if best == noAccess && it.Kind == KindApplication {
		for _, g := range perms { // a member of one of its groups
			if g.active(now) && g.CustomerUUID == it.ID {
				best = readAccess
			}
		}
	}
	if best == noAccess && caller.IsSupport {
		best = readAccess
	}
	return best
}

// load reads the scope kind/id and caller's grants, and checks caller has
// at least want: 404 for a caller who may not read it, 403 for a reader
// who may not change it.
func (s *Service) load(ctx context.Context, caller *users.User, kind, id string, want access) (*scopeItem, map[string]*userGrant, error) {
	it, perms, _, err := s.loadMember(ctx, caller, kind, id, want, nil)
	return it, perms, err
}

// loadMember is load reading, for a caller who is not staff, member's
// grant on the scope too, in the same BatchGetItem (member nil: none).
func (s *Service) loadMember(ctx context.Context, caller *users.User, kind, id string, want access, member *string) (*scopeItem, map[string]*userGrant, *grantItem, error) {
	sid, ok := parseID(id)
	if !ok {
		return nil, nil, nil, httpapi.NotFound("")
	}
	var (
		it    *scopeItem
		perms map[string]*userGrant
		grant *grantItem
		err   error
	)
	if caller.IsStaff {
		it, err = s.getScope(ctx, kind, sid)
	} else {
		it, perms, grant, err = s.scopeAndGrantsWith(ctx, kind, sid, caller.UUID, member)
	}
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, httpapi.NotFound("")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	switch a := s.accessTo(caller, it, perms); {
	case a == noAccess:
		return nil, nil, nil, httpapi.NotFound("")
	case a < want:
		return nil, nil, nil, httpapi.Forbidden("")
	}
	return it, perms, grant, nil
}

// loadWith is load reading the user target too, in the same BatchGetItem
// (nil when there is no such user).
func (s *Service) loadWith(ctx context.Context, caller *users.User, kind, id string, want access, target string) (*scopeItem, map[string]*userGrant, *users.User, error) {
	sid, ok := parseID(id)
	if !ok {
		return nil, nil, nil, httpapi.NotFound("")
	}
	keys := []map[string]types.AttributeValue{scopeKey(sid)}
	if !caller.IsStaff {
		keys = append(keys, grantsKey(caller.UUID))
	}
	us, items, err := s.users.GetManyAlong(ctx, []string{target}, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		it    *scopeItem
		perms = map[string]*userGrant{}
	)
	for _, item := range items {
		if table.String(item, "sk") == grantsSK {
			if perms, err = userGrants(item); err != nil {
				return nil, nil, nil, err
			}
		} else if it, err = unmarshalScope(item); err != nil {
			return nil, nil, nil, err
		}
	}
	if it == nil || it.Kind != kind {
		return nil, nil, nil, httpapi.NotFound("")
	}
	switch a := s.accessTo(caller, it, perms); {
	case a == noAccess:
		return nil, nil, nil, httpapi.NotFound("")
	case a < want:
		return nil, nil, nil, httpapi.Forbidden("")
	}
	var u *users.User
	if len(us) == 1 {
		u = us[0]
	}
	return it, perms, u, nil
}

// scopeAndGrantsWith reads scope kind/id and user's grants (none when
// user is "") and, when member is set, member's scope-side grant on it
// (nil when there is none), in one strongly consistent BatchGetItem.
func (s *Service) scopeAndGrantsWith(ctx context.Context, kind, id, user string, member *string) (*scopeItem, map[string]*userGrant, *grantItem, error) {
	keys := []map[string]types.AttributeValue{scopeKey(id)}
	if user != "" {
		keys = append(keys, grantsKey(user))
	}
	if member != nil && *member != "" {
		keys = append(keys, memberKey(id, *member))
	}
	items, err := table.BatchGet(ctx, s.db, s.table, keys, true)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		it    *scopeItem
		perms = map[string]*userGrant{}
		grant *grantItem
	)
	for _, item := range items {
		if strings.HasPrefix(table.String(item, "sk"), memberPrefix) {
			if grant, err = unmarshalGrant(item); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		if table.String(item, "sk") == grantsSK {
			if perms, err = userGrants(item); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		it = &scopeItem{}
		if err := attributevalue.UnmarshalMap(item, it); err != nil {
			return nil, nil, nil, httpapi.Internal(err)
		}
	}
	if it == nil || (kind != "" && it.Kind != kind) {
		return nil, nil, nil, ErrNotFound
	}
	return it, perms, grant, nil
}

// Get returns scope kind/id to a caller who may read it.
func (s *Service) Get(ctx context.Context, caller *users.User, kind, id string) (View, error) {
	it, _, err := s.load(ctx, caller, kind, id, readAccess)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, it), nil
}

// Update applies in (PUT when put) to scope kind/id.
func (s *Service) Update(ctx context.Context, caller *users.User, kind, id string, in ScopeInput, put bool) (View, error) {
	it, _, err := s.load(ctx, caller, kind, id, manageAccess)
	if err != nil {
		return nil, err
	}
	if in.Application != nil && kind == KindGroup && !sameID(*in.Application, it.Application) {
		return nil, httpapi.Invalid(map[string][]string{"application": {"A group cannot move to another application."}})
	}
	if kind == KindApplication && in.Application != nil {
		return nil, httpapi.Invalid(map[string][]string{"application": {"Unknown field."}})
	}
	version := it.Version
	if err := apply(&in, it, put); err != nil {
		return nil, err
	}
	it.ModifiedAt = s.now()
	it.Version++
	upd := expression.Set(expression.Name("name"), expression.Value(it.Name)).
		Set(expression.Name("description"), expression.Value(it.Description)).
		Set(expression.Name("status"), expression.Value(it.Status)).
		Set(expression.Name("modified_at"), expression.Value(it.ModifiedAt)).
		Set(expression.Name("version"), expression.Value(it.Version))
	if it.CustomData == "" {
		upd = upd.Remove(expression.Name("custom_data"))
	} else {
		upd = upd.Set(expression.Name("custom_data"), expression.Value(it.CustomData))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).
		WithCondition(expression.Name("version").Equal(expression.Value(version))).Build()
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: scopeKey(it.ID),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()})
	if err != nil {
		if errors.Is(table.Error(err), table.ErrConditionFailed) {
			return nil, httpapi.PreconditionFailed()
		}
		return nil, table.Error(err)
	}
	return s.view(ctx, it), nil
}

// Delete removes scope kind/id: an application (staff), a group (staff,
// or an owner or admin of its application). Its grants, and an
// application's groups, go after it (the stream's ScopeRemoved).
func (s *Service) Delete(ctx context.Context, caller *users.User, kind, id string) error {
	it, perms, err := s.load(ctx, caller, kind, id, readAccess)
	if err != nil {
		return err
	}
	if !caller.IsStaff {
		g := perms[it.Application]
		if kind == KindApplication || caller.IsSupport || g == nil || !g.active(s.now()) || !manages(g.Role) {
			return httpapi.Forbidden("")
		}
	}
	return s.deleteScope(ctx, it)
}

// deleteScope removes a scope's item, its catalogue entry and (a group)
// its entry and count in the application, in one transaction.
func (s *Service) deleteScope(ctx context.Context, it *scopeItem) error {
	return s.deleteScopeIf(ctx, it, nil)
}

// deleteScopeMarked is deleteScope conditional on closer's mark (until
// until) still being on the scope item: table.ErrConditionFailed when not.
func (s *Service) deleteScopeMarked(ctx context.Context, it *scopeItem, closer string, until int64) error {
	return s.deleteScopeIf(ctx, it, func(d *types.Delete) { markedCondition(d, closer, until) })
}

// deleteScopeIf is deleteScope with cond, when set, making the scope
// item's Delete conditional (a failure is table.ErrConditionFailed).
func (s *Service) deleteScopeIf(ctx context.Context, it *scopeItem, cond func(*types.Delete)) error {
	items := []types.TransactWriteItem{s.del(scopeKey(it.ID), ""), s.del(catalogueKey(it.Kind, it.ID), "")}
	if cond != nil {
		cond(items[0].Delete)
	}
	if it.Kind == KindGroup {
		items = append(items, s.del(groupEntryKey(it.Application, it.ID), ""),
			types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.table), Key: scopeKey(it.Application),
				UpdateExpression: aws.String("ADD #g :minus"), ConditionExpression: aws.String("attribute_exists(pk) AND #g > :zero"),
				ExpressionAttributeNames:  map[string]string{"#g": "groups"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":minus": table.N(-1), ":zero": table.N(0)}}})
	}
	err := s.transact(ctx, items)
	if failed, ok := table.TxCanceled(err); ok && len(failed) == 4 && failed[3] && !failed[0] {
		// The application is gone already (its own cascade): just the group.
		err = s.transact(ctx, items[:3])
	}
	if failed, ok := table.TxCanceled(err); ok && failed[0] {
		return table.ErrConditionFailed
	}
	if err != nil {
		return table.Error(err)
	}
	return nil
}

// Page is one page of a list.
type Page struct {
	Items []View
	Count int
}

// List returns a page of the scopes of kind the caller may read: staff and
// support every one (the catalogue), others those they hold a grant on
// (applications: also those of the groups they are in). application, when
// set, keeps a group list to that application's groups.
func (s *Service) List(ctx context.Context, caller *users.User, kind, application string, page, size int) (*Page, error) {
	var ids []string
	if caller.IsStaff || caller.IsSupport {
		in := &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": table.S(cataloguePrefix + kind)},
		}
		if application != "" {
			in.FilterExpression = aws.String("application = :app")
			in.ExpressionAttributeValues[":app"] = table.S(application)
		}
		items, err := s.queryAll(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			ids = append(ids, table.String(it, "sk"))
		}
	} else {
		perms, err := s.grantsOf(ctx, caller.UUID)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		now := s.now()
		for id, g := range perms {
			if !g.active(now) {
				continue
			}
			switch {
			case kind == KindGroup && g.ScopeType == KindGroup && (application == "" || g.CustomerUUID == application):
				seen[id] = true
			case kind == KindApplication:
				seen[g.CustomerUUID] = true
			}
		}
		for id := range seen {
			ids = append(ids, id)
		}
		slices.Sort(ids)
	}
	res := &Page{Count: len(ids), Items: []View{}}
	off := (page - 1) * size
	if off >= len(ids) {
		return res, nil
	}
	its, err := s.scopeItems(ctx, ids[off:min(off+size, len(ids))])
	if err != nil {
		return nil, err
	}
	for _, it := range its {
		res.Items = append(res.Items, s.view(ctx, it))
	}
	return res, nil
}

// scopeItems reads scopes by id, in the order of ids; missing ones are
// left out.
func (s *Service) scopeItems(ctx context.Context, ids []string) ([]*scopeItem, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, scopeKey(id))
	}
	items, err := table.BatchGet(ctx, s.db, s.table, keys, false)
	if err != nil {
		return nil, err
	}
	byID := map[string]*scopeItem{}
	for _, item := range items {
		var it scopeItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return nil, httpapi.Internal(err)
		}
		byID[it.ID] = &it
	}
	out := make([]*scopeItem, 0, len(ids))
	for _, id := range ids {
		if it := byID[id]; it != nil {
			out = append(out, it)
		}
	}
	return out, nil
}
