package api

import (
	"context"
	"mime"
	"net/http"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// MaxImportBytes bounds an import's body: 1,000 users with room for their
// profiles, and under Lambda's 6 MB event even when API Gateway sends the
// body base64-encoded.
const MaxImportBytes = 4 << 20

// ImportUsers serves POST /api/users/import (staff): up to 1,000 users as
// JSON Lines (application/x-ndjson or application/jsonl) or a JSON array
// (application/json), each created, skipped (it exists) or refused, per
// input line (users.Import).
func (a *API) ImportUsers() httpapi.LambdaHandler {
	return httpapi.Wrap("ImportUsers", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		p, err := a.authenticate(ctx, r)
		if err != nil {
			return nil, err
		}
		if !p.User.IsStaff {
			return nil, httpapi.Forbidden("Only staff can import users.")
		}
		mt, _, perr := mime.ParseMediaType(r.Header("content-type"))
		array := false
		switch {
		case perr != nil:
			return nil, httpapi.UnsupportedMediaType()
		case mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/x-jsonlines":
		case mt == "application/json":
			array = true
		default:
			return nil, httpapi.UnsupportedMediaType()
		}
		body, err := r.BodyUpTo(MaxImportBytes)
		if err != nil {
			return nil, err
		}
		lines, refused, err := users.ParseImport(body, array, users.ReadOnlyFields)
		if err != nil {
			return nil, err
		}
		rep, err := a.Users.Import(ctx, lines, refused)
		if err != nil {
			return nil, err
		}
		a.Log.InfoContext(ctx, "users imported", "request_id", httpapi.RequestID(ctx),
			"created", rep.Totals.Created, "skipped", rep.Totals.Skipped, "refused", rep.Totals.Refused, "warnings", rep.Totals.Warnings)
		return httpapi.JSON(http.StatusOK, rep), nil
	})
}
