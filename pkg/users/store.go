package users

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/example/accounts/pkg/httpapi"
)

// DB is the part of the DynamoDB client the service uses; tests wrap it to
// count requests or inject faults.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

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

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

// NormalizeEmail is the form an email is compared and claimed in: the
// canonical form ValidEmail gives, or, for a string it refuses (a filter,
// a login that is a username), the trimmed lower case.
func NormalizeEmail(e string) string {
	if c, msg := ValidEmail(e); msg == "" {
		return c
	}
	return strings.ToLower(strings.TrimSpace(e))
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

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
	item := map[string]types.AttributeValue{"pk": k["pk"], "sk": k["sk"], "user": str(user)}
	if ttl > 0 {
		item["ttl"] = n(ttl)
	}
	return item
}

// claimFree is the condition for taking a claim: nobody holds it, or the
// holder was an unactivated account whose TTL has passed but which DynamoDB
// has not yet swept.
const claimFree = "attribute_not_exists(pk) OR (attribute_exists(#ttl) AND #ttl < :now)"

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

// takeClaim is the transaction item that claims k for user (see claimFree).
func (st *store) takeClaim(k map[string]types.AttributeValue, user string, ttl int64, now time.Time) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: claimItem(k, user, ttl),
		ConditionExpression: aws.String(claimFree), ExpressionAttributeNames: map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(now.Unix())}}}
}

// takeClaimFrom is the transaction item that claims k for user over from,
// an unverified account being replaced (service.go create).
func (st *store) takeClaimFrom(k map[string]types.AttributeValue, user, from string, ttl int64) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: claimItem(k, user, ttl),
		ConditionExpression: aws.String("#user = :from"), ExpressionAttributeNames: map[string]string{"#user": "user"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":from": str(from)}}}
}

// releaseClaim is the transaction item that deletes user's claim k; a claim
// already swept by TTL is no failure, one held by someone else is.
func (st *store) releaseClaim(k map[string]types.AttributeValue, user string) types.TransactWriteItem {
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: k,
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR #user = :u"),
		ExpressionAttributeNames: map[string]string{"#user": "user"}, ExpressionAttributeValues: map[string]types.AttributeValue{":u": str(user)}}}
}

// keepClaim is the transaction item that makes user's claim k permanent
// (its account was activated).
func (st *store) keepClaim(k map[string]types.AttributeValue, user string) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(st.table), Key: k,
		UpdateExpression: aws.String("REMOVE #ttl"), ConditionExpression: aws.String("#user = :u"),
		ExpressionAttributeNames: map[string]string{"#ttl": "ttl", "#user": "user"}, ExpressionAttributeValues: map[string]types.AttributeValue{":u": str(user)}}}
}

// exists is the condition that the user's item is there.
func exists() expression.ConditionBuilder { return expression.AttributeExists(expression.Name("pk")) }

// bump adds the version and modified time every change carries.
func bump(upd expression.UpdateBuilder, now time.Time) expression.UpdateBuilder {
	return upd.Add(expression.Name("version"), expression.Value(1)).
		Set(expression.Name("modified"), expression.Value(now.UTC()))
}

// errConditionFailed is returned when a conditional write's condition fails.
var errConditionFailed = errors.New("users: condition failed")

// txCanceled tells which items of a canceled transaction failed their condition.
func txCanceled(err error) ([]bool, bool) {
	var tc *types.TransactionCanceledException
	if !errors.As(err, &tc) {
		return nil, false
	}
	failed := make([]bool, len(tc.CancellationReasons))
	any := false
	for i, r := range tc.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			failed[i] = true
			any = true
		}
	}
	return failed, any
}

// dbError maps a DynamoDB failure (after the SDK's own retries) to the
// contract: a failed condition stays a sentinel, throttling and outages are
// 503 with Retry-After, anything else is a 500 whose cause is only logged.
func dbError(err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return errConditionFailed
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return httpapi.Unavailable(err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
			"InternalServerError", "ServiceUnavailable", "TransactionInProgressException", "LimitExceededException",
			// A single-item write to an item a transaction holds that moment.
			"TransactionConflictException":
			return httpapi.Unavailable(err)
		}
		if _, conditional := txCanceled(err); conditional {
			return err
		}
		var tc *types.TransactionCanceledException
		if errors.As(err, &tc) {
			// Canceled for throttling or a conflicting transaction: retryable.
			return httpapi.Unavailable(err)
		}
		return httpapi.Internal(err)
	}
	// Network failures (connection refused, reset, retries exhausted).
	return httpapi.Unavailable(err)
}
