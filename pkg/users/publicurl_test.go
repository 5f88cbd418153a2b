package users_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/users"
)

// TestPublicURLComesFromConfigurationOrTheAPIID: links are built from
// PUBLIC_URL, or on AWS from the id of the API that API Gateway put in the
// event (the template cannot pass the API's own URL to its functions: that
// is a circular dependency), never from the Host or X-Forwarded-* headers.
func TestPublicURLComesFromConfigurationOrTheAPIID(t *testing.T) {
	for _, tc := range []struct {
		desc, public, region, apiID, stage, want string
	}{
		{"PUBLIC_URL wins", "https://accounts.example.com", "us-east-1", "k2x8m4q7vd", "$default", "https://accounts.example.com"},
		{"the execute-api URL of the $default stage", "", "eu-west-1", "k2x8m4q7vd", "$default", "https://k2x8m4q7vd.execute-api.eu-west-1.amazonaws.com"},
		{"a named stage is a path", "", "us-east-1", "abc123", "prod", "https://abc123.execute-api.us-east-1.amazonaws.com/prod"},
		{"China's partition", "", "cn-north-1", "abc123", "$default", "https://abc123.execute-api.cn-north-1.amazonaws.com.cn"},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			s := users.New(nil, config.Config{PublicURL: tc.public, Region: tc.region}, nil, slog.Default())
			var got string
			h := httpapi.Wrap("test", slog.New(slog.DiscardHandler), func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
				got = s.PublicURL(ctx)
				return httpapi.NoContent(), nil
			})
			ev := events.APIGatewayV2HTTPRequest{
				Headers: map[string]string{"host": "evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https://evil.example/?"},
				RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: tc.apiID, Stage: tc.stage, DomainName: "evil.example",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/"}},
			}
			if _, err := h(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("PublicURL = %q, want %q", got, tc.want)
			}
		})
	}
}
