// Command stream is StreamFunction: the handler of the users table's
// DynamoDB stream (pkg/streams).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/example/accounts/pkg/app"
)

func main() {
	lambda.Start(app.StreamFromEnv().Handle)
}
