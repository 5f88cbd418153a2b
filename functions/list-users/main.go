// Command list-users is the Lambda function behind the route(s) of api.API.ListUsers.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/example/accounts/pkg/app"
)

func main() {
	lambda.Start(app.FromEnv().ListUsers())
}
