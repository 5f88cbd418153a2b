package users

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/table"
)

// What other domain packages (pkg/groups) ask of the users' storage
// without reading its items themselves.

// ExistsCheck is the transaction item that fails unless user id's item
// exists, for another package's transaction that names the user (a role
// grant): the grant is never written for a user that is gone.
func (s *Service) ExistsCheck(id string) types.TransactWriteItem {
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.st.table), Key: userKey(id),
		ConditionExpression: aws.String("attribute_exists(pk)")}}
}

// MarkGrants is the transaction item that records on user id's item that
// they hold role grants (User.HasGrants), and fails unless the item
// exists: it stands in for ExistsCheck in a transaction that grants a
// role. It touches no credential, listing field or version, so it needs
// no credential-epoch guard and moves no ETag.
func (s *Service) MarkGrants(id string) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.st.table), Key: userKey(id),
		UpdateExpression: aws.String("SET has_grants = :t"), ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}}}}
}

// GetMany reads the users with ids, in their order, one BatchGetItem per
// 100 ids; ids of users that do not exist are left out.
func (s *Service) GetMany(ctx context.Context, ids []string) ([]*User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.st.usersByID(ctx, ids)
}

// GetManyAlong is GetMany reading other packages' items (along) in the
// same BatchGetItem requests (100 keys each): a page of users and, say,
// their grants in one request. The users come back in the order of ids,
// the other items in no particular order.
func (s *Service) GetManyAlong(ctx context.Context, ids []string, along []map[string]types.AttributeValue) ([]*User, []map[string]types.AttributeValue, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(ids)+len(along))
	for _, id := range ids {
		keys = append(keys, userKey(id))
	}
	keys = append(keys, along...)
	items, err := table.BatchGet(ctx, s.st.db, s.st.table, keys, true)
	if err != nil {
		return nil, nil, err
	}
	return usersAmong(items, ids)
}

// usersAmong splits items into the users with ids, in their order (absent
// ones left out), and the other items.
func usersAmong(items []map[string]types.AttributeValue, ids []string) ([]*User, []map[string]types.AttributeValue, error) {
	var mine, others []map[string]types.AttributeValue
	for _, it := range items {
		if KindOf(table.String(it, "pk"), table.String(it, "sk")) == ItemUser {
			mine = append(mine, it)
		} else {
			others = append(others, it)
		}
	}
	us, err := unmarshalUsers(mine)
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]*User{}
	for _, u := range us {
		byID[u.UUID] = u
	}
	out := make([]*User, 0, len(ids))
	for _, id := range ids {
		if u := byID[id]; u != nil {
			out = append(out, u)
		}
	}
	return out, others, nil
}
