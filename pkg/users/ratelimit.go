package users

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
)

// Per-IP rate limits are fixed-window counters kept in the table, one item
// per action, client IP and window, expiring by TTL, so the limit holds
// across Lambda instances. Where an operation has a request budget the count
// rides inside its own read and write.
const (
	ActionSignUp = "signup"
	ActionLogin  = "login"
	ActionResend = "resend"
	ActionReset  = "reset"
)

// rate is one request's counter: its item key, its limit and when its
// window ends.
type rate struct {
	key   map[string]types.AttributeValue
	limit int
	end   time.Time
}

// rateFor returns the counter for action from ip, or nil when limits are
// off or the IP is unknown.
func (s *Service) rateFor(action, ip string) *rate {
	rl := s.cfg.RateLimits
	if !rl.Enabled || ip == "" {
		return nil
	}
	var l config.RateLimit
	switch action {
	case ActionSignUp:
		l = rl.SignUp
	case ActionLogin:
		l = rl.Login
	case ActionResend:
		l = rl.Resend
	case ActionReset:
		l = rl.Reset
	}
	now := s.Now().UTC()
	start := now.Truncate(l.Window)
	return &rate{
		key:   key("RATE#"+action+"#"+ip+"#"+strconv.FormatInt(start.Unix(), 10), "RATE"),
		limit: l.Count,
		end:   start.Add(l.Window),
	}
}

// refused is the 429 for a full window.
func (r *rate) refused(now time.Time) error {
	wait := int(math.Ceil(r.end.Sub(now).Seconds()))
	return httpapi.TooManyRequests("Too many requests from your address; try again later.", wait)
}

// item is the write that counts one request; guarded, it is refused when
// the window is full.
func (r *rate) item(table string, guarded bool) types.TransactWriteItem {
	u := &types.Update{TableName: aws.String(table), Key: r.key,
		UpdateExpression:         aws.String("ADD #n :one SET #ttl = if_not_exists(#ttl, :ttl)"),
		ExpressionAttributeNames: map[string]string{"#n": "n", "#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": n(1), ":ttl": n(r.end.Add(time.Minute).Unix()),
		}}
	if guarded {
		u.ConditionExpression = aws.String("attribute_not_exists(#n) OR #n < :limit")
		u.ExpressionAttributeValues[":limit"] = n(int64(r.limit))
	}
	return types.TransactWriteItem{Update: u}
}

// hit counts one request on its own (for operations without a budget, or
// the failure paths of those with one) and refuses it past the limit.
func (s *Service) hit(ctx context.Context, r *rate) error {
	if r == nil {
		return nil
	}
	it := r.item(s.st.table, true).Update
	_, err := s.st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: it.TableName, Key: it.Key,
		UpdateExpression: it.UpdateExpression, ConditionExpression: it.ConditionExpression,
		ExpressionAttributeNames: it.ExpressionAttributeNames, ExpressionAttributeValues: it.ExpressionAttributeValues})
	if err != nil {
		if errors.Is(dbError(err), errConditionFailed) {
			return r.refused(s.Now().UTC())
		}
		return dbError(err)
	}
	return nil
}

// writeUser applies upd to the user's item under cond. With a rate counter
// the two writes go in one transaction, which returns no item: the caller
// gets nil and applies what it changed itself.
func (st *store) writeUser(ctx context.Context, id string, upd expression.UpdateBuilder, cond expression.ConditionBuilder, r *rate) (*User, error) {
	if r == nil {
		return st.update(ctx, id, upd, cond)
	}
	item, err := st.userUpdate(id, upd, cond)
	if err != nil {
		return nil, err
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		item,
		r.item(st.table, false),
	}})
	if err != nil {
		if failed, conditional := txCanceled(err); conditional && failed[0] {
			return nil, errConditionFailed
		}
		return nil, dbError(err)
	}
	return nil, nil
}
