package groups

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
)

// Expired grants and the per-user limit (docs/GROUPS.md "Limits"): the
// count n on the user's item counts every grant item there, expired or
// not, until TTL (and the stream's GrantExpired) removes it. An add_user
// that meets the limit drops the user's expired grants in its own
// transaction: the user-side update removes their attributes, counts them
// out and counts the new one in under one condition (n within the limit
// after both, each dropped grant still holding the expiry it was read
// with), and their scope-side items and mirrors go with it (unless renewed
// since). So the limit stays exact under concurrency: two adds dropping
// the same grant cannot both commit, and the loser reads again.

// maxDropExpired bounds the expired grants one add_user drops (two items
// each at most, within the transaction's 100).
const maxDropExpired = 20

// dropAttempts bounds the re-reads of an add_user whose expired grants
// change under it.
const dropAttempts = 3

// addDroppingExpired retries add_user's items (grantItems', the user-side
// add, the user's check) dropping up to maxDropExpired of user's expired
// grants; it returns the last transaction's error (the limit's failure
// when there is nothing to drop).
func (s *Service) addDroppingExpired(ctx context.Context, items []types.TransactWriteItem, user, scope string, av types.AttributeValue) error {
	var err error
	for range dropAttempts {
		grants, gerr := s.grantsOf(ctx, user)
		if gerr != nil {
			return gerr
		}
		now := s.now()
		var expired []string
		for id, g := range grants {
			if id != scope && !g.active(now) {
				expired = append(expired, id)
			}
		}
		if len(expired) == 0 {
			return s.transact(ctx, items) // the limit, as it stands now
		}
		slices.Sort(expired)
		expired = expired[:min(len(expired), maxDropExpired)]
		out, berr := s.dropExpiredItems(items, user, scope, av, expired, grants)
		if berr != nil {
			return berr
		}
		err = s.transact(ctx, out)
		failed, ok := table.TxCanceled(err)
		if err == nil || !ok || failed[0] || failed[1] || failed[len(items)-1] {
			return err // done, or failed for what add_user reports anyway
		}
		// A dropped grant was renewed or removed meanwhile, or another add
		// took the room: read again.
	}
	return err
}

// dropExpiredItems is add_user's items with the user-side add replaced by
// one that also drops expired (each still with the expiry in grants), and
// the scope-side grants and mirrors of those appended.
func (s *Service) dropExpiredItems(items []types.TransactWriteItem, user, scope string, av types.AttributeValue, expired []string, grants map[string]*userGrant) ([]types.TransactWriteItem, error) {
	d := len(expired)
	names := map[string]string{"#n": "n", "#g": grantAttr + scope, "#exp": "expiration_time"}
	vals := map[string]types.AttributeValue{":g": av, ":delta": table.N(int64(1 - d)), ":left": table.N(int64(MaxGrantsPerUser - 1 + d))}
	conds := []string{"attribute_not_exists(#g)", "#n <= :left"}
	var removes []string
	out := slices.Clone(items)
	for i, id := range expired {
		g := grants[id]
		exp, err := attributevalue.Marshal(*g.Expires)
		if err != nil {
			return nil, httpapi.Internal(err)
		}
		nk, vk := fmt.Sprintf("#x%d", i), fmt.Sprintf(":x%d", i)
		names[nk], vals[vk] = grantAttr+id, exp
		removes = append(removes, nk)
		conds = append(conds, nk+".#exp = "+vk)
		// The scope-side grant (and a group's mirror) unless renewed since;
		// gone already (TTL, a deleted scope) is fine.
		keys := []map[string]types.AttributeValue{memberKey(id, user)}
		if g.ScopeType == KindGroup && g.CustomerUUID != "" {
			keys = append(keys, mirrorKey(g.CustomerUUID, user, id))
		}
		for _, k := range keys {
			del := s.del(k, "attribute_not_exists(pk) OR #ttl = :ttl")
			del.Delete.ExpressionAttributeNames = map[string]string{"#ttl": "ttl"}
			del.Delete.ExpressionAttributeValues = map[string]types.AttributeValue{":ttl": table.N(g.Expires.Unix())}
			out = append(out, del)
		}
	}
	out[len(items)-2] = types.TransactWriteItem{Update: &types.Update{TableName: aws.String(s.table), Key: grantsKey(user),
		UpdateExpression:         aws.String("SET #g = :g REMOVE " + strings.Join(removes, ", ") + " ADD #n :delta"),
		ConditionExpression:      aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals}}
	return out, nil
}
