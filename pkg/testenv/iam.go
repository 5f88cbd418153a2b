package testenv

import (
	"context"
	"sort"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/example/accounts/pkg/httpapi"
)

// Actions records, per endpoint (httpapi.Route), the IAM actions its AWS
// requests need: DynamoDB's (a transaction needs the action of each of its
// items, a Query on an index needs dynamodb:Query on the index), SES's and
// S3's, each named as IAM names it.
type Actions struct {
	mu   sync.Mutex
	used map[string]map[string]bool
}

// Used returns the actions recorded for route, sorted.
func (a *Actions) Used(route string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for act := range a.used[route] {
		out = append(out, act)
	}
	sort.Strings(out)
	return out
}

// Routes returns every route that made a request.
func (a *Actions) Routes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for r := range a.used {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func (a *Actions) add(route string, acts ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used == nil {
		a.used = map[string]map[string]bool{}
	}
	if a.used[route] == nil {
		a.used[route] = map[string]bool{}
	}
	for _, act := range acts {
		a.used[route][act] = true
	}
}

// IndexSuffix marks an action on an index rather than the table.
const IndexSuffix = " (index)"

// iamPrefix is the IAM service prefix of an SDK service id.
var iamPrefix = map[string]string{"DynamoDB": "dynamodb", "SES": "ses", "SESv2": "ses", "S3": "s3", "Secrets Manager": "secretsmanager"}

// Middleware is the client option, for every AWS client (config.WithAPIOptions),
// that records.
func (a *Actions) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("testenv.Actions",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			route := httpapi.Route(ctx)
			if route == "" {
				route = "(outside a request)"
			}
			prefix, ok := iamPrefix[awsmiddleware.GetServiceID(ctx)]
			if !ok {
				prefix = strings.ToLower(awsmiddleware.GetServiceID(ctx))
			}
			op := prefix + ":" + awsmiddleware.GetOperationName(ctx)
			if op == "s3:HeadObject" {
				op = "s3:GetObject" // HeadObject is authorised as GetObject
			}
			switch p := in.Parameters.(type) {
			case *dynamodb.TransactWriteItemsInput:
				for _, it := range p.TransactItems {
					switch {
					case it.Put != nil:
						a.add(route, "dynamodb:PutItem")
					case it.Update != nil:
						a.add(route, "dynamodb:UpdateItem")
					case it.Delete != nil:
						a.add(route, "dynamodb:DeleteItem")
					case it.ConditionCheck != nil:
						a.add(route, "dynamodb:ConditionCheckItem")
					}
				}
			case *dynamodb.QueryInput:
				if p.IndexName != nil {
					op += IndexSuffix
				}
				a.add(route, op)
			default:
				a.add(route, op)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}
