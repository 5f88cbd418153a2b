// Command schema is the Lambda function behind the route(s) of api.API.Schema.
// It builds no AWS client: the description is embedded in the binary.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/example/accounts/pkg/api"
)

func main() {
	lambda.Start(api.SchemaHandler(slog.New(slog.NewJSONHandler(os.Stdout, nil))))
}
