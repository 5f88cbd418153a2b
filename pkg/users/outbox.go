package users

import (
	"context"
	"encoding/json"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/mail"
)

// The outbox. A route that mails someone does not call SES: it writes the
// mail as an item inside the DynamoDB write it makes anyway (the sign-up's
// transaction, the code's update…), so the mail exists exactly when the
// change it tells of does. The table's stream delivers the item to the
// stream function (pkg/streams), which sends it through SES with the event
// source mapping's retries, records a failure on the user's item, and
// deletes the item once sent. docs/EVENTS.md describes the path.
//
// An outbox item lives in its user's partition (pk USER#<uuid>, sk
// MAIL#<id>), so a user's pending and failed mails are one Query away for
// staff and for the deletion cascade. Its message is sealed with the token
// key (AES-256-GCM, the item's key as associated data): a mail carries a
// code, and codes are never in the table in plain form, in the item or in
// its stream record.

// MailSKPrefix starts the sort key of an outbox item.
const MailSKPrefix = "MAIL#"

// Mail kinds. Essential mails carry a code the person has just asked for
// and are sent whatever the address's email_status; the notices are not
// sent to an address that bounced or complained.
const (
	MailActivation   = "activation"
	MailReset        = "reset"
	MailSetPassword  = "set_password"
	MailEmailChange  = "email_change"
	MailEmailNotice  = "email_notice"
	MailEmailChanged = "email_changed"
	// MailDecoy stands in for a mail where a request has none to send
	// (mailOnRequest): written like the others, sent to nobody.
	MailDecoy = "decoy"
)

// Email statuses (the user item's email_status, shown to staff).
const (
	EmailStatusFailed     = "failed"     // a mail could not be sent (the stream's retries ran out or are running)
	EmailStatusBounced    = "bounced"    // SES reported a permanent bounce
	EmailStatusComplained = "complained" // the recipient marked a mail as spam
)

// OutboxTTL is how long an outbox item may stay (a failed mail, kept for
// staff to see and resend) before DynamoDB's TTL removes it.
const OutboxTTL = 14 * 24 * time.Hour

// Essential reports whether mails of kind are sent to an address that
// bounced or complained.
func Essential(kind string) bool {
	switch kind {
	case MailEmailNotice, MailEmailChanged:
		return false
	}
	return true
}

// OutboxMail is an outbox item as stored (the message sealed).
type OutboxMail struct {
	User    string    `dynamodbav:"user"`
	Kind    string    `dynamodbav:"kind"`
	Sealed  string    `dynamodbav:"msg"`
	Created time.Time `dynamodbav:"created"`
	// CodeExpires is when the code the mail carries stops working (absent
	// for notices): a resend after it is pointless.
	CodeExpires *time.Time `dynamodbav:"code_expires,omitempty"`
	// State is "" (queued), "sending" (leased by a delivery) or "failed".
	State     string `dynamodbav:"state,omitempty"`
	Lease     int64  `dynamodbav:"lease,omitempty"` // unix ms until which a delivery holds it
	Attempts  int    `dynamodbav:"attempts,omitempty"`
	LastError string `dynamodbav:"last_error,omitempty"`
	// Resent marks a mail staff queued again (ResendMails).
	Resent bool  `dynamodbav:"resent,omitempty"`
	TTL    int64 `dynamodbav:"ttl"`
}

// outMail is a mail to queue.
type outMail struct {
	kind string
	msg  mail.Message
	// expires is when the code in it stops working (zero for a notice).
	expires time.Time
}

// OutboxAAD is the associated data a sealed outbox message is bound to:
// its item's key, so a message copied to another item does not open.
func OutboxAAD(pk, sk string) string { return "outbox\x00" + pk + "\x00" + sk }

// outbox returns the Put items that queue mails for u (nil u: decoys).
// Notices to an address that bounced or complained are dropped.
func (s *Service) outbox(ctx context.Context, u *User, now time.Time, mails ...outMail) ([]types.TransactWriteItem, error) {
	var items []types.TransactWriteItem
	owner := unknownUser
	if u != nil {
		owner = u.UUID
	}
	for _, m := range mails {
		if u != nil && !Essential(m.kind) && (u.EmailStatus == EmailStatusBounced || u.EmailStatus == EmailStatusComplained) {
			s.log.InfoContext(ctx, "mail suppressed", "request_id", httpapi.RequestID(ctx), "user", owner, "kind", m.kind, "email_status", u.EmailStatus)
			continue
		}
		sl, err := s.sealer(ctx)
		if err != nil {
			return nil, httpapi.Internal(err)
		}
		plain, err := json.Marshal(m.msg)
		if err != nil {
			return nil, httpapi.Internal(err)
		}
		pk, sk := userPrefix+owner, MailSKPrefix+now.UTC().Format("20060102T150405Z")+"#"+uuid.NewString()
		sealed, err := sl.Seal(string(plain), OutboxAAD(pk, sk))
		if err != nil {
			return nil, httpapi.Internal(err)
		}
		om := OutboxMail{User: owner, Kind: m.kind, Sealed: sealed, Created: now.UTC(), TTL: now.Add(OutboxTTL).Unix()}
		if !m.expires.IsZero() {
			e := m.expires.UTC()
			om.CodeExpires = &e
		}
		item, err := marshalOutbox(pk, sk, om)
		if err != nil {
			return nil, httpapi.Internal(err)
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.st.table), Item: item,
			ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	}
	return items, nil
}

// OpenOutbox unseals the message of an outbox item.
func OpenOutbox(open func(sealed, aad string) (string, error), pk, sk string, om OutboxMail) (mail.Message, error) {
	plain, err := open(om.Sealed, OutboxAAD(pk, sk))
	if err != nil {
		return mail.Message{}, err
	}
	var m mail.Message
	err = json.Unmarshal([]byte(plain), &m)
	return m, err
}

func marshalOutbox(pk, sk string, om OutboxMail) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(om)
	if err != nil {
		return nil, err
	}
	item["pk"], item["sk"] = str(pk), str(sk)
	return item, nil
}

// Resent is the answer of ResendMails.
type Resent struct {
	// Queued mails go out again; Expired ones carried a code that no
	// longer works and were dropped (the person asks for a new one).
	Queued  int `json:"queued"`
	Expired int `json:"expired"`
}

// ResendMails queues again the mails of u that could not be sent (staff,
// after seeing email_status failed): each failed outbox item is replaced,
// in one transaction, by a new one with the same message sealed anew, which
// the stream sends as it sends any mail. A mail whose code has expired is
// dropped instead.
func (s *Service) ResendMails(ctx context.Context, u *User) (Resent, error) {
	var res Resent
	out, err := s.st.db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(s.st.table),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :mail)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(userPrefix + u.UUID), ":mail": str(MailSKPrefix)},
		ConsistentRead:            aws.Bool(true)})
	if err != nil {
		return res, dbError(err)
	}
	sl, err := s.sealer(ctx)
	if err != nil {
		return res, httpapi.Internal(err)
	}
	now := s.now()
	for _, it := range out.Items {
		var om OutboxMail
		if err := attributevalue.UnmarshalMap(it, &om); err != nil {
			return res, httpapi.Internal(err)
		}
		if om.State != "failed" {
			continue // queued or being sent
		}
		del := types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(s.st.table), Key: map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]},
			ConditionExpression: aws.String("#state = :failed"), ExpressionAttributeNames: map[string]string{"#state": "state"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":failed": str("failed")}}}
		items := []types.TransactWriteItem{del}
		if om.CodeExpires != nil && !now.Before(*om.CodeExpires) {
			res.Expired++
		} else {
			msg, err := OpenOutbox(sl.Open, pkOf(it), skOf(it), om)
			if err != nil {
				return res, httpapi.Internal(err)
			}
			m := outMail{kind: om.Kind, msg: msg}
			if om.CodeExpires != nil {
				m.expires = *om.CodeExpires
			}
			again, err := s.outbox(ctx, &User{UUID: u.UUID}, now, m)
			if err != nil {
				return res, err
			}
			for _, a := range again {
				a.Put.Item["resent"] = &types.AttributeValueMemberBOOL{Value: true}
			}
			items = append(items, again...)
			res.Queued++
		}
		if _, err := s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			if _, conditional := txCanceled(err); conditional {
				continue // resent by someone else meanwhile
			}
			return res, dbError(err)
		}
	}
	return res, nil
}

func skOf(it map[string]types.AttributeValue) string {
	if v, ok := it["sk"].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
