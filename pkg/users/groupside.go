package users

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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

// GetMany reads the users with ids, in their order, one BatchGetItem per
// 100 ids; ids of users that do not exist are left out.
func (s *Service) GetMany(ctx context.Context, ids []string) ([]*User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.st.usersByID(ctx, ids)
}
