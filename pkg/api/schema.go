package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	openapi "github.com/example/accounts/api"
	"github.com/example/accounts/pkg/httpapi"
)

// Schema serves GET /api/schema: this service's OpenAPI description
// (api/openapi.yaml), as Waldur serves its own there.
func (a *API) Schema() httpapi.LambdaHandler { return SchemaHandler(a.Log) }

// schemaJSON is the description as JSON, converted once.
var schemaJSON = sync.OnceValues(openapi.JSON)

// SchemaHandler is Schema without the rest of the API: the schema function
// needs no table, mail or secret, so its cold start builds none of them.
func SchemaHandler(log *slog.Logger) httpapi.LambdaHandler {
	return httpapi.Wrap("Schema", log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		body, contentType := string(openapi.YAML), "application/yaml"
		switch r.Query().Get("format") {
		case "", "yaml":
		case "json":
			b, err := schemaJSON()
			if err != nil {
				return nil, httpapi.Internal(err)
			}
			body, contentType = string(b), "application/json"
		default:
			return nil, httpapi.Invalid(map[string][]string{"format": {"Choose yaml or json."}})
		}
		return (&httpapi.Response{Status: http.StatusOK, Raw: body}).WithHeader("Content-Type", contentType), nil
	})
}
