package users

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
)

// DB is the part of the DynamoDB client the service uses (table.DB).
type DB = table.DB

// Item keys. A user item, and one claim item per email, per username and
// per remote identity (the identity source's sub) that makes them unique
// through conditional writes.
const (
	userPrefix      = "USER#"
	emailPrefix     = "EMAIL#"
	usernamePrefix  = "USERNAME#"
	remoteSubPrefix = "REMOTESUB#"
	slugPrefix      = "SLUG#"
	userSK          = "USER"
	claimSK         = "CLAIM"
)

// ErrNotFound is returned when an item does not exist.
var ErrNotFound = errors.New("users: not found")

func userKey(id string) map[string]types.AttributeValue {
	return key(userPrefix+id, userSK)
}

func emailKey(email string) map[string]types.AttributeValue {
	return key(emailPrefix+NormalizeEmail(email), claimSK)
}

func usernameKey(username string) map[string]types.AttributeValue {
	return key(usernamePrefix+username, claimSK)
}

// slugKey is the claim of a slug, compared case-insensitively.
func slugKey(slug string) map[string]types.AttributeValue {
	return key(slugPrefix+strings.ToLower(slug), claimSK)
}

// slugClaims are the transaction items that make u's kept slug's claim
// item do what f does to a claim (accounts from before slugs keep none).
func slugClaims(u *User, f func(k map[string]types.AttributeValue, user string) types.TransactWriteItem) []types.TransactWriteItem {
	if u.Slug == "" {
		return nil
	}
	return []types.TransactWriteItem{f(slugKey(u.Slug), u.UUID)}
}

func remoteSubKey(sub string) map[string]types.AttributeValue {
	return key(remoteSubPrefix+sub, claimSK)
}

func key(pk, sk string) map[string]types.AttributeValue { return table.Key(pk, sk) }

// NormalizeEmail is the form an email is compared and claimed in: the
// canonical form ValidEmail gives, or, for a string it refuses (a filter,
// a login that is a username), the trimmed lower case.
func NormalizeEmail(e string) string {
	if c, msg := ValidEmail(e); msg == "" {
		return c
	}
	return strings.ToLower(strings.TrimSpace(e))
}

func str(v string) types.AttributeValue { return table.S(v) }

func n(v int64) types.AttributeValue { return table.N(v) }

// store is the DynamoDB persistence of users.
type store struct {
	db    DB
	table string
	// countShards is how many shards each list's count has (list.go).
	countShards int
}

func (st *store) marshalUser(u *User) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(u)
	if err != nil {
		return nil, err
	}
	for k, v := range userKey(u.UUID) {
		item[k] = v
	}
	setListing(item, u)
	return item, nil
}

func claimItem(k map[string]types.AttributeValue, user string, ttl int64) map[string]types.AttributeValue {
	return table.ClaimItem(k, user, ttl)
}

// get reads a user with a strongly consistent read.
func (st *store) get(ctx context.Context, id string) (*User, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: userKey(id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, dbError(err)
	}
	if out.Item == nil {
		return nil, ErrNotFound
	}
	var u User
	if err := attributevalue.UnmarshalMap(out.Item, &u); err != nil {
		return nil, httpapi.Internal(err)
	}
	return &u, nil
}

// lookup finds the uuid that holds an email or a username claim (email
// first), in one request, login normalised as each is (NormalizeEmail,
// NormalizeUsername).
func (st *store) lookup(ctx context.Context, login string) (string, error) {
	keys := []map[string]types.AttributeValue{emailKey(login), usernameKey(NormalizeUsername(login))}
	out, err := st.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
		RequestItems: map[string]types.KeysAndAttributes{st.table: {Keys: keys, ConsistentRead: aws.Bool(true)}},
	})
	if err != nil {
		return "", dbError(err)
	}
	if len(out.UnprocessedKeys) > 0 {
		return "", httpapi.Unavailable(errors.New("batch get left keys unprocessed"))
	}
	var byEmail, byName string
	for _, it := range out.Responses[st.table] {
		pk, _ := it["pk"].(*types.AttributeValueMemberS)
		u, _ := it["user"].(*types.AttributeValueMemberS)
		if pk == nil || u == nil {
			continue
		}
		if strings.HasPrefix(pk.Value, emailPrefix) {
			byEmail = u.Value
		} else {
			byName = u.Value
		}
	}
	switch {
	case byEmail != "":
		return byEmail, nil
	case byName != "":
		return byName, nil
	}
	return "", ErrNotFound
}

// The one guard of every write to a user's item: the item still exists
// (no write re-creates a deleted user) and its credential epoch is the one
// the request read and verified, so nothing decided on credentials that
// have since changed (a reset, a password change, a disable, a confirmed
// email change) is written. Every user write goes through update or
// userUpdate, and both add it.
func asRead(u *User) expression.ConditionBuilder {
	return exists().And(epochIs(u.CredEpoch))
}

// epochIs is the condition that the credential epoch is e (absent on items
// written before epochs existed, which read as 0).
func epochIs(e int64) expression.ConditionBuilder {
	c := expression.Name("cred_epoch").Equal(expression.Value(e))
	if e == 0 {
		c = expression.AttributeNotExists(expression.Name("cred_epoch")).Or(c)
	}
	return c
}

// guarded is cond (when set) under asRead(u).
func guarded(u *User, cond expression.ConditionBuilder) expression.ConditionBuilder {
	if !cond.IsSet() {
		return asRead(u)
	}
	return asRead(u).And(cond)
}

// newEpoch is the part of a write that ends everything issued under the
// current credential epoch: the epoch moves on, the token goes, and so do
// every emailed code and a pending email change.
func newEpoch(upd expression.UpdateBuilder) expression.UpdateBuilder {
	return revokeToken(upd.Add(expression.Name("cred_epoch"), expression.Value(1))).
		Remove(expression.Name("code_activation")).Remove(expression.Name("code_reset")).
		Remove(expression.Name("code_email_change")).Remove(expression.Name("requested_email"))
}

// update applies upd to u's item under cond (and asRead(u)) and returns the
// new item.
func (st *store) update(ctx context.Context, u *User, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (*User, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(guarded(u, cond)).Build()
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: userKey(u.UUID),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		return nil, dbError(err)
	}
	var nu User
	if err := attributevalue.UnmarshalMap(out.Attributes, &nu); err != nil {
		return nil, httpapi.Internal(err)
	}
	return &nu, nil
}

// userUpdate is the transaction item that applies upd to u's item under
// cond (and asRead(u)).
func (st *store) userUpdate(u *User, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (types.TransactWriteItem, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(guarded(u, cond)).Build()
	if err != nil {
		return types.TransactWriteItem{}, httpapi.Internal(err)
	}
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(st.table), Key: userKey(u.UUID),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}}, nil
}

// takeClaim is the transaction item that claims k for user.
func (st *store) takeClaim(k map[string]types.AttributeValue, user string, ttl int64, now time.Time) types.TransactWriteItem {
	return table.TakeClaim(st.table, k, user, ttl, now)
}

// takeClaimFrom is the transaction item that claims k for user over from,
// an unverified account being replaced (service.go create).
func (st *store) takeClaimFrom(k map[string]types.AttributeValue, user, from string, ttl int64) types.TransactWriteItem {
	return table.TakeClaimFrom(st.table, k, user, from, ttl)
}

// releaseClaim is the transaction item that deletes user's claim k.
func (st *store) releaseClaim(k map[string]types.AttributeValue, user string) types.TransactWriteItem {
	return table.ReleaseClaim(st.table, k, user)
}

// keepClaim is the transaction item that makes user's claim k permanent
// (its account was activated).
func (st *store) keepClaim(k map[string]types.AttributeValue, user string) types.TransactWriteItem {
	return table.KeepClaim(st.table, k, user)
}

// exists is the condition that the user's item is there.
func exists() expression.ConditionBuilder { return expression.AttributeExists(expression.Name("pk")) }

// bump adds the version and modified time every change carries.
func bump(upd expression.UpdateBuilder, now time.Time) expression.UpdateBuilder {
	return upd.Add(expression.Name("version"), expression.Value(1)).
		Set(expression.Name("modified"), expression.Value(now.UTC()))
}

// errConditionFailed is returned when a conditional write's condition fails.
var errConditionFailed = table.ErrConditionFailed

// txCanceled tells which items of a canceled transaction failed their condition.
func txCanceled(err error) ([]bool, bool) { return table.TxCanceled(err) }

// dbError maps a DynamoDB failure to the contract (table.Error).
func dbError(err error) error { return table.Error(err) }
