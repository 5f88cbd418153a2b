package groups

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
)

// A scope others are in keeps an owner (docs/GROUPS.md "The last
// owner"): ending or demoting an owner's grant, except by staff, holds in
// its transaction a check that another owner's grant is still an active
// owner's. Two owners leaving at once each check the other: the first to
// commit ends the other's check, so both cannot succeed.

// errLastOwner refuses to end the last owner's grant of a scope others
// are in.
var errLastOwner = httpapi.Conflict("This user is the last owner of this scope and others are in it: make another member an owner first (update_user), or ask staff.")

// ownerGuard is the check that keeps scope owned when user's owner grant
// ends: nil when no one else holds an active grant on it (nothing to
// keep), errLastOwner when others do and none of them is an owner. One
// Query of the scope's grants (about 7,000 a request).
func (s *Service) ownerGuard(ctx context.Context, scope, user string) (*types.TransactWriteItem, error) {
	items, err := s.partition(ctx, scope, memberPrefix, memberPrefix+"\uffff")
	if err != nil {
		return nil, err
	}
	grants, err := grantsIn(items, "", "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	others := false
	var other *grantItem
	for _, g := range grants {
		if g.User == user || !g.active(now) {
			continue
		}
		others = true
		// Of the other owners, one whose grant does not expire, else the
		// one expiring last.
		if g.Role == RoleOwner && (other == nil || other.Expires != nil && (g.Expires == nil || g.Expires.After(*other.Expires))) {
			other = g
		}
	}
	switch {
	case !others:
		return nil, nil
	case other == nil:
		return nil, errLastOwner
	}
	return &types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.table), Key: memberKey(scope, other.User),
		ConditionExpression:       aws.String("#r = :owner AND (attribute_not_exists(#ttl) OR #ttl > :now)"),
		ExpressionAttributeNames:  map[string]string{"#r": "r", "#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": table.S(RoleOwner), ":now": table.N(now.Unix())}}}, nil
}
