package app

import (
	"maps"

	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/pages"
)

// Pages builds the pages for people (/account/...) on a's service, so they
// share its rate limits, lockout and logs.
func Pages(a *api.API) *pages.Pages { return pages.New(a.Users, a.Log) }

// Handlers maps every function of template.yaml to its handler: the API's
// endpoints and the pages. The local stack serves the template through it.
func Handlers(a *api.API) map[string]httpapi.LambdaHandler {
	h := a.Handlers()
	maps.Copy(h, Pages(a).Handlers())
	return h
}
