// Package apikeys owns users' API keys (eContext's apikeys): issuing one
// (its secret shown once), listing and revoking them, and checking an
// Authorization: Api-Key credential for pkg/users' Authenticate. A key is
// an item in its user's partition (so it goes with the user), holding only
// the SHA-256 of the key, the credential epoch it was issued under and its
// expiry; it works only while its user exists, is enabled and keeps that
// epoch.
package apikeys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/users"
)

const (
	// MaxKeys is how many live keys a user may hold: each occupies one of
	// as many slots, so the bound holds under any concurrency.
	MaxKeys = 20
	// MaxName bounds a key's name (characters).
	MaxName = 100
	// touchEvery is how stale last_used_at may get: a key's use writes it
	// at most once per this period.
	touchEvery = time.Minute
	skPrefix   = "APIKEY#"
)

// Service issues, lists, revokes and checks API keys.
type Service struct {
	db    table.DB
	table string
	users *users.Service
	log   *slog.Logger
	// Now is the clock; tests replace it to check expiry.
	Now func() time.Time
}

var _ users.KeyAuthenticator = (*Service)(nil)

// New builds the service on db's table tableName, for the users of u.
func New(db table.DB, tableName string, u *users.Service, log *slog.Logger) *Service {
	return &Service{db: table.RetryConflicts{DB: db}, table: tableName, users: u, log: log, Now: time.Now}
}

func (s *Service) now() time.Time { return s.Now().UTC() }

// Key is an API key as it is shown: never its secret.
type Key struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// Created is the answer to a create: the only time the key is shown.
type Created struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Key       string     `json:"key"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// item is a key as the table holds it (pk USER#<uuid>, sk APIKEY#<slot>).
type item struct {
	ID      string    `dynamodbav:"id"`
	Name    string    `dynamodbav:"name"`
	Prefix  string    `dynamodbav:"prefix"`
	Hash    string    `dynamodbav:"key_hash"`
	Epoch   int64     `dynamodbav:"cred_epoch"`
	Created time.Time `dynamodbav:"created_at"`
	// Expires is the expiry in Unix milliseconds (0: none); TTL, in Unix
	// seconds, lets DynamoDB sweep the item after it.
	Expires int64 `dynamodbav:"expires,omitempty"`
	TTL     int64 `dynamodbav:"ttl,omitempty"`
	// LastUsed is the last use in Unix milliseconds (0: never), written at
	// most once per touchEvery.
	LastUsed int64 `dynamodbav:"last_used,omitempty"`
}

func slotSK(slot int) string { return fmt.Sprintf("%s%02d", skPrefix, slot) }

func slotKey(user string, slot int) map[string]types.AttributeValue {
	return table.Key(users.UserPK(user), slotSK(slot))
}

// live reports whether it still works for a user at epoch: issued under
// that epoch and not expired.
func (it *item) live(epoch int64, now time.Time) bool {
	return it.Epoch == epoch && (it.Expires == 0 || now.UnixMilli() < it.Expires)
}

func (it *item) view() Key {
	k := Key{ID: it.ID, Name: it.Name, Prefix: it.Prefix, CreatedAt: it.Created}
	if it.Expires != 0 {
		t := time.UnixMilli(it.Expires).UTC()
		k.ExpiresAt = &t
	}
	if it.LastUsed != 0 {
		t := time.UnixMilli(it.LastUsed).UTC().Truncate(time.Second)
		k.LastUsedAt = &t
	}
	return k
}

// slots decodes the key items among items, by slot.
func slots(items []map[string]types.AttributeValue) (map[int]*item, error) {
	out := map[int]*item{}
	for _, raw := range items {
		sk := table.String(raw, "sk")
		var slot int
		if _, err := fmt.Sscanf(strings.TrimPrefix(sk, skPrefix), "%d", &slot); err != nil || !strings.HasPrefix(sk, skPrefix) {
			continue
		}
		var it item
		if err := attributevalue.UnmarshalMap(raw, &it); err != nil {
			return nil, httpapi.Internal(err)
		}
		out[slot] = &it
	}
	return out, nil
}

// read reads user id and every slot of its keys in one request.
func (s *Service) read(ctx context.Context, read users.UserReader, id string) (*users.User, map[int]*item, error) {
	keys := make([]map[string]types.AttributeValue, MaxKeys)
	for i := range keys {
		keys[i] = slotKey(id, i)
	}
	u, items, err := read(ctx, id, keys...)
	if err != nil {
		return nil, nil, err
	}
	sl, err := slots(items)
	return u, sl, err
}

// List returns the live keys of user id, oldest first, without secrets:
// one strongly consistent request (the user, for its credential epoch,
// and the key slots). A user who does not exist has none.
func (s *Service) List(ctx context.Context, id string) ([]Key, error) {
	u, sl, err := s.read(ctx, s.users.GetWith, id)
	if errors.Is(err, users.ErrNotFound) {
		return []Key{}, nil
	}
	if err != nil {
		return nil, err
	}
	return liveKeys(u, sl, s.now()), nil
}

func liveKeys(u *users.User, sl map[int]*item, now time.Time) []Key {
	out := []Key{}
	for _, it := range sl {
		if it.live(u.CredEpoch, now) {
			out = append(out, it.view())
		}
	}
	sortKeys(out)
	return out
}

func sortKeys(ks []Key) {
	slices.SortFunc(ks, func(a, b Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Input is a create's body.
type Input struct {
	Name      *string `json:"name"`
	ExpiresAt *string `json:"expires_at"`
}

// validate checks in and returns the name and expiry.
func (in Input) validate(now time.Time) (string, *time.Time, error) {
	p := map[string][]string{}
	name := ""
	if in.Name != nil {
		name = strings.TrimSpace(*in.Name)
	}
	switch {
	case name == "":
		p["name"] = []string{"This field is required."}
	case utf8.RuneCountInString(name) > MaxName:
		p["name"] = []string{fmt.Sprintf("Ensure this field has no more than %d characters.", MaxName)}
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) >= 0:
		p["name"] = []string{"The name may not contain control characters."}
	}
	var exp *time.Time
	if in.ExpiresAt != nil && *in.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(*in.ExpiresAt))
		// The bound is on the instant in UTC, as it is stored and shown:
		// 9999-12-31T23:59:59-23:59 is in the year 10000, which no JSON
		// date carries.
		t = t.UTC().Truncate(time.Millisecond)
		switch {
		case err != nil:
			p["expires_at"] = []string{"Use an ISO 8601 date and time with its offset, such as 2030-01-31T12:00:00Z."}
		case !t.After(now):
			p["expires_at"] = []string{"The expiry must be in the future."}
		case t.Year() > 9999:
			p["expires_at"] = []string{"The expiry is too far in the future."}
		default:
			exp = &t
		}
	}
	if len(p) > 0 {
		return "", nil, httpapi.Invalid(p)
	}
	return name, exp, nil
}

// ErrTooMany answers a create past MaxKeys.
var ErrTooMany = httpapi.BadRequest(fmt.Sprintf("A user can hold at most %d API keys; revoke one first.", MaxKeys))

// Create issues a key for u, as read by this request: its secret is in the
// answer and nowhere else. The key takes a free slot (one never used, or
// holding a key that expired or was issued before a credential change) in
// one transaction conditional on the slot still being free and on u being
// unchanged (users.Unchanged), so of concurrent creates at most MaxKeys
// find a slot and no key outlives a credential change that raced it.
func (s *Service) Create(ctx context.Context, u *users.User, in Input) (*Created, error) {
	name, exp, err := in.validate(s.now())
	if err != nil {
		return nil, err
	}
	guard, err := s.users.Unchanged(u)
	if err != nil {
		return nil, err
	}
	for attempt := range 64 {
		if attempt > 0 {
			time.Sleep(time.Duration(1+rand.IntN(5*min(attempt, 10))) * time.Millisecond)
		}
		now := s.now()
		nu, sl, err := s.read(ctx, s.users.GetWith, u.UUID)
		if errors.Is(err, users.ErrNotFound) {
			return nil, httpapi.NotFound("")
		}
		if err != nil {
			return nil, err
		}
		if nu.CredEpoch != u.CredEpoch {
			return nil, users.ErrCredentialsChanged
		}
		var free []int
		for i := range MaxKeys {
			if it, ok := sl[i]; !ok || !it.live(u.CredEpoch, now) {
				free = append(free, i)
			}
		}
		if len(free) == 0 {
			return nil, ErrTooMany
		}
		slot := free[rand.IntN(len(free))]
		c, err := s.put(ctx, u, slot, name, exp, now, guard)
		if err == nil {
			return c, nil
		}
		failed, conditional := table.TxCanceled(err)
		switch {
		case conditional && len(failed) > 1 && failed[1]:
			return nil, users.ErrCredentialsChanged
		case conditional, table.OnlyConflicts(err):
			continue // the slot was taken meanwhile, or a conflict: read again
		}
		return nil, table.Error(err)
	}
	return nil, httpapi.Unavailable(errors.New("apikeys: slots kept changing"))
}

// put writes a new key into slot, conditional on the slot being free and
// on guard (its user unchanged).
func (s *Service) put(ctx context.Context, u *users.User, slot int, name string, exp *time.Time, now time.Time, guard types.TransactWriteItem) (*Created, error) {
	k, err := newKey(u.UUID, slot)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	it := item{ID: k.ID, Name: name, Prefix: prefix(k.Value), Hash: secret.Hash(k.Value), Epoch: u.CredEpoch,
		Created: now.Truncate(time.Second)}
	if exp != nil {
		it.Expires = exp.UnixMilli()
		it.TTL = exp.Unix() + 1
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	for name, v := range slotKey(u.UUID, slot) {
		av[name] = v
	}
	put := types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: av,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #e <> :e OR (attribute_exists(#x) AND #x <= :now)"),
		ExpressionAttributeNames:  map[string]string{"#e": "cred_epoch", "#x": "expires"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": table.N(u.CredEpoch), ":now": table.N(now.UnixMilli())}}}
	if _, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{put, guard}}); err != nil {
		return nil, err
	}
	v := it.view()
	return &Created{ID: v.ID, Name: v.Name, Key: k.Value, Prefix: v.Prefix, CreatedAt: v.CreatedAt, ExpiresAt: v.ExpiresAt}, nil
}

// Revoke ends u's key id at once: its item is deleted, in one transaction
// conditional on the item still being that key and on u being unchanged.
// A key that no longer works (expired, or from before a credential change)
// is not found, as it is not listed.
func (s *Service) Revoke(ctx context.Context, u *users.User, id string) error {
	guard, err := s.users.Unchanged(u)
	if err != nil {
		return err
	}
	_, sl, err := s.read(ctx, s.users.GetWith, u.UUID)
	if errors.Is(err, users.ErrNotFound) {
		return httpapi.NotFound("")
	}
	if err != nil {
		return err
	}
	slot := -1
	for i, it := range sl {
		if it.ID == id && it.live(u.CredEpoch, s.now()) {
			slot = i
		}
	}
	if slot < 0 {
		return httpapi.NotFound("No such API key.")
	}
	del := types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.table), Key: slotKey(u.UUID, slot),
		ConditionExpression: aws.String("#id = :id"), ExpressionAttributeNames: map[string]string{"#id": "id"}, ExpressionAttributeValues: map[string]types.AttributeValue{":id": table.S(id)}}}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{del, guard}})
	if failed, conditional := table.TxCanceled(err); conditional {
		if failed[0] {
			return httpapi.NotFound("No such API key.") // revoked concurrently
		}
		return users.ErrCredentialsChanged
	}
	if err != nil {
		return table.Error(err)
	}
	return nil
}

var (
	errBadKey     = httpapi.Unauthorized("Invalid API key.")
	errExpiredKey = httpapi.Unauthorized("API key has expired.")
)

// AuthenticateKey checks a presented key: one strongly consistent read of
// its user and its slot (read), the hash compared in constant time, the
// key's epoch against the user's, and its expiry. A bad key is a 401 and
// counts toward no lockout. A key's use is recorded (last_used_at) at most
// once per touchEvery, by a conditional write that never fails the request.
func (s *Service) AuthenticateKey(ctx context.Context, cred string, read users.UserReader) (*users.Principal, error) {
	k, err := parseKey(cred)
	if err != nil {
		return nil, errBadKey
	}
	u, items, err := read(ctx, k.User, slotKey(k.User, k.Slot))
	if errors.Is(err, users.ErrNotFound) {
		return nil, errBadKey
	}
	if err != nil {
		return nil, err
	}
	sl, err := slots(items)
	if err != nil {
		return nil, err
	}
	it := sl[k.Slot]
	if it == nil || it.ID != k.ID || !secret.Matches(k.Value, it.Hash) || it.Epoch != u.CredEpoch {
		return nil, errBadKey
	}
	now := s.now()
	if !it.live(u.CredEpoch, now) {
		return nil, errExpiredKey
	}
	if now.UnixMilli()-it.LastUsed >= touchEvery.Milliseconds() {
		s.touch(ctx, k, now)
	}
	return &users.Principal{User: u, APIKey: it.ID}, nil
}

// KeyUser returns the user a well-formed key names, without a request
// (the id, the user and the slot are not secret); AuthenticateKey checks
// it.
func (s *Service) KeyUser(cred string) (string, error) {
	k, err := parseKey(cred)
	if err != nil {
		return "", errBadKey
	}
	return k.User, nil
}

// touch records the key's use, unless another request did within
// touchEvery; a failure is only logged (with no part of the key).
func (s *Service) touch(ctx context.Context, k presented, now time.Time) {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.table), Key: slotKey(k.User, k.Slot),
		UpdateExpression:          aws.String("SET #lu = :now"),
		ConditionExpression:       aws.String("#id = :id AND (attribute_not_exists(#lu) OR #lu <= :stale)"),
		ExpressionAttributeNames:  map[string]string{"#id": "id", "#lu": "last_used"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": table.N(now.UnixMilli()), ":id": table.S(k.ID), ":stale": table.N(now.Add(-touchEvery).UnixMilli())}})
	if err != nil && !errors.Is(table.Error(err), table.ErrConditionFailed) && s.log != nil {
		s.log.WarnContext(ctx, "api key use not recorded", "key_id", k.ID, "cause", err.Error())
	}
}
