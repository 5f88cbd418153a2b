// Command mail-feedback is MailFeedbackFunction: SES's bounce and complaint
// notifications, from SNS (pkg/streams).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/example/accounts/pkg/app"
)

func main() {
	lambda.Start(app.FeedbackFromEnv().Handle)
}
