package groups

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// RemoveUnverifiedUser is the cascade of an account removed before it was
// ever activated (replaced by a sign-up for its address, expired by TTL, or
// deleted by staff while pending): its grants go, both sides, and no scope
// goes with them. Whoever signs up for a pending invitee's address (which
// replaces the invitee's account) would otherwise delete every group and
// application the invitee was the first member of (RemoveUser's "only
// member" rule). Idempotent, as RemoveUser.
func (s *Service) RemoveUnverifiedUser(ctx context.Context, userUUID string) error {
	grants, err := s.grantsOf(ctx, userUUID)
	if err != nil {
		return err
	}
	for scope, g := range grants {
		if err := s.dropScopeSide(ctx, userUUID, g.ScopeType, scope, g.CustomerUUID); err != nil {
			return err
		}
	}
	return s.transact(ctx, []types.TransactWriteItem{s.del(grantsKey(userUUID), "")})
}
