package users

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
)

// Whom a caller who is neither staff nor support sees in GET /api/users
// besides themselves: the members of the scopes they belong to (API.md's
// rule, docs/GROUPS.md "Who is listed"). pkg/groups answers it; users
// does not import groups, so the answer is a hook set at wiring, as the API
// keys are (SetKeys).

// Visibility answers whom a caller sees besides themselves.
type Visibility interface {
	// CallerKeys are the items to read beside the caller's own item in the
	// authentication's read (the caller's grants), for Visible.
	CallerKeys(userUUID string) []map[string]types.AttributeValue
	// Visible returns the uuids of the users caller sees besides
	// themselves (in any order, possibly with the caller), given the items
	// of CallerKeys that exist. More than limit of them is
	// ErrTooManyVisible, which the caller may answer before reading them
	// all.
	Visible(ctx context.Context, caller *User, items []map[string]types.AttributeValue, limit int) ([]string, error)
}

// ErrTooManyVisible is Visibility.Visible's answer when the caller sees
// more users than the limit.
var ErrTooManyVisible = errors.New("users: too many visible users")

// SetVisibility makes List show a caller who holds role grants the members
// of their scopes, as v answers them; without it they see only themselves.
func (s *Service) SetVisibility(v Visibility) { s.visible = v }

// VisibleLimit is how many users a list may read by uuid to filter, order
// and page them in memory: the caller's scopes' members (List), or a scope's
// members with other filters (pkg/api). The entries plans' bound on the
// users they read (LIST_SCAN_LIMIT/20, at least 100; 1,000 by default).
func (s *Service) VisibleLimit() int { return max(100, s.scanLimit()/20) }

// TooManyToRead is the 400 of a list that would read more than limit users
// by uuid, naming field (the parameter to add or change) with advice.
func TooManyToRead(limit int, field, advice string) error {
	e := httpapi.Invalid(map[string][]string{field: {advice}})
	e.Message = "This list would read more than " + strconv.Itoa(limit) + " users to filter, order and page them: " + advice
	return e
}

// errTooManyVisible answers an unfiltered list of a caller who sees more
// than limit users through their scopes.
func errTooManyVisible(limit int) error {
	return TooManyToRead(limit, "customer_uuid",
		"You see the members of many applications and groups: filter by one of them with customer_uuid or project_uuid.")
}

// ScopedPage filters, sorts and pages a scope's members (candidates) in
// memory, by every filter, ordering and page of q. Unlike the index lists,
// an unactivated (UNVERIFIED) member is listed: a scope shows all its
// members, as its list_users and its plain page do (docs/GROUPS.md).
func (q ListQuery) ScopedPage(candidates []*User) *ListResult {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PageSize < 1 {
		q.PageSize = DefaultPageSize
	}
	return q.page(candidates, false)
}

// visibleList answers List for caller, neither staff nor support, who holds
// role grants: themselves and every user Visible gives, read by uuid (one
// BatchGetItem per 100) and filtered, ordered and paged in memory. got are
// the items the authentication's read brought beside the caller.
func (s *Service) visibleList(ctx context.Context, caller *User, q ListQuery, pf *prefetchDB) (*ListResult, error) {
	keys := s.visible.CallerKeys(caller.UUID)
	got, err := pf.results(ctx)
	if err != nil {
		return nil, err
	}
	if !pf.alongRead { // not in the authentication's read (Basic credentials): one request
		items, err := s.st.batchGet(ctx, keys)
		if err != nil {
			return nil, err
		}
		got = append(got, items...)
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[pkOf(k)+"\x00"+skOf(k)] = true
	}
	var items []map[string]types.AttributeValue
	for _, it := range got {
		if want[pkOf(it)+"\x00"+skOf(it)] {
			items = append(items, it)
		}
	}
	limit := s.VisibleLimit()
	ids, err := s.visible.Visible(ctx, caller, items, limit)
	if errors.Is(err, ErrTooManyVisible) {
		return nil, errTooManyVisible(limit)
	}
	if err != nil {
		return nil, err
	}
	others := make([]string, 0, len(ids))
	seen := map[string]bool{caller.UUID: true}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			others = append(others, id)
		}
	}
	if len(others)+1 > limit {
		return nil, errTooManyVisible(limit)
	}
	us, err := s.GetMany(ctx, others)
	if err != nil {
		return nil, err
	}
	return q.page(append(us, caller), false), nil
}
