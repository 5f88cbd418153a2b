package groups

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/table"
)

// The cascade's two-phase close of a scope its last member left
// (docs/GROUPS.md "Deletion cascade"): the decision "no one else is in it"
// is a read of many items, and the deletion one write, so an add_user
// committing between them would be deleted with the scope. The close first
// marks the scope item (closing, closing_until); every write that makes a
// member (add_user, update_user, a user creation's grants, a group's
// creation in an application) already holds a ConditionCheck or an update
// of that item, and refuses a marked one. Then the scope is read again: a
// member who came before the mark is seen (the scope is unmarked and
// stays), and none can come after it. The deletion is conditional on the
// mark still being the closer's. A mark ends by itself at closing_until,
// so a closer that died leaves nothing refused for long.
const (
	closingAttr      = "closing"
	closingUntilAttr = "closing_until"
	// closeWindow is how long a mark refuses new members.
	closeWindow = 2 * time.Minute
	// closeMargin is how much of the window must be left for the deletion
	// to go ahead (clocks of other functions may be a little ahead).
	closeMargin = 30 * time.Second
	// closeAttempts bounds the tries of a close that meets another
	// closer's mark or loses its own.
	closeAttempts = 5
)

// errClosing is a mark held by another closer.
var errClosing = errors.New("groups: another closer holds the scope")

// openCondition is the condition that a scope item exists and is not being
// closed at now, with its names and values (for a ConditionCheck or an
// Update of the scope item).
func openCondition(now time.Time) (string, map[string]string, map[string]types.AttributeValue) {
	return "attribute_exists(pk) AND (attribute_not_exists(#closing) OR #closing_until < :closing_now)",
		map[string]string{"#closing": closingAttr, "#closing_until": closingUntilAttr},
		map[string]types.AttributeValue{":closing_now": table.N(now.Unix())}
}

// openCheck is the ConditionCheck that scope exists and is not being
// closed: what every write making a member of it holds.
func (s *Service) openCheck(scope string, now time.Time) types.TransactWriteItem {
	cond, names, vals := openCondition(now)
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.table), Key: scopeKey(scope),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}}
}

// mark sets closer's mark on scope until now+closeWindow: it takes a scope
// unmarked, marked by closer (a redelivered record resumes its own close)
// or marked by a closer whose window has passed. ErrNotFound when the
// scope is gone, errClosing when another closer holds it.
func (s *Service) mark(ctx context.Context, scope, closer string) (int64, error) {
	now := s.Now().UTC()
	until := now.Add(closeWindow).Unix()
	err := s.update(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: scopeKey(scope),
		UpdateExpression:         aws.String("SET #closing = :me, #closing_until = :until"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND (attribute_not_exists(#closing) OR #closing = :me OR #closing_until < :now)"),
		ExpressionAttributeNames: map[string]string{"#closing": closingAttr, "#closing_until": closingUntilAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": table.S(closer), ":until": table.N(until),
			":now": table.N(now.Unix())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	if err == nil {
		return until, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if len(ccf.Item) == 0 {
			return 0, ErrNotFound
		}
		return 0, errClosing
	}
	return 0, table.Error(err)
}

// unmark removes closer's mark from scope (none, or another's, stays).
func (s *Service) unmark(ctx context.Context, scope, closer string) error {
	err := s.update(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: scopeKey(scope),
		UpdateExpression:          aws.String("REMOVE #closing, #closing_until"),
		ConditionExpression:       aws.String("#closing = :me"),
		ExpressionAttributeNames:  map[string]string{"#closing": closingAttr, "#closing_until": closingUntilAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": table.S(closer)}})
	if err != nil && !errors.Is(table.Error(err), table.ErrConditionFailed) {
		return table.Error(err)
	}
	return nil
}

// closeIfEmpty deletes scope (of kind, in app for a group) when no one
// but user holds an active grant on it (for an application: nor on any of
// its groups), race-free against new members: user's own grant is gone
// already (RemoveUser), a first read settles the common case (others are
// in it) with no write, and only a scope that looks empty is marked, read
// again and deleted under the mark (or unmarked when someone came).
func (s *Service) closeIfEmpty(ctx context.Context, user, kind, scope string) error {
	it, others, _, err := s.occupancy(ctx, user, kind, scope)
	if err != nil || it == nil || others {
		return err
	}
	for attempt := 0; ; attempt++ {
		done, err := s.closeOnce(ctx, user, it)
		if done || err != nil && !errors.Is(err, errClosing) {
			return err
		}
		if attempt == closeAttempts-1 {
			if err == nil {
				err = errClosing
			}
			return err // the stream tries the record again
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
}

// occupancy reads scope's partition (for an application with its group
// entries): the scope item (nil when gone), whether anyone but user holds
// an active grant on it (an application: or on one of its groups, by the
// mirrors), and an application's groups.
func (s *Service) occupancy(ctx context.Context, user, kind, scope string) (*scopeItem, bool, []string, error) {
	hi := memberPrefix + "\uffff"
	if kind == KindApplication {
		hi = groupEntry + "\uffff"
	}
	items, err := s.partition(ctx, scope, scopeSK, hi)
	if err != nil {
		return nil, false, nil, err
	}
	if len(items) == 0 || table.String(items[0], "sk") != scopeSK {
		return nil, false, nil, nil
	}
	it, err := unmarshalScope(items[0])
	if err != nil {
		return nil, false, nil, err
	}
	grants, err := grantsIn(items, kind, it.Application)
	if err != nil {
		return nil, false, nil, err
	}
	now := s.now()
	others := false
	for _, g := range grants {
		if g.User != user && g.active(now) {
			others = true
		}
	}
	var groupIDs []string
	for _, item := range items {
		if sk := table.String(item, "sk"); strings.HasPrefix(sk, groupEntry) {
			groupIDs = append(groupIDs, strings.TrimPrefix(sk, groupEntry))
		}
	}
	return it, others, groupIDs, nil
}

// closeOnce is one try of the close: mark, read again, then delete or
// unmark. done is false when the try must be repeated (the mark was lost).
func (s *Service) closeOnce(ctx context.Context, user string, it *scopeItem) (done bool, err error) {
	until, err := s.mark(ctx, it.ID, user)
	if errors.Is(err, ErrNotFound) {
		return true, nil // deleted already (a redelivered record): ScopeRemoved purges it
	}
	if err != nil {
		return false, err
	}
	marked := []string{it.ID}
	unmarkAll := func() error {
		for _, id := range marked {
			if err := s.unmark(ctx, id, user); err != nil {
				return err
			}
		}
		return nil
	}
	cur, others, groupIDs, err := s.occupancy(ctx, user, it.Kind, it.ID)
	if err != nil || cur == nil {
		return cur == nil && err == nil, err
	}
	if !others && it.Kind == KindApplication && len(groupIDs) > 0 {
		// A member of one of its groups joins by the group's item, not the
		// application's: the groups are marked too (no group is created in
		// a marked application), then the application read once more.
		for _, g := range groupIDs {
			if _, err := s.mark(ctx, g, user); errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				_ = unmarkAll()
				return false, err
			}
			marked = append(marked, g)
		}
		if cur, others, _, err = s.occupancy(ctx, user, it.Kind, it.ID); err != nil || cur == nil {
			return cur == nil && err == nil, err
		}
	}
	if others {
		s.log.InfoContext(ctx, "a member joined the scope being closed: it stays", "kind", it.Kind, "scope", it.ID, "user", user)
		return true, unmarkAll()
	}
	if time.Unix(until, 0).Sub(s.Now()) < closeMargin {
		return false, nil // too slow: mark again and look again
	}
	s.log.InfoContext(ctx, "deleting a scope its last member left", "kind", cur.Kind, "scope", cur.ID, "user", user)
	err = s.deleteScopeMarked(ctx, cur, user, until)
	if errors.Is(err, table.ErrConditionFailed) {
		return false, nil // the mark was lost: try again
	}
	if err != nil {
		return false, err
	}
	return true, s.purge(ctx, cur.Kind, cur.ID, cur.Application)
}

// markedCondition makes a scope item's Delete conditional on closer's
// mark, until until, still being on it.
func markedCondition(d *types.Delete, closer string, until int64) {
	d.ConditionExpression = aws.String("#closing = :me AND #closing_until = :until")
	d.ExpressionAttributeNames = map[string]string{"#closing": closingAttr, "#closing_until": closingUntilAttr}
	d.ExpressionAttributeValues = map[string]types.AttributeValue{":me": table.S(closer), ":until": table.N(until)}
}

// update is UpdateItem, tried again while a transaction holds the item
// (TransactionConflictException: a single-item write meeting, say, an
// add_user's check of the scope item).
func (s *Service) update(ctx context.Context, in *dynamodb.UpdateItemInput) error {
	for attempt := 0; ; attempt++ {
		_, err := s.db.UpdateItem(ctx, in)
		var tce *types.TransactionConflictException
		if err == nil || !errors.As(err, &tce) || attempt == table.ConflictRetries || ctx.Err() != nil {
			return err
		}
		time.Sleep(table.Backoff(attempt))
	}
}
