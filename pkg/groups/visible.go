package groups

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/users"
)

// What GET /api/users shows a caller who is neither staff nor support
// besides themselves (users.Visibility, set at wiring): the users they
// would see filtering by each scope they hold an active grant on, with
// customer_uuid for an application, project_uuid for a group (Members).

// visibleQueries bounds the scope Queries Visible runs at once.
const visibleQueries = 8

// CallerKeys are the caller's grants item, read in the authentication's
// request.
func (s *Service) CallerKeys(userUUID string) []map[string]types.AttributeValue {
	return []map[string]types.AttributeValue{grantsKey(userUUID)}
}

// Visible returns the members of every scope caller holds an active grant
// on (their grants item among items; none when absent): Members of
// customer_uuid for each application, of project_uuid for each group not in
// one of those applications (whose members the application's partition
// already holds). One Query per scope (one more per MB of grants), at most
// visibleQueries at once; past limit users it stops with
// users.ErrTooManyVisible.
func (s *Service) Visible(ctx context.Context, caller *users.User, items []map[string]types.AttributeValue, limit int) ([]string, error) {
	var mine map[string]*userGrant
	for _, it := range items {
		if table.String(it, "pk") == grantsPrefix+caller.UUID && table.String(it, "sk") == grantsSK {
			g, err := userGrants(it)
			if err != nil {
				return nil, err
			}
			mine = g
		}
	}
	now := s.now()
	apps := map[string]bool{}
	for id, g := range mine {
		if g.active(now) && g.ScopeType == KindApplication {
			apps[id] = true
		}
	}
	var qs []MemberQuery
	for _, id := range slices.Sorted(maps.Keys(mine)) {
		g := mine[id]
		switch {
		case !g.active(now):
		case g.ScopeType == KindApplication:
			qs = append(qs, MemberQuery{CustomerUUID: id})
		case !apps[g.CustomerUUID]:
			qs = append(qs, MemberQuery{ProjectUUID: id})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		seen    = map[string]bool{caller.UUID: true}
		firstEr error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, visibleQueries)
	)
	fail := func(err error) {
		mu.Lock()
		if firstEr == nil {
			firstEr = err
			cancel()
		}
		mu.Unlock()
	}
	for _, q := range qs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			ids, err := s.Members(ctx, caller, q)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			for _, id := range ids {
				seen[id] = true
			}
			over := len(seen) > limit
			mu.Unlock()
			if over {
				fail(users.ErrTooManyVisible)
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return nil, firstEr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}
