package streams

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/users"
)

// Feedback handles SES's bounce and complaint notifications, delivered by
// the configuration set's SNS event destination (MailFeedbackTopic): it
// marks the address's user (email_status bounced or complained), which
// stops the non-essential mail to it (users.Essential) and, through the
// stream, publishes account.email_bounced.
type Feedback struct {
	DB    DB
	Table string
	Log   *slog.Logger
}

// sesNotification is what SES publishes: the configuration set's event
// format (eventType) or an identity's notification format
// (notificationType); both carry the same bounce and complaint objects.
type sesNotification struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BouncedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
}

// Handle implements the SNS trigger. A malformed message is logged and
// dropped (retrying cannot mend it); a DynamoDB failure fails the
// invocation, so SNS retries it.
func (f *Feedback) Handle(ctx context.Context, ev events.SNSEvent) error {
	for _, r := range ev.Records {
		var n sesNotification
		if err := json.Unmarshal([]byte(r.SNS.Message), &n); err != nil {
			withRequestID(ctx, f.Log).WarnContext(ctx, "feedback message is not SES's", "message_id", r.SNS.MessageID, "cause", err.Error())
			continue
		}
		kind := n.EventType
		if kind == "" {
			kind = n.NotificationType
		}
		var status string
		var addrs []string
		switch {
		case kind == "Bounce" && n.Bounce != nil:
			if n.Bounce.BounceType != "Permanent" {
				withRequestID(ctx, f.Log).InfoContext(ctx, "transient bounce ignored", "message_id", r.SNS.MessageID, "bounce_type", n.Bounce.BounceType)
				continue
			}
			status = users.EmailStatusBounced
			for _, b := range n.Bounce.BouncedRecipients {
				addrs = append(addrs, b.EmailAddress)
			}
		case kind == "Complaint" && n.Complaint != nil:
			status = users.EmailStatusComplained
			for _, c := range n.Complaint.ComplainedRecipients {
				addrs = append(addrs, c.EmailAddress)
			}
		default:
			withRequestID(ctx, f.Log).InfoContext(ctx, "feedback ignored", "message_id", r.SNS.MessageID, "type", kind)
			continue
		}
		for _, a := range addrs {
			if err := f.mark(ctx, a, status); err != nil {
				return err
			}
		}
	}
	return nil
}

// mark sets the email_status of the user whose address a is, while it is
// still their address.
func (f *Feedback) mark(ctx context.Context, a, status string) error {
	a = strings.TrimSpace(a)
	if i := strings.LastIndex(a, "<"); i >= 0 && strings.HasSuffix(a, ">") {
		a = a[i+1 : len(a)-1] // "Name <address>"
	}
	claim, err := f.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.Table), Key: users.EmailClaimKey(a), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return err
	}
	var c struct {
		User string `dynamodbav:"user"`
	}
	if err := attributevalue.UnmarshalMap(claim.Item, &c); err != nil || c.User == "" {
		withRequestID(ctx, f.Log).InfoContext(ctx, "feedback for an address no account has", "status", status)
		return nil
	}
	got, err := f.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.Table), Key: users.UserKey(c.User), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return err
	}
	var u users.User
	if err := attributevalue.UnmarshalMap(got.Item, &u); err != nil || got.Item == nil || users.NormalizeEmail(u.Email) != users.NormalizeEmail(a) {
		return nil
	}
	_, err = f.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(f.Table), Key: users.UserKey(u.UUID),
		UpdateExpression:          aws.String("SET email_status = :s"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND email = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: status}, ":e": &types.AttributeValueMemberS{Value: u.Email}}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // deleted, or the address changed meanwhile
	}
	if err == nil {
		withRequestID(ctx, f.Log).InfoContext(ctx, "address marked", "user", u.UUID, "email_status", status)
	}
	return err
}
