// Command list-apikeys is the Lambda function behind the route(s) of api.API.ListAPIKeys.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/example/accounts/pkg/app"
)

func main() {
	lambda.Start(app.FromEnv().ListAPIKeys())
}
