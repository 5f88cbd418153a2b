// Package streams is the service's event side: the handler of the users
// table's DynamoDB stream, which sends the outbox's mail through SES,
// publishes account events to EventBridge, and runs what a deletion
// leaves to do; and the handler of SES's bounce and complaint feedback.
// On AWS they run as StreamFunction and MailFeedbackFunction; locally the
// stack's stream poller (pkg/localstack) runs the same handler over DynamoDB
// Local's stream. docs/EVENTS.md is the contract of the events.
//
// Every record may be delivered more than once (a retried batch, a replay):
// each effect is idempotent. A mail is sent only while its outbox item
// exists and is deleted once sent; an event is published only where the
// record's marker item is absent, and the marker is written after it; the
// cascade's deletes are conditional or harmless when repeated.
package streams

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/images"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/users"
)

// DB is the part of the DynamoDB client the handlers use.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Publisher is the part of the EventBridge client the handler uses.
type Publisher interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// ImageDeleter deletes a kept profile image by name (pkg/images).
type ImageDeleter interface {
	Delete(ctx context.Context, name string) error
}

// DeadLetters receives what the handler gives up on: a mail whose
// attempts ran out (the SQS dead-letter queue on AWS, the one the event
// source mapping's on-failure destination also writes to).
type DeadLetters interface {
	Send(ctx context.Context, body string) error
}

// MaxMailAttempts is how many deliveries of its record try to send a mail
// before it is given up on: fewer than the event source mapping's 1 + 3
// (MaximumRetryAttempts), so a mail SES keeps refusing is recorded and
// dead-lettered by the handler, and the records behind it in the shard go
// on, rather than being discarded with it when the mapping's retries end.
const MaxMailAttempts = 3

// Handler handles the stream's records.
type Handler struct {
	DB    DB
	Table string
	// Mail sends the outbox's mail (pkg/app wraps it in metrics.Sender,
	// which counts MailsSent and MailsFailed).
	Mail mail.Sender
	// Open unseals an outbox message (secret.Sealer.Open, loaded once).
	Open func(ctx context.Context, sealed, aad string) (string, error)
	// Events receives the account events; nil publishes none.
	Events Publisher
	// Bus is the event bus's name or ARN; Source the events' source (the
	// stack's name).
	Bus, Source string
	// Images deletes a deleted user's profile image; nil when none are kept.
	Images ImageDeleter
	Dead   DeadLetters
	Log    *slog.Logger
	Now    func() time.Time
	// Groups runs the follow-ups of applications, groups and grants: a
	// deleted user's grants and sole-member scopes, a deleted scope's
	// grants and groups, a renamed scope's names on its members' grants, a
	// grant's expiry by TTL (pkg/groups); nil runs none.
	Groups GroupEvents
	// Words keeps the word searches' lists (users.WordLists); nil keeps
	// none.
	Words *users.WordLists
}

// GroupEvents is what the handler asks of pkg/groups.
type GroupEvents interface {
	RemoveUser(ctx context.Context, userUUID string) error
	RemoveUnverifiedUser(ctx context.Context, userUUID string) error
	ScopeRemoved(ctx context.Context, old map[string]types.AttributeValue) error
	ScopeRenamed(ctx context.Context, old, cur map[string]types.AttributeValue) error
	GrantExpired(ctx context.Context, old map[string]types.AttributeValue) error
}

// byTTL reports whether DynamoDB's TTL removed the record's item.
func byTTL(rec events.DynamoDBEventRecord) bool {
	return rec.UserIdentity != nil && rec.UserIdentity.Type == "Service" && rec.UserIdentity.PrincipalID == "dynamodb.amazonaws.com"
}

// groupRecord handles a scope's or a grant's record.
func (h *Handler) groupRecord(ctx context.Context, pk, sk string, rec events.DynamoDBEventRecord) error {
	if h.Groups == nil {
		return nil
	}
	old, err := item(rec.Change.OldImage)
	if err != nil {
		return err
	}
	switch {
	case groups.IsScopeItem(pk, sk) && rec.EventName == string(events.DynamoDBOperationTypeRemove) && old != nil:
		return h.Groups.ScopeRemoved(ctx, old)
	case groups.IsScopeItem(pk, sk) && rec.EventName == string(events.DynamoDBOperationTypeModify) && old != nil:
		cur, err := item(rec.Change.NewImage)
		if err != nil {
			return err
		}
		return h.Groups.ScopeRenamed(ctx, old, cur)
	case groups.IsGrantItem(pk, sk) && rec.EventName == string(events.DynamoDBOperationTypeRemove) && old != nil && byTTL(rec):
		return h.Groups.GrantExpired(ctx, old)
	}
	return nil
}

// Handle implements the stream's event source mapping with
// ReportBatchItemFailures: records are handled in order, and the first that
// fails is reported, so Lambda retries the batch from it (and, once its
// retries are spent, sends the batch's description to the dead-letter
// queue). The records after it are not attempted: their turn comes with
// the retry, in order.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	for _, rec := range ev.Records {
		if err := h.record(ctx, rec); err != nil {
			h.logger(ctx).ErrorContext(ctx, "stream record failed", "event_id", rec.EventID, "event_name", rec.EventName,
				"sequence_number", rec.Change.SequenceNumber, "cause", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
			break
		}
	}
	return resp, nil
}

// logger is h.Log with the invocation's request id.
func (h *Handler) logger(ctx context.Context) *slog.Logger {
	return withRequestID(ctx, h.Log)
}

func withRequestID(ctx context.Context, l *slog.Logger) *slog.Logger {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return l.With("request_id", lc.AwsRequestID)
	}
	return l
}

// Accepts is the event source mapping's filter (template.yaml
// StreamFunction FilterCriteria, checked against it by a test): the user
// items' changes and the outbox's new mails; the rest (claims, counters,
// markers) never reach the function.
func Accepts(rec events.DynamoDBEventRecord) bool {
	pk, sk := rec.Change.Keys["pk"], rec.Change.Keys["sk"]
	if pk.DataType() != events.DataTypeString || sk.DataType() != events.DataTypeString {
		return false
	}
	switch {
	case groups.IsScopeItem(pk.String(), sk.String()):
		return rec.EventName == string(events.DynamoDBOperationTypeModify) || rec.EventName == string(events.DynamoDBOperationTypeRemove)
	case groups.IsGrantItem(pk.String(), sk.String()):
		return rec.EventName == string(events.DynamoDBOperationTypeRemove) && rec.UserIdentity != nil && rec.UserIdentity.Type == "Service"
	}
	switch users.KindOf(pk.String(), sk.String()) {
	case users.ItemUser:
		return true
	case users.ItemMail:
		return rec.EventName == string(events.DynamoDBOperationTypeInsert)
	}
	return false
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

// record handles one record.
func (h *Handler) record(ctx context.Context, rec events.DynamoDBEventRecord) error {
	keys, err := item(rec.Change.Keys)
	if err != nil {
		return err
	}
	pk, sk := s(keys["pk"]), s(keys["sk"])
	if groups.IsScopeItem(pk, sk) || groups.IsGrantItem(pk, sk) {
		return h.groupRecord(ctx, pk, sk, rec)
	}
	switch users.KindOf(pk, sk) {
	case users.ItemMail:
		if rec.EventName == string(events.DynamoDBOperationTypeInsert) {
			return h.sendMail(ctx, pk, sk, rec)
		}
	case users.ItemUser:
		oldU, err := userOf(rec.Change.OldImage)
		if err != nil {
			return err
		}
		newU, err := userOf(rec.Change.NewImage)
		if err != nil {
			return err
		}
		// The word lists first: a record that fails here is delivered
		// again, and what it made is not made twice (users.WordLists).
		if h.Words != nil && !wordListsWritten(rec) {
			if err := h.Words.Sync(ctx, oldU, newU); err != nil {
				return err
			}
		}
		if rec.EventName == string(events.DynamoDBOperationTypeRemove) && oldU != nil {
			if err := h.cascade(ctx, oldU); err != nil {
				return err
			}
			if h.Groups != nil {
				// Their grants, and the scopes they were alone in (ApiHub);
				// an account never activated takes only its grants (a sign-up
				// replacing a pending invitee deletes none of the scopes).
				remove := h.Groups.RemoveUser
				if oldU.Status == users.StatusUnverified {
					remove = h.Groups.RemoveUnverifiedUser
				}
				if err := remove(ctx, oldU.UUID); err != nil {
					return err
				}
			}
		}
		return h.publish(ctx, rec, accountEvents(rec, oldU, newU))
	}
	return nil
}

// wordListsWritten reports a new user whose word lists were written with
// it (users.SeedListed).
func wordListsWritten(rec events.DynamoDBEventRecord) bool {
	_, ok := rec.Change.NewImage[users.MarkWordListsWritten]
	return ok && rec.EventName == string(events.DynamoDBOperationTypeInsert)
}

func s(v types.AttributeValue) string {
	if sv, ok := v.(*types.AttributeValueMemberS); ok {
		return sv.Value
	}
	return ""
}

func userOf(img map[string]events.DynamoDBAttributeValue) (*users.User, error) {
	if len(img) == 0 {
		return nil, nil
	}
	m, err := item(img)
	if err != nil {
		return nil, err
	}
	var u users.User
	if err := attributevalue.UnmarshalMap(m, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// condFailed reports a failed condition of a single-item write.
func condFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// sendMail sends one outbox mail: it is leased by counting the attempt
// (only while the item exists: a mail already sent was deleted), sent,
// and deleted. A failure is recorded on the item and on the user's item
// (email_status failed, for staff), and the record fails so that the event
// source mapping retries it.
func (h *Handler) sendMail(ctx context.Context, pk, sk string, rec events.DynamoDBEventRecord) error {
	img, err := item(rec.Change.NewImage)
	if err != nil {
		return err
	}
	var om users.OutboxMail
	if err := attributevalue.UnmarshalMap(img, &om); err != nil {
		return err
	}
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
	if om.Kind == users.MailDecoy || users.IsDecoyOwner(om.User) {
		_, err := h.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(h.Table), Key: key})
		return err
	}
	out, err := h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(h.Table), Key: key,
		UpdateExpression:          aws.String("ADD attempts :one SET #state = :sending"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}, ":sending": &types.AttributeValueMemberS{Value: "sending"}},
		ReturnValues:              types.ReturnValueAllNew})
	if condFailed(err) {
		h.logger(ctx).InfoContext(ctx, "mail already sent", "event_id", rec.EventID, "user", om.User, "kind", om.Kind)
		return nil // sent (and deleted) by an earlier delivery, or its user was deleted
	}
	if err != nil {
		return err
	}
	var leased users.OutboxMail
	if err := attributevalue.UnmarshalMap(out.Attributes, &leased); err != nil {
		return err
	}
	msg, err := users.OpenOutbox(func(sealed, aad string) (string, error) { return h.Open(ctx, sealed, aad) }, pk, sk, om)
	if err != nil {
		return err // the token key is wrong or the item was tampered with: retry, then the DLQ
	}
	if err := h.Mail.Send(ctx, msg); err != nil {
		if leased.Attempts < MaxMailAttempts {
			h.mailFailed(ctx, key, om, err, "retrying")
			return err // the mapping delivers the record again
		}
		h.mailFailed(ctx, key, om, err, "failed")
		return h.deadLetter(ctx, pk, sk, om, leased.Attempts, err)
	}
	h.logger(ctx).InfoContext(ctx, "mail sent", "event_id", rec.EventID, "user", om.User, "kind", om.Kind, "attempt", leased.Attempts)
	if _, err := h.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(h.Table), Key: key}); err != nil {
		return err
	}
	if leased.Attempts > 1 || om.Resent {
		// It went through after all: the user's mail is fine again (unless
		// feedback has marked the address since).
		_, err := h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(h.Table), Key: users.UserKey(om.User),
			UpdateExpression:          aws.String("REMOVE email_status, mail_failed_at, mail_failed_kind"),
			ConditionExpression:       aws.String("email_status = :failed"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":failed": &types.AttributeValueMemberS{Value: users.EmailStatusFailed}}})
		if err != nil && !condFailed(err) {
			return err
		}
	}
	return nil
}

// mailFailed records a failed send on the mail's item, and, when the mail
// is given up (state "failed"), on its user's. Errors here are logged: the
// record fails anyway and is retried.
func (h *Handler) mailFailed(ctx context.Context, key map[string]types.AttributeValue, om users.OutboxMail, cause error, state string) {
	reason := cause.Error()
	if len(reason) > 300 {
		reason = reason[:300]
	}
	now := h.now()
	_, err := h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(h.Table), Key: key,
		UpdateExpression:          aws.String("SET #state = :state, last_error = :why"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":state": &types.AttributeValueMemberS{Value: state}, ":why": &types.AttributeValueMemberS{Value: reason}}})
	if err != nil && !condFailed(err) {
		h.logger(ctx).ErrorContext(ctx, "recording a mail failure failed", "user", om.User, "cause", err.Error())
	}
	if state != "failed" {
		return // the user's item changes once, when the mail is given up
	}
	// On the user's item, only while it exists (no write resurrects a
	// user), and without hiding a bounce or complaint.
	_, err = h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(h.Table), Key: users.UserKey(om.User),
		UpdateExpression:    aws.String("SET email_status = :failed, mail_failed_at = :at, mail_failed_kind = :kind"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(email_status) OR email_status = :failed)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":failed": &types.AttributeValueMemberS{Value: users.EmailStatusFailed},
			":at":     &types.AttributeValueMemberS{Value: now.Format(time.RFC3339Nano)},
			":kind":   &types.AttributeValueMemberS{Value: om.Kind}}})
	if err != nil && !condFailed(err) {
		h.logger(ctx).ErrorContext(ctx, "recording a mail failure on the user failed", "user", om.User, "cause", err.Error())
	}
}

// deadLetter gives a mail up: the dead-letter queue gets where it is (its
// key, kind and user; never its content), and the record succeeds.
func (h *Handler) deadLetter(ctx context.Context, pk, sk string, om users.OutboxMail, attempts int, cause error) error {
	h.logger(ctx).ErrorContext(ctx, "mail given up", "user", om.User, "kind", om.Kind, "attempts", attempts, "cause", cause.Error())
	if h.Dead == nil {
		return nil
	}
	body, err := json.Marshal(map[string]any{"condition": "MailAttemptsExhausted", "pk": pk, "sk": sk,
		"user": om.User, "kind": om.Kind, "attempts": attempts, "at": h.now().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	return h.Dead.Send(ctx, string(body))
}

// cascade removes what a deleted user leaves behind: claims that still
// name it (a TTL deletion releases none; a request's delete released them
// already, and these deletes then find nothing), its other items (queued
// or failed mails), and its kept profile image.
func (h *Handler) cascade(ctx context.Context, u *users.User) error {
	for _, k := range users.ClaimKeys(u) {
		_, err := h.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(h.Table), Key: k,
			ConditionExpression:       aws.String("#user = :u"),
			ExpressionAttributeNames:  map[string]string{"#user": "user"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":u": &types.AttributeValueMemberS{Value: u.UUID}}})
		if err != nil && !condFailed(err) {
			return err
		}
	}
	p := dynamodb.NewQueryPaginator(h.DB, &dynamodb.QueryInput{TableName: aws.String(h.Table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: users.UserPK(u.UUID)}},
		ProjectionExpression:      aws.String("pk, sk"), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if users.KindOf(s(it["pk"]), s(it["sk"])) == users.ItemUser {
				continue // a new item under the same uuid cannot exist; never delete a user here
			}
			if _, err := h.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(h.Table), Key: it}); err != nil {
				return err
			}
		}
	}
	if h.Images != nil {
		if name, ok := imageName(u.Image); ok {
			if err := h.Images.Delete(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// imageName is the name of a kept image from its url (…/api/images/<name>).
func imageName(url string) (string, bool) {
	i := strings.LastIndex(url, "/api/images/")
	if i < 0 {
		return "", false
	}
	name := url[i+len("/api/images/"):]
	return name, images.ValidName(name)
}

// SQSAPI is the part of the SQS client SQSDeadLetters uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// SQSDeadLetters sends dead letters to an SQS queue.
type SQSDeadLetters struct {
	Client SQSAPI
	URL    string
}

// Send implements DeadLetters.
func (q *SQSDeadLetters) Send(ctx context.Context, body string) error {
	_, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	return err
}
