package api_test

import (
	"context"

	"github.com/example/accounts/pkg/openapitest"
	"github.com/example/accounts/pkg/testenv"
)

// checkOpenAPI validates, after the suite has run, every exchange the tests
// made with the stack against api/openapi.yaml (kin-openapi's
// openapi3filter): a request the service accepted must be one the
// description declares, and every answer's status, headers and body (whose
// schemas forbid undeclared fields) must be declared for its route.
func checkOpenAPI(e *testenv.Env) []string {
	ctx := context.Background()
	c, err := openapitest.NewChecker(ctx, e.URL)
	if err != nil {
		return []string{err.Error()}
	}
	return c.Check(ctx, e.Exchanges.All())
}
