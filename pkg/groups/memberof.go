package groups

import (
	"context"
	"slices"
)

// MemberOf returns the applications and groups user holds an active grant
// on, as eContext shows them on its user (GetItem of the user's grants and
// one BatchGetItem of the scopes); a scope deleted but not yet swept from
// the grants is left out.
func (s *Service) MemberOf(ctx context.Context, userUUID string) ([]Application, []Group, error) {
	grants, err := s.grantsOf(ctx, userUUID)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	var ids []string
	for id, g := range grants {
		if g.active(now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	apps, grps := []Application{}, []Group{}
	if len(ids) == 0 {
		return apps, grps, nil
	}
	its, err := s.scopeItems(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	for _, it := range its {
		switch v := s.view(ctx, it).(type) {
		case Application:
			apps = append(apps, v)
		case Group:
			grps = append(grps, v)
		}
	}
	return apps, grps, nil
}
