package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/streams"
	"github.com/example/accounts/pkg/testenv"
	"github.com/example/accounts/pkg/users"
)

// outboxOf reads user id's outbox items (queued or failed mails).
func outboxOf(t *testing.T, id string) []users.OutboxMail {
	t.Helper()
	out, err := env.DB.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(env.Config.TableName),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :m)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: users.UserPK(id)}, ":m": &types.AttributeValueMemberS{Value: users.MailSKPrefix}},
		ConsistentRead:            aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var mails []users.OutboxMail
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &mails); err != nil {
		t.Fatal(err)
	}
	return mails
}

// eventTypes are the detail-types of the events about id, in order.
func eventTypes(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, ev := range env.EventsOf(t, id) {
		out = append(out, ev.DetailType)
	}
	return out
}

func TestMailGoesThroughTheStream(t *testing.T) {
	email := testenv.Email("outbox")
	// While the mail is held (SES refusing), its item is in the table:
	// sealed, so the code in it is not there in plain form.
	env.SetMailFault(func(m mail.Message) error {
		if m.To == email {
			return errSESDown
		}
		return nil
	})
	id := env.SignUp(t, email)
	env.Drain(t)
	env.SetMailFault(nil)
	held := outboxOf(t, id)
	if len(held) != 1 || held[0].Kind != users.MailActivation || held[0].State != "failed" {
		t.Fatalf("outbox while SES refuses: %+v", held)
	}
	raw, _ := json.Marshal(held[0])
	if strings.Contains(string(raw), "code=") || strings.Contains(string(raw), email) || strings.Contains(string(raw), "Activate") {
		t.Fatalf("the outbox item holds the mail in plain form: %s", raw)
	}

	// A sign-up whose mail goes through: in the inbox, and its item gone.
	email2 := testenv.Email("outbox-ok")
	id2 := env.SignUp(t, email2)
	env.CodeFromMail(t, email2, "Activate")
	env.Drain(t)
	if left := outboxOf(t, id2); len(left) != 0 {
		t.Fatalf("a sent mail's item stays: %+v", left)
	}
	if n := len(env.MailsTo(t, email2, "Activate")); n != 1 {
		t.Fatalf("%d activation mails, want 1", n)
	}
	if !strings.Contains(env.StreamLogs.String(), `"msg":"mail sent"`) {
		t.Error("the stream logs no 'mail sent' line")
	}
	if strings.Contains(env.StreamLogs.String(), email2) {
		t.Error("the stream's logs name the address")
	}
}

func TestFaultSESRefusesMail(t *testing.T) {
	email := testenv.Email("sesdown")
	env.SetMailFault(func(m mail.Message) error {
		if strings.EqualFold(m.To, email) {
			return errSESDown
		}
		return nil
	})
	defer env.SetMailFault(nil)
	deadBefore := len(env.DLQ.Messages())
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword})
	if r.Status != http.StatusCreated || r.Str("status") != users.StatusUnverified {
		t.Fatalf("sign-up while SES refuses: %d %s", r.Status, r.Body)
	}
	id := r.Str("uuid")
	env.Drain(t)

	// Retried (streams.MaxMailAttempts deliveries), then recorded on the
	// mail, on the user, and in the dead-letter queue.
	held := outboxOf(t, id)
	if len(held) != 1 || held[0].Attempts != streams.MaxMailAttempts || held[0].State != "failed" || !strings.Contains(held[0].LastError, "sending rate") {
		t.Fatalf("the refused mail's item: %+v", held)
	}
	dead := env.DLQ.Messages()
	if len(dead) != deadBefore+1 || !strings.Contains(dead[len(dead)-1], `"condition":"MailAttemptsExhausted"`) ||
		!strings.Contains(dead[len(dead)-1], id) || strings.Contains(dead[len(dead)-1], email) {
		t.Fatalf("dead letters %v, want one more naming the user but not the address", dead[deadBefore:])
	}
	if n := len(env.MailsTo(t, email, "Activate")); n != 0 {
		t.Fatalf("%d mails went out while SES refused", n)
	}
	staff := env.NewStaff(t, "sesdown-staff", false)
	seen := env.Do(t, "GET", "/api/users/"+id, nil, auth(staff)...)
	if seen.Status != http.StatusOK || seen.Str("email_status") != users.EmailStatusFailed {
		t.Fatalf("staff see the user: %d email_status %q", seen.Status, seen.Str("email_status"))
	}
	if !strings.Contains(env.StreamLogs.String(), `"msg":"stream record failed"`) {
		t.Error("no ERROR line for the failed record")
	}

	// Only staff resend; the address's owner gets the mail once SES is back.
	plain := quickUser(t, "sesdown-plain")
	if r := env.Do(t, "POST", "/api/users/"+id+"/resend_mail", nil, auth(plain)...); r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
		t.Fatalf("a plain user resends another's mail: %d %s", r.Status, r.Body)
	}
	support := env.NewStaff(t, "sesdown-support", true)
	if r := env.Do(t, "POST", "/api/users/"+id+"/resend_mail", nil, auth(support)...); r.Status != http.StatusForbidden {
		t.Fatalf("support resends: %d %s", r.Status, r.Body)
	}
	env.SetMailFault(nil)
	res := env.Do(t, "POST", "/api/users/"+id+"/resend_mail", nil, auth(staff)...)
	if res.Status != http.StatusAccepted || res.JSON()["queued"] != float64(1) {
		t.Fatalf("resend: %d %s", res.Status, res.Body)
	}
	code := env.CodeFromMail(t, email, "Activate")
	if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusOK {
		t.Fatalf("activate with the resent mail's code: %d %s", r.Status, r.Body)
	}
	env.Drain(t)
	if after := env.Do(t, "GET", "/api/users/"+id, nil, auth(staff)...); after.Str("email_status") != "" {
		t.Fatalf("email_status after the resent mail went out: %q", after.Str("email_status"))
	}
	if left := outboxOf(t, id); len(left) != 0 {
		t.Fatalf("outbox after the resend: %+v", left)
	}
	if again := env.Do(t, "POST", "/api/users/"+id+"/resend_mail", nil, auth(staff)...); again.JSON()["queued"] != float64(0) {
		t.Fatalf("a second resend: %s", again.Body)
	}
}

// A mail SES refuses once and then takes leaves its user's item alone: the
// user is marked only when the mail is given up, not on every retry.
func TestMailRetriedOnceLeavesTheUser(t *testing.T) {
	email := testenv.Email("sesonce")
	var mu sync.Mutex
	attempts := 0
	var seenStatus []string
	var userID string
	env.SetMailFault(func(m mail.Message) error {
		if !strings.EqualFold(m.To, email) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			return errSESDown
		}
		out, err := env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Config.TableName),
			Key: users.UserKey(userID), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return err
		}
		s, _ := out.Item["email_status"].(*types.AttributeValueMemberS)
		if s != nil {
			seenStatus = append(seenStatus, s.Value)
		} else {
			seenStatus = append(seenStatus, "")
		}
		return nil
	})
	defer env.SetMailFault(nil)
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	mu.Lock()
	userID = r.Str("uuid")
	mu.Unlock()
	env.Drain(t)
	mu.Lock()
	defer mu.Unlock()
	if attempts != 2 || !slices.Equal(seenStatus, []string{""}) {
		t.Fatalf("%d attempts; email_status on the user at the second attempt: %q, want none", attempts, seenStatus)
	}
	if n := len(env.MailsTo(t, email, "Activate")); n != 1 {
		t.Fatalf("%d activation mails, want 1", n)
	}
	if held := outboxOf(t, userID); len(held) != 0 {
		t.Fatalf("the sent mail's item is still there: %+v", held)
	}
}

// TestStreamRecordDeliveredTwice hands every record of a user's flow to
// the stream function a second time, as a retried batch would: no second
// mail, no second event.
func TestStreamRecordDeliveredTwice(t *testing.T) {
	u := env.NewUser(t, "twice")
	env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"first_name": "Twice"}, auth(u)...)
	env.Drain(t)
	before := eventTypes(t, u.UUID)
	mails := len(env.MailsTo(t, u.Email, ""))
	var again []events.DynamoDBEventRecord
	for _, rec := range env.Stream.Delivered() {
		pk := rec.Change.Keys["pk"]
		if pk.DataType() == events.DataTypeString && pk.String() == users.UserPK(u.UUID) {
			again = append(again, rec)
		}
	}
	if len(again) < 3 {
		t.Fatalf("only %d records of the flow were delivered", len(again))
	}
	h, err := app.NewStream(context.Background(), env.Config, app.Options{LogOutput: &testenv.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), events.DynamoDBEvent{Records: again})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery: %v %+v", err, resp)
	}
	if after := eventTypes(t, u.UUID); !slices.Equal(after, before) {
		t.Fatalf("events after the redelivery %v, before %v", after, before)
	}
	if n := len(env.MailsTo(t, u.Email, "")); n != mails {
		t.Fatalf("%d mails after the redelivery, %d before", n, mails)
	}
}

// TestDeletedUserLeavesNothing scans the whole table for anything naming a
// deleted user once the stream has run: self-deletion with a pending email
// change and a failed mail, a staff deletion, and an item removed the way
// TTL removes an unactivated account.
func TestDeletedUserLeavesNothing(t *testing.T) {
	scan := func(t *testing.T, needles ...string) {
		t.Helper()
		env.Drain(t)
		p := dynamodb.NewScanPaginator(env.DB, &dynamodb.ScanInput{TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				var m map[string]any
				_ = attributevalue.UnmarshalMap(it, &m)
				raw, _ := json.Marshal(m)
				for _, n := range needles {
					if strings.Contains(strings.ToLower(string(raw)), strings.ToLower(n)) {
						t.Errorf("an item still names %q: %s", n, raw)
					}
				}
			}
		}
	}
	t.Run("case=self-deletion with mail pending and failed", func(t *testing.T) {
		u := env.NewUser(t, "gone-self")
		newEmail := testenv.Email("gone-new")
		env.SetMailFault(func(m mail.Message) error {
			if m.To == newEmail {
				return errSESDown
			}
			return nil
		})
		env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
		env.Drain(t)
		env.SetMailFault(nil)
		if len(outboxOf(t, u.UUID)) != 1 {
			t.Fatal("the failed mail should be held before the deletion")
		}
		if r := env.Do(t, "DELETE", "/api/users", nil, auth(u)...); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		scan(t, u.UUID, u.Email, newEmail)
		if types := eventTypes(t, u.UUID); types[len(types)-1] != streams.Deleted {
			t.Fatalf("events %v end without account.deleted", types)
		}
	})
	t.Run("case=removed as TTL removes an unactivated account", func(t *testing.T) {
		email := testenv.Email("gone-ttl")
		id := env.SignUp(t, email)
		env.Drain(t)
		// TTL deletes the user's item alone; the claims' own TTL may come
		// hours later. The cascade must not wait for it.
		if _, err := env.DB.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(env.Config.TableName), Key: users.UserKey(id)}); err != nil {
			t.Fatal(err)
		}
		scan(t, id, email)
		// The address is free again at once.
		env.SignUp(t, email)
	})
}

// TestEveryEventFromItsFlow checks that each flow produces its own event
// types and no others.
func TestEveryEventFromItsFlow(t *testing.T) {
	staff := env.NewStaff(t, "events-staff", false)
	email := testenv.Email("events")
	id := env.SignUp(t, email)
	step := func(name string, want []string, do func()) {
		t.Helper()
		before := len(eventTypes(t, id))
		do()
		got := eventTypes(t, id)[before:]
		if !slices.Equal(got, want) {
			t.Errorf("%s: events %v, want %v", name, got, want)
		}
	}
	if got := eventTypes(t, id); !slices.Equal(got, []string{streams.SignedUp}) {
		t.Fatalf("sign-up: events %v", got)
	}
	step("activation", []string{streams.Activated}, func() { env.Activate(t, email) })
	tok := ""
	step("login", nil, func() { tok = env.Login(t, email, testenv.DefaultPassword) })
	u := testenv.User{UUID: id, Email: email, Password: testenv.DefaultPassword, Token: tok}
	step("profile change", []string{streams.Updated}, func() {
		env.Do(t, "PATCH", "/api/users/"+id, map[string]any{"first_name": "Eve", "job_title": "Tester"}, auth(u)...)
	})
	evs := env.EventsOf(t, id)
	var d streams.Detail
	if err := json.Unmarshal(evs[len(evs)-1].Detail, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.ChangedFields, []string{"first_name", "full_name", "job_title", "name"}) || d.Version != "1" ||
		d.User.UUID != id || d.User.Email != email || d.User.Status != users.StatusEnabled || evs[len(evs)-1].Source != testenv.EventSource {
		t.Errorf("account.updated: %+v from %s", d, evs[len(evs)-1].Source)
	}
	newEmail := testenv.Email("events-new")
	step("email change requested", nil, func() {
		env.Do(t, "POST", "/api/users/"+id+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
	})
	step("email change confirmed", []string{streams.EmailChanged}, func() {
		code := env.CodeFromMail(t, newEmail, "Confirm")
		if r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": code}, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
	})
	u.Email = newEmail
	u.Token = env.Login(t, newEmail, testenv.DefaultPassword)
	newPassword := "events-Changed-7781"
	step("password change", []string{streams.PasswordChanged}, func() {
		env.Do(t, "POST", "/api/users/"+id+"/change_password", map[string]any{"current_password": u.Password, "new_password": newPassword}, auth(u)...)
	})
	step("lockout", []string{streams.Locked}, func() {
		for range 5 {
			env.Do(t, "POST", "/api/auth/login", map[string]any{"login": newEmail, "password": "wrong-Password-000"})
		}
	})
	step("disable", []string{streams.Disabled}, func() {
		env.Do(t, "PATCH", "/api/users/"+id, map[string]any{"is_active": false}, auth(staff)...)
	})
	step("re-enable", []string{streams.Updated}, func() {
		env.Do(t, "PATCH", "/api/users/"+id, map[string]any{"is_active": true}, auth(staff)...)
	})
	step("bounce", []string{streams.EmailBounced}, func() {
		if err := env.MailFeedback(context.Background(), bounceEvent(newEmail)); err != nil {
			t.Fatal(err)
		}
	})
	step("deletion", []string{streams.Deleted}, func() {
		env.Do(t, "DELETE", "/api/users/"+id, nil, auth(staff)...)
	})
	for _, ev := range env.EventsOf(t, id) {
		for _, secretish := range []string{testenv.DefaultPassword, newPassword, "argon2", "token", "code"} {
			if strings.Contains(strings.ToLower(string(ev.Detail)), strings.ToLower(secretish)) {
				t.Errorf("%s carries %q: %s", ev.DetailType, secretish, ev.Detail)
			}
		}
	}
}

// bounceEvent is SNS delivering SES's permanent bounce of a mail to addr
// (the configuration set's event format).
func bounceEvent(addr string) events.SNSEvent {
	msg, _ := json.Marshal(map[string]any{
		"eventType": "Bounce",
		"bounce": map[string]any{"bounceType": "Permanent", "bounceSubType": "General",
			"bouncedRecipients": []map[string]any{{"emailAddress": addr}}},
		"mail": map[string]any{"destination": []string{addr}},
	})
	return events.SNSEvent{Records: []events.SNSEventRecord{{EventSource: "aws:sns", SNS: events.SNSEntity{MessageID: "test", Message: string(msg)}}}}
}

// TestBouncedAddressGetsOnlyEssentialMail: after a permanent bounce, the
// notices stop; a code the person asks for still goes out.
func TestBouncedAddressGetsOnlyEssentialMail(t *testing.T) {
	u := env.NewUser(t, "bounced")
	if err := env.MailFeedback(context.Background(), bounceEvent(strings.ToUpper(u.Email))); err != nil {
		t.Fatal(err)
	}
	env.Drain(t)
	staff := env.NewStaff(t, "bounced-staff", false)
	if r := env.Do(t, "GET", "/api/users/"+u.UUID, nil, auth(staff)...); r.Str("email_status") != users.EmailStatusBounced {
		t.Fatalf("email_status %q", r.Str("email_status"))
	}
	newEmail := testenv.Email("bounced-new")
	env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": newEmail}, auth(u)...)
	env.CodeFromMail(t, newEmail, "Confirm") // the new address is not the bounced one
	if n := len(env.MailsTo(t, u.Email, "about to change")); n != 0 {
		t.Fatalf("%d notices went to the bounced address", n)
	}
	env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": u.Email})
	env.CodeFromMail(t, u.Email, "Reset")
}
