package users

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
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
	// ActionChangeEmail is counted per IP; actionChangeEmailUser per user
	// and actionMailAddress per address mailed (keyed by the uuid or a hash
	// of the address in place of the IP).
	ActionChangeEmail     = "change_email"
	actionChangeEmailUser = "change_email_user"
	actionMailAddress     = "mail"
)

// rate is one request's counter: its item key, its limit and when its
// window ends.
type rate struct {
	key   map[string]types.AttributeValue
	limit int
	end   time.Time
	decoy bool // a counter no one reads (auth.go decoyRate)
	// guard makes the count, where it rides in another write's
	// transaction, refuse that write when the window is full.
	guard bool
	// giveBack makes the write take one request off the count instead.
	giveBack bool
	// message is the 429's sentence, when not the per-IP one.
	message string
	// full remembers the windows this instance saw refuse (Service.full).
	full *fullWindows
}

// fullWindows remembers, per function instance, the windows a guarded
// count was refused in, until they end: a window only fills, so a client
// past its limit is refused again with no DynamoDB request and no hash,
// and a flood costs the table nothing after its first refusal. (A Basic
// success's refund can reopen a slot; this instance then refuses until the
// window ends, which errs on the safe side.)
type fullWindows struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// maxFullWindows bounds the memory a flood from many addresses can take.
const maxFullWindows = 10000

func (f *fullWindows) add(k string, end time.Time, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) >= maxFullWindows {
		for k, e := range f.m {
			if !now.Before(e) {
				delete(f.m, k)
			}
		}
		if len(f.m) >= maxFullWindows {
			return
		}
	}
	f.m[k] = end
}

func (f *fullWindows) has(k string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	end, ok := f.m[k]
	return ok && now.Before(end)
}

// knownFull reports whether this instance already saw r's window refuse.
func (r *rate) knownFull(now time.Time) bool {
	return r != nil && r.full != nil && !r.decoy && r.full.has(pkOf(r.key), now)
}

// exact returns r (nil stays nil) guarded: see writeUser.
func (r *rate) exact() *rate {
	if r == nil {
		return nil
	}
	g := *r
	g.guard = true
	return &g
}

// refund returns r (nil stays nil) as the write that gives one request
// back to its window: a Basic success's (auth.go).
func (r *rate) refund() *rate {
	if r == nil {
		return nil
	}
	g := *r
	g.giveBack = true
	return &g
}

// isRefused reports whether err is a rate limit's or the lockout's 429.
func isRefused(err error) bool {
	e, ok := httpapi.AsError(err)
	return ok && e.Status == http.StatusTooManyRequests
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
	case ActionChangeEmail:
		l = rl.ChangeEmail
	case actionChangeEmailUser:
		l = rl.ChangeEmailUser
	case actionMailAddress:
		l = rl.MailAddress
	}
	now := s.Now().UTC()
	start := now.Truncate(l.Window)
	return &rate{
		key:   key("RATE#"+action+"#"+ip+"#"+strconv.FormatInt(start.Unix(), 10), "RATE"),
		limit: l.Count,
		end:   start.Add(l.Window),
		full:  s.full,
	}
}

// rateForAddress is the counter of mails sent on request to an address
// (sign-up, resend, reset), nil when limits are off. The address is kept
// as a hash: rate items are not a directory of who asked for what.
func (s *Service) rateForAddress(email string) *rate {
	r := s.rateFor(actionMailAddress, hashedKey(email))
	if r != nil {
		r.message = "Too many mails to this address for now; try again later."
	}
	return r
}

// hashedKey is how an address or a user's uuid appears in a counter's key:
// hashed, so a deleted user's counters (which expire by TTL) name nobody.
func hashedKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:16])
}

// hitAll counts one request on each counter (nil ones are off) in one
// request, and refuses it, counting nothing, when any window is full.
func (s *Service) hitAll(ctx context.Context, rs ...*rate) error {
	var on []*rate
	for _, r := range rs {
		if r != nil {
			on = append(on, r)
		}
	}
	if len(on) < 2 {
		for _, r := range on {
			return s.hit(ctx, r)
		}
		return nil
	}
	for _, r := range on {
		if now := s.Now().UTC(); r.knownFull(now) {
			return r.refused(now)
		}
	}
	items := make([]types.TransactWriteItem, len(on))
	for i, r := range on {
		items[i] = r.item(s.st.table, true)
	}
	_, err := s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	if failed, conditional := txCanceled(err); conditional {
		for i, f := range failed {
			if f {
				return on[i].refused(s.Now().UTC())
			}
		}
	}
	return dbError(err)
}

// refused is the 429 for a full window.
func (r *rate) refused(now time.Time) error {
	if r.full != nil && !r.decoy {
		r.full.add(pkOf(r.key), r.end, now)
	}
	wait := int(math.Ceil(r.end.Sub(now).Seconds()))
	msg := r.message
	if msg == "" {
		msg = "Too many requests from your address; try again later."
	}
	return httpapi.TooManyRequests(msg, wait)
}

// item is the write that counts one request; guarded, it is refused when
// the window is full.
func (r *rate) item(table string, guarded bool) types.TransactWriteItem {
	one := int64(1)
	if r.giveBack {
		one, guarded = -1, false
	}
	u := &types.Update{TableName: aws.String(table), Key: r.key,
		UpdateExpression:         aws.String("ADD #n :one SET #ttl = if_not_exists(#ttl, :ttl)"),
		ExpressionAttributeNames: map[string]string{"#n": "n", "#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": n(one), ":ttl": n(r.end.Add(time.Minute).Unix()),
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
	if now := s.Now().UTC(); r.knownFull(now) {
		return r.refused(now)
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

// writeUser applies upd to u's item under cond (and asRead(u)). With a rate
// counter the two writes go in one transaction, which returns no item: the
// caller gets nil and applies what it changed itself.
func (st *store) writeUser(ctx context.Context, u *User, upd expression.UpdateBuilder, cond expression.ConditionBuilder, r *rate, queued ...types.TransactWriteItem) (*User, error) {
	if r == nil && len(queued) == 0 {
		return st.update(ctx, u, upd, cond)
	}
	item, err := st.userUpdate(u, upd, cond)
	if err != nil {
		return nil, err
	}
	items := []types.TransactWriteItem{item}
	if r != nil {
		items = append(items, r.item(st.table, r.guard && !r.giveBack))
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(items, queued...)})
	if err != nil {
		if failed, conditional := txCanceled(err); conditional {
			if failed[0] || r == nil {
				return nil, errConditionFailed
			}
			return nil, r.refused(time.Now().UTC())
		}
		return nil, dbError(err)
	}
	return nil, nil
}
