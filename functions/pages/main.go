// Command pages is the Lambda function behind GET and POST /account/...:
// the pages for people, pages.Pages.Handler.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/example/accounts/pkg/app"
)

func main() {
	lambda.Start(app.Pages(app.FromEnv()).Handler())
}
