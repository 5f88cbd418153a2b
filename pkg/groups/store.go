package groups

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
)

// Items (docs/GROUPS.md "Storage"). A scope's partition SCOPE#<id> holds
// the scope (sk #SCOPE) and its grants (M#<user>); an application's also
// holds a mirror of its groups' grants (N#<user>#<group>, for the
// customer_uuid filter) and an entry per group (~G#<group>, for the
// cascade). The catalogue SCOPES#<kind>/<id> lists every scope of a kind
// for staff. A user's grants, denormalised for their permissions, are one
// item GRANTS#<user>/GRANTS: an attribute g_<scope> per grant and the
// count n that holds the per-user limit.
const (
	scopePrefix     = "SCOPE#"
	scopeSK         = "#SCOPE"
	memberPrefix    = "M#"
	mirrorPrefix    = "N#"
	groupEntry      = "~G#"
	cataloguePrefix = "SCOPES#"
	grantsPrefix    = "GRANTS#"
	grantsSK        = "GRANTS"
	grantAttr       = "g_"
)

func scopeKey(id string) map[string]types.AttributeValue {
	return table.Key(scopePrefix+id, scopeSK)
}

func memberKey(scope, user string) map[string]types.AttributeValue {
	return table.Key(scopePrefix+scope, memberPrefix+user)
}

func mirrorKey(app, user, group string) map[string]types.AttributeValue {
	return table.Key(scopePrefix+app, mirrorPrefix+user+"#"+group)
}

func groupEntryKey(app, group string) map[string]types.AttributeValue {
	return table.Key(scopePrefix+app, groupEntry+group)
}

func catalogueKey(kind, id string) map[string]types.AttributeValue {
	return table.Key(cataloguePrefix+kind, id)
}

func grantsKey(user string) map[string]types.AttributeValue {
	return table.Key(grantsPrefix+user, grantsSK)
}

// IsScopeItem reports whether pk/sk is a scope's own item (the stream
// follows its removal and renames).
func IsScopeItem(pk, sk string) bool { return strings.HasPrefix(pk, scopePrefix) && sk == scopeSK }

// IsGrantItem reports whether pk/sk is a scope-side grant (the stream
// follows its expiry by TTL).
func IsGrantItem(pk, sk string) bool {
	return strings.HasPrefix(pk, scopePrefix) && strings.HasPrefix(sk, memberPrefix)
}

// scopeItem is a stored application or group.
type scopeItem struct {
	Kind        string    `dynamodbav:"kind"`
	ID          string    `dynamodbav:"id"`
	Name        string    `dynamodbav:"name"`
	Description string    `dynamodbav:"description"`
	Status      string    `dynamodbav:"status"`
	CustomData  string    `dynamodbav:"custom_data,omitempty"`
	CreatedAt   time.Time `dynamodbav:"created_at"`
	ModifiedAt  time.Time `dynamodbav:"modified_at"`
	Application string    `dynamodbav:"application,omitempty"` // a group's
	Groups      int       `dynamodbav:"groups,omitempty"`      // an application's count of groups
	Version     int64     `dynamodbav:"version"`
}

func (it *scopeItem) scope(base string) Scope {
	path := "/api/applications/application/"
	if it.Kind == KindGroup {
		path = "/api/groups/group/"
	}
	var cd json.RawMessage
	if it.CustomData != "" {
		cd = json.RawMessage(it.CustomData)
	} else {
		cd = json.RawMessage("null")
	}
	return Scope{ID: it.ID, Name: it.Name, Description: it.Description, Status: it.Status, CustomData: cd,
		CreatedAt: EContextTime(it.CreatedAt), ModifiedAt: EContextTime(it.ModifiedAt), Href: base + path + it.ID}
}

// grantItem is a scope-side grant (M#) or its mirror in the application
// (N#); the user-side copy is userGrant. The user, the scope and its kind
// come from the key (grantsIn), so that a grant stays small: a Query reads
// about 7,000 of them per MB.
type grantItem struct {
	User        string     `dynamodbav:"-"`
	ScopeType   string     `dynamodbav:"-"`
	ScopeID     string     `dynamodbav:"-"`
	Application string     `dynamodbav:"-"`
	Role        string     `dynamodbav:"r"`
	Created     time.Time  `dynamodbav:"c"`
	CreatedBy   string     `dynamodbav:"b,omitempty"`
	Expires     *time.Time `dynamodbav:"e,omitempty"`
	TTL         int64      `dynamodbav:"ttl,omitempty"`
}

// active reports whether the grant counts at now: an expired one stops
// counting at once, before its TTL removes it.
func (g *grantItem) active(now time.Time) bool { return g.Expires == nil || g.Expires.After(now) }

// userGrant is a grant as the user's item keeps it: everything its
// Permission shows, names included, so permissions are one read.
type userGrant struct {
	Role              string     `dynamodbav:"role"`
	ScopeType         string     `dynamodbav:"scope_type"`
	ScopeName         string     `dynamodbav:"scope_name"`
	CustomerUUID      string     `dynamodbav:"customer_uuid"`
	CustomerName      string     `dynamodbav:"customer_name"`
	Created           time.Time  `dynamodbav:"created"`
	CreatedBy         string     `dynamodbav:"created_by,omitempty"`
	CreatedByUsername string     `dynamodbav:"created_by_username,omitempty"`
	CreatedByFullName string     `dynamodbav:"created_by_full_name,omitempty"`
	Expires           *time.Time `dynamodbav:"expiration_time,omitempty"`
}

func (g *userGrant) active(now time.Time) bool { return g.Expires == nil || g.Expires.After(now) }

// userGrants reads a user-side item: its grants by scope id, and n.
func userGrants(item map[string]types.AttributeValue) (map[string]*userGrant, error) {
	out := map[string]*userGrant{}
	for k, v := range item {
		if !strings.HasPrefix(k, grantAttr) {
			continue
		}
		var g userGrant
		if err := attributevalue.Unmarshal(v, &g); err != nil {
			return nil, httpapi.Internal(err)
		}
		out[strings.TrimPrefix(k, grantAttr)] = &g
	}
	return out, nil
}

func (s *Service) getItem(ctx context.Context, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, table.Error(err)
	}
	return out.Item, nil
}

// getScope reads a scope; ErrNotFound when there is none of that kind.
func (s *Service) getScope(ctx context.Context, kind, id string) (*scopeItem, error) {
	item, err := s.getItem(ctx, scopeKey(id))
	if err != nil {
		return nil, err
	}
	if item == nil {
		return nil, ErrNotFound
	}
	var it scopeItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, httpapi.Internal(err)
	}
	if kind != "" && it.Kind != kind {
		return nil, ErrNotFound
	}
	return &it, nil
}

// grantsOf reads a user's grants (one strongly consistent GetItem).
func (s *Service) grantsOf(ctx context.Context, user string) (map[string]*userGrant, error) {
	item, err := s.getItem(ctx, grantsKey(user))
	if err != nil {
		return nil, err
	}
	return userGrants(item)
}

// queryAll reads every item of a Query (one request per MB).
func (s *Service) queryAll(ctx context.Context, in *dynamodb.QueryInput) ([]map[string]types.AttributeValue, error) {
	in.TableName = aws.String(s.table)
	var items []map[string]types.AttributeValue
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, table.Error(err)
		}
		items = append(items, page.Items...)
	}
	return items, nil
}

// partition reads a scope's partition, or the part of it from sk lo to
// hi (inclusive).
func (s *Service) partition(ctx context.Context, scope, lo, hi string) ([]map[string]types.AttributeValue, error) {
	return s.queryAll(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": table.S(scopePrefix + scope), ":lo": table.S(lo), ":hi": table.S(hi)},
		ConsistentRead:            aws.Bool(true),
	})
}

// grantsIn are the items of items that are grants (M# or N#) of a
// partition whose scope is of kind (for a group's, app is its
// application when known).
func grantsIn(items []map[string]types.AttributeValue, kind, app string) ([]*grantItem, error) {
	var out []*grantItem
	for _, it := range items {
		g, err := grantOf(it, kind, app)
		if err != nil {
			return nil, err
		}
		if g != nil {
			out = append(out, g)
		}
	}
	return out, nil
}

// grantOf reads a grant item (nil when item is none), its user and scope
// from its key.
func grantOf(item map[string]types.AttributeValue, kind, app string) (*grantItem, error) {
	pk, sk := table.String(item, "pk"), table.String(item, "sk")
	scope := strings.TrimPrefix(pk, scopePrefix)
	var g grantItem
	switch {
	case strings.HasPrefix(sk, memberPrefix):
		g.User, g.ScopeID, g.ScopeType, g.Application = strings.TrimPrefix(sk, memberPrefix), scope, kind, app
		if kind == KindApplication {
			g.Application = scope
		}
	case strings.HasPrefix(sk, mirrorPrefix):
		user, grp, _ := strings.Cut(strings.TrimPrefix(sk, mirrorPrefix), "#")
		g.User, g.ScopeID, g.ScopeType, g.Application = user, grp, KindGroup, scope
	default:
		return nil, nil
	}
	if err := attributevalue.UnmarshalMap(item, &g); err != nil {
		return nil, httpapi.Internal(err)
	}
	return &g, nil
}

func (s *Service) put(item map[string]types.AttributeValue, cond string) types.TransactWriteItem {
	p := &types.Put{TableName: aws.String(s.table), Item: item}
	if cond != "" {
		p.ConditionExpression = aws.String(cond)
	}
	return types.TransactWriteItem{Put: p}
}

func (s *Service) del(key map[string]types.AttributeValue, cond string) types.TransactWriteItem {
	d := &types.Delete{TableName: aws.String(s.table), Key: key}
	if cond != "" {
		d.ConditionExpression = aws.String(cond)
	}
	return types.TransactWriteItem{Delete: d}
}

func (s *Service) transact(ctx context.Context, items []types.TransactWriteItem) error {
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return err
}

func marshal(v any, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	for k, val := range key {
		item[k] = val
	}
	return item, nil
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	return table.String(item, name)
}

func unmarshalScope(item map[string]types.AttributeValue) (*scopeItem, error) {
	var it scopeItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return nil, httpapi.Internal(err)
	}
	return &it, nil
}

func slicesSort(s []string) { slices.Sort(s) }
