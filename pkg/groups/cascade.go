package groups

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
)

// What the stream runs (pkg/streams): every step is idempotent, so a
// redelivered record repeats nothing harmful.

// RemoveUser is ApiHub's cascade of a deleted user: their grants go, and
// every application or group in which they were the only member (no other
// active grant on it, nor, for an application, on its groups) is deleted
// with its grants and groups. Groups are settled before applications.
// The user's item of grants goes last, so a redelivered record finds every
// scope still to settle.
func (s *Service) RemoveUser(ctx context.Context, userUUID string) error {
	grants, err := s.grantsOf(ctx, userUUID)
	if err != nil {
		return err
	}
	for _, kind := range []string{KindGroup, KindApplication} {
		for scope, g := range grants {
			if g.ScopeType != kind {
				continue
			}
			if err := s.leaveOrDelete(ctx, userUUID, kind, scope, g.CustomerUUID); err != nil {
				return err
			}
		}
	}
	return s.transact(ctx, []types.TransactWriteItem{s.del(grantsKey(userUUID), "")})
}

// leaveOrDelete removes user's grant on scope, then the scope itself when
// no one else is in it (closeIfEmpty). The grant goes first: of two last
// members deleted at once, the later one's read sees neither, and closes
// the scope.
func (s *Service) leaveOrDelete(ctx context.Context, user, kind, scope, app string) error {
	if err := s.dropScopeSide(ctx, user, kind, scope, app); err != nil {
		return err
	}
	return s.closeIfEmpty(ctx, user, kind, scope)
}

// dropScopeSide removes user's grant on scope from the scope's side (the
// grant and, for a group, its mirror in app), tolerating what is gone
// already; the user's own item is the caller's to delete.
func (s *Service) dropScopeSide(ctx context.Context, user, kind, scope, app string) error {
	items := []types.TransactWriteItem{s.del(memberKey(scope, user), "")}
	if kind == KindGroup && app != "" {
		items = append(items, s.del(mirrorKey(app, user, scope), ""))
	}
	if err := s.transact(ctx, items); err != nil {
		return table.Error(err)
	}
	return nil
}

// dropUserSide removes the grant on scope from user's item and counts it
// out; exp, when set, must be the grant's expiry (an expiry removing a
// grant that was renewed since removes nothing).
func (s *Service) dropUserSide(ctx context.Context, user, scope, exp string) error {
	cond := "attribute_exists(#g)"
	vals := map[string]types.AttributeValue{":minus": table.N(-1)}
	names := map[string]string{"#g": grantAttr + scope, "#n": "n"}
	if exp != "" {
		cond += " AND #g.#exp = :exp"
		names["#exp"] = "expiration_time"
		vals[":exp"] = table.S(exp)
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: grantsKey(user),
		UpdateExpression: aws.String("REMOVE #g ADD #n :minus"), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: vals})
	if err != nil && !errors.Is(table.Error(err), table.ErrConditionFailed) {
		return table.Error(err)
	}
	return nil
}

// purge removes what a deleted scope leaves: every grant on it (both
// sides), an application's mirrors, and an application's groups with
// theirs.
func (s *Service) purge(ctx context.Context, kind, scope, app string) error {
	items, err := s.partition(ctx, scope, memberPrefix, "~\uffff")
	if err != nil {
		return err
	}
	var dels []types.TransactWriteItem
	for _, it := range items {
		sk := table.String(it, "sk")
		switch {
		case strings.HasPrefix(sk, memberPrefix):
			user := strings.TrimPrefix(sk, memberPrefix)
			if err := s.dropUserSide(ctx, user, scope, ""); err != nil {
				return err
			}
			if kind == KindGroup && app != "" {
				dels = append(dels, s.del(mirrorKey(app, user, scope), ""))
			}
		case strings.HasPrefix(sk, groupEntry):
			gid := strings.TrimPrefix(sk, groupEntry)
			if g, err := s.getScope(ctx, KindGroup, gid); err == nil {
				if err := s.transact(ctx, []types.TransactWriteItem{s.del(scopeKey(gid), ""), s.del(catalogueKey(KindGroup, gid), "")}); err != nil {
					return table.Error(err)
				}
				if err := s.purge(ctx, KindGroup, gid, g.Application); err != nil {
					return err
				}
			} else if !errors.Is(err, ErrNotFound) {
				return err
			} else if err := s.purge(ctx, KindGroup, gid, ""); err != nil {
				return err
			}
		}
		dels = append(dels, s.del(table.Key(table.String(it, "pk"), sk), ""))
	}
	for len(dels) > 0 {
		n := min(len(dels), 100)
		if err := s.transact(ctx, dels[:n]); err != nil {
			return table.Error(err)
		}
		dels = dels[n:]
	}
	return nil
}

// ScopeRemoved follows a scope item's removal (a DELETE route, or the
// cascade): its grants, and an application's groups, go.
func (s *Service) ScopeRemoved(ctx context.Context, old map[string]types.AttributeValue) error {
	it, err := unmarshalScope(old)
	if err != nil {
		return err
	}
	return s.purge(ctx, it.Kind, it.ID, it.Application)
}

// ScopeRenamed follows a scope's rename: the names kept on its members'
// user-side items (scope_name; for an application also the customer_name
// of its groups' grants) are brought up to date.
func (s *Service) ScopeRenamed(ctx context.Context, old, cur map[string]types.AttributeValue) error {
	o, err := unmarshalScope(old)
	if err != nil {
		return err
	}
	n, err := unmarshalScope(cur)
	if err != nil {
		return err
	}
	if o.Name == n.Name {
		return nil
	}
	hi := memberPrefix + "\uffff"
	if n.Kind == KindApplication {
		hi = mirrorPrefix + "\uffff"
	}
	items, err := s.partition(ctx, n.ID, memberPrefix, hi)
	if err != nil {
		return err
	}
	grants, err := grantsIn(items, n.Kind, n.Application)
	if err != nil {
		return err
	}
	for _, g := range grants {
		var set string
		attr := grantAttr + g.ScopeID
		switch {
		case g.ScopeType == KindGroup && n.Kind == KindApplication:
			set = "SET #g.customer_name = :n"
		case n.Kind == KindApplication:
			set = "SET #g.scope_name = :n, #g.customer_name = :n"
		default:
			set = "SET #g.scope_name = :n"
		}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: grantsKey(g.User),
			UpdateExpression: aws.String(set), ConditionExpression: aws.String("attribute_exists(#g)"),
			ExpressionAttributeNames:  map[string]string{"#g": attr},
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": table.S(n.Name)}})
		if err != nil && !errors.Is(table.Error(err), table.ErrConditionFailed) {
			return table.Error(err)
		}
	}
	return nil
}

// GrantExpired follows TTL's removal of an expired scope-side grant: the
// user's side and the mirror go too, unless the grant was renewed since.
func (s *Service) GrantExpired(ctx context.Context, old map[string]types.AttributeValue) error {
	g, err := grantOf(old, "", "")
	if err != nil || g == nil || g.Expires == nil {
		return err
	}
	// The scope says whether a mirror is to go too (a removed one has
	// purged its own).
	if sc, err := s.getScope(ctx, "", g.ScopeID); err == nil {
		g.ScopeType, g.Application = sc.Kind, sc.Application
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	exp, err := attributevalue.Marshal(*g.Expires)
	if err != nil {
		return httpapi.Internal(err)
	}
	es, _ := exp.(*types.AttributeValueMemberS)
	if es == nil {
		return nil
	}
	if err := s.dropUserSide(ctx, g.User, g.ScopeID, es.Value); err != nil {
		return err
	}
	if g.ScopeType == KindGroup && g.Application != "" {
		d := s.del(mirrorKey(g.Application, g.User, g.ScopeID), "attribute_not_exists(pk) OR #e = :e")
		d.Delete.ExpressionAttributeNames = map[string]string{"#e": "e"}
		d.Delete.ExpressionAttributeValues = map[string]types.AttributeValue{":e": es}
		err := s.transact(ctx, []types.TransactWriteItem{d})
		if _, conditional := table.TxCanceled(err); err != nil && !conditional {
			return table.Error(err) // a renewed grant's mirror stays
		}
	}
	return nil
}
