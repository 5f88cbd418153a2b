package api_test

import (
	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/localstack"
)

// apiRoutes keeps the routes of the functions pkg/api serves; the pages'
// routes (/account/..., pkg/pages) have their own suite.
func apiRoutes(routes []localstack.Route) []localstack.Route {
	ours := (&api.API{}).Handlers()
	var out []localstack.Route
	for _, r := range routes {
		if _, ok := ours[r.FunctionID]; ok {
			out = append(out, r)
		}
	}
	return out
}
