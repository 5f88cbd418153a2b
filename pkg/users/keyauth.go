package users

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
)

// What API keys (pkg/apikeys) need of users: a way to authenticate
// Authorization: Api-Key through Authenticate, the user read beside the
// key's own item, and the guard of a write that depends on the user.

// KeyAuthenticator checks an Authorization: Api-Key credential.
type KeyAuthenticator interface {
	// AuthenticateKey checks key and returns the principal of its user,
	// reading through read (the user and the key's item in one request).
	AuthenticateKey(ctx context.Context, key string, read UserReader) (*Principal, error)
	// KeyUser returns the user a well-formed key names, without a request
	// and without checking it; a malformed key is the 401 AuthenticateKey
	// answers.
	KeyUser(key string) (string, error)
}

// UserReader reads user id and the items of extra in one strongly
// consistent request; ErrNotFound when the user does not exist. The extra
// items that exist come back in no particular order.
type UserReader func(ctx context.Context, id string, extra ...map[string]types.AttributeValue) (*User, []map[string]types.AttributeValue, error)

// SetKeys makes Authenticate accept Authorization: Api-Key, checked by k.
func (s *Service) SetKeys(k KeyAuthenticator) { s.keys = k }

// errNoAPIKey is the answer to a key where no API keys are configured.
var errNoAPIKey = httpapi.Unauthorized("Invalid API key.")

// authenticateKey serves the Api-Key scheme of Authenticate.
func (s *Service) authenticateKey(ctx context.Context, cred string) (*Principal, error) {
	if s.keys == nil {
		return nil, errNoAPIKey
	}
	p, err := s.keys.AuthenticateKey(ctx, cred, s.GetWith)
	if err != nil {
		return nil, err
	}
	if !p.User.IsActive || p.User.Status != StatusEnabled {
		return nil, httpapi.Unauthorized("This account is disabled.")
	}
	httpapi.SetUser(ctx, p.User.UUID)
	return p, nil
}

// GetWith reads user id and the items of extra in one strongly consistent
// BatchGetItem (see UserReader).
func (s *Service) GetWith(ctx context.Context, id string, extra ...map[string]types.AttributeValue) (*User, []map[string]types.AttributeValue, error) {
	items, err := s.st.batchGet(ctx, append([]map[string]types.AttributeValue{userKey(id)}, extra...))
	if err != nil {
		return nil, nil, err
	}
	var u *User
	others := items[:0:0]
	want := UserPK(id)
	for _, it := range items {
		if pkOf(it) == want && skOf(it) == userSK {
			u = &User{}
			if err := attributevalue.UnmarshalMap(it, u); err != nil {
				return nil, nil, httpapi.Internal(err)
			}
			continue
		}
		others = append(others, it)
	}
	if u == nil {
		return nil, nil, ErrNotFound
	}
	return u, others, nil
}

// Unchanged is the transaction item that makes a write about u (such as
// creating one of its API keys) conditional on u as read: it still exists
// and its credential epoch has not moved (asRead).
func (s *Service) Unchanged(u *User) (types.TransactWriteItem, error) {
	expr, err := expression.NewBuilder().WithCondition(asRead(u)).Build()
	if err != nil {
		return types.TransactWriteItem{}, httpapi.Internal(err)
	}
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(s.st.table), Key: userKey(u.UUID),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}}, nil
}

// ErrCredentialsChanged answers a write whose user changed credentials (or
// went) after the request read it.
var ErrCredentialsChanged = httpapi.Unauthorized("The account's credentials changed; log in again.")

// ViaAPIKey reports whether the principal authenticated with an API key.
func (p *Principal) ViaAPIKey() bool { return p.APIKey != "" }

// BatchGetItem adds the extra keys to the authentication's read of the
// caller and its API key, the first time, as GetItem does for a token (as
// many as fit in one request; results reads the rest).
func (p *prefetchDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	req, ok := in.RequestItems[p.table]
	if p.done || len(p.extra) == 0 || len(in.RequestItems) != 1 || !ok || len(req.Keys) >= 100 {
		return p.DB.BatchGetItem(ctx, in, opts...)
	}
	p.done = true
	asked := map[string]bool{}
	for _, k := range req.Keys {
		asked[keyID(k)] = true
	}
	fold := p.fold(asked, 100-len(req.Keys))
	req.Keys = append(append([]map[string]types.AttributeValue{}, req.Keys...), fold...)
	res, err := p.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{p.table: req}}, opts...)
	if err != nil {
		return nil, err
	}
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}, UnprocessedKeys: map[string]types.KeysAndAttributes{}}
	for _, it := range res.Responses[p.table] {
		if asked[keyID(it)] {
			out.Responses[p.table] = append(out.Responses[p.table], it)
		}
		p.take(it, asked)
	}
	var mine []map[string]types.AttributeValue
	for _, k := range res.UnprocessedKeys[p.table].Keys {
		if asked[keyID(k)] {
			mine = append(mine, k)
		}
		p.leave(k, asked)
	}
	if len(mine) > 0 {
		out.UnprocessedKeys[p.table] = types.KeysAndAttributes{Keys: mine, ConsistentRead: req.ConsistentRead}
	}
	return out, nil
}
