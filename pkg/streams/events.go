package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/example/accounts/pkg/users"
)

// Event types (an event's detail-type; docs/EVENTS.md).
const (
	SignedUp        = "account.signed_up"
	Activated       = "account.activated"
	Updated         = "account.updated"
	EmailChanged    = "account.email_changed"
	PasswordChanged = "account.password_changed"
	Locked          = "account.locked"
	Disabled        = "account.disabled"
	Deleted         = "account.deleted"
	EmailBounced    = "account.email_bounced"
)

// DetailVersion is the version of the detail's shape.
const DetailVersion = "1"

// Detail is an event's detail. It never carries a password, hash, token or
// code: only who the user is and what changed.
type Detail struct {
	Version    string `json:"version"`
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	OccurredAt string `json:"occurred_at"`
	User       User   `json:"user"`
	// ChangedFields (account.updated) are the user object's fields that
	// changed, by their names in the contract.
	ChangedFields []string `json:"changed_fields,omitempty"`
	// PreviousEmail (account.email_changed) is the address before.
	PreviousEmail string `json:"previous_email,omitempty"`
	// Reason (account.deleted) is "deleted" (by a request) or "expired"
	// (an account nobody activated, removed by the table's TTL).
	Reason string `json:"reason,omitempty"`
	// EmailStatus (account.email_bounced) is bounced or complained.
	EmailStatus string `json:"email_status,omitempty"`
	// LockedUntil (account.locked) is when logins are possible again.
	LockedUntil string `json:"locked_until,omitempty"`
}

// User is who an event is about.
type User struct {
	UUID      string `json:"uuid"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	Status    string `json:"status"`
	IsActive  bool   `json:"is_active"`
	IsStaff   bool   `json:"is_staff"`
	IsSupport bool   `json:"is_support"`
}

func userRef(u *users.User) User {
	return User{UUID: u.UUID, Username: u.Username, Email: u.Email, Status: u.Status,
		IsActive: u.IsActive, IsStaff: u.IsStaff, IsSupport: u.IsSupport}
}

// quietFields change without being news: bookkeeping, a login's address,
// a pending email change (its confirmation is account.email_changed), and
// the address's mail status (account.email_bounced).
var quietFields = map[string]bool{
	"modified": true, "token_expires_at": true, "has_active_session": true, "token": true,
	"email_status": true, "url": true, "requested_email": true,
	"ip_address": true, // where the last login came from
}

// covers are the user object's fields an event already tells of, which
// account.updated then leaves out.
var covers = map[string][]string{
	Activated:    {"is_active", "status"},
	Disabled:     {"is_active", "status"},
	EmailChanged: {"email", "username"},
}

// accountEvents are the events one record of a user's item stands for.
func accountEvents(rec events.DynamoDBEventRecord, before, after *users.User) []Detail {
	at := rec.Change.ApproximateCreationDateTime.UTC()
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var out []Detail
	add := func(typ string, u *users.User, f func(*Detail)) {
		d := Detail{Version: DetailVersion, EventID: fmt.Sprintf("%s:%d", rec.EventID, len(out)), Type: typ,
			OccurredAt: at.Format(time.RFC3339), User: userRef(u)}
		if f != nil {
			f(&d)
		}
		out = append(out, d)
	}
	switch {
	case before == nil && after != nil:
		add(SignedUp, after, nil)
	case before != nil && after == nil:
		reason := "deleted"
		if rec.UserIdentity != nil && rec.UserIdentity.Type == "Service" && rec.UserIdentity.PrincipalID == "dynamodb.amazonaws.com" {
			reason = "expired"
		}
		add(Deleted, before, func(d *Detail) { d.Reason = reason })
	case before != nil && after != nil:
		if before.Status == users.StatusUnverified && after.Status == users.StatusEnabled {
			add(Activated, after, nil)
		}
		if after.Status == users.StatusDisabled && before.Status != users.StatusDisabled {
			add(Disabled, after, nil)
		}
		if after.Email != before.Email {
			add(EmailChanged, after, func(d *Detail) { d.PreviousEmail = before.Email })
		}
		// A new hash under a new credential epoch is a new password; a
		// rehash of the same password (a legacy hash upgraded at login)
		// keeps the epoch.
		if after.PasswordHash != "" && after.PasswordHash != before.PasswordHash && after.CredEpoch != before.CredEpoch {
			add(PasswordChanged, after, nil)
		}
		if after.LockedUntil > before.LockedUntil && after.LockedUntil > at.UnixMilli() {
			add(Locked, after, func(d *Detail) {
				d.LockedUntil = time.UnixMilli(after.LockedUntil).UTC().Format(time.RFC3339)
			})
		}
		if after.EmailStatus != before.EmailStatus &&
			(after.EmailStatus == users.EmailStatusBounced || after.EmailStatus == users.EmailStatusComplained) {
			add(EmailBounced, after, func(d *Detail) { d.EmailStatus = after.EmailStatus })
		}
		told := map[string]bool{}
		for _, d := range out {
			for _, f := range covers[d.Type] {
				told[f] = true
			}
		}
		var changed []string
		for _, f := range changedFields(before, after, at) {
			if !told[f] {
				changed = append(changed, f)
			}
		}
		if len(changed) > 0 {
			add(Updated, after, func(d *Detail) { d.ChangedFields = changed })
		}
	}
	return out
}

// changedFields are the user object's fields that differ between before
// and after, by name, sorted.
func changedFields(before, after *users.User, at time.Time) []string {
	b, a := viewMap(before, at), viewMap(after, at)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !quietFields[k] && string(a[k]) != string(b[k]) {
			out = append(out, k)
		}
	}
	return out
}

func viewMap(u *users.User, at time.Time) map[string]json.RawMessage {
	raw, _ := json.Marshal(u.ToView("", 0, at))
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m
}

// markerKey is the item that records a record's events as published.
func markerKey(eventID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "EVENTS#" + eventID},
		"sk": &types.AttributeValueMemberS{Value: "PUBLISHED"},
	}
}

// markerTTL is how long a published record's marker is kept: longer than a
// stream keeps records (24 hours), so no redelivery outlives it.
const markerTTL = 48 * time.Hour

// publish puts a record's events on the bus once: a record whose marker
// exists was published already; the marker is written after the events,
// so a failure in between publishes them again (at least once; consumers
// can tell a repeat by the detail's event_id).
func (h *Handler) publish(ctx context.Context, rec events.DynamoDBEventRecord, details []Detail) error {
	if len(details) == 0 || h.Events == nil {
		return nil
	}
	got, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Table), Key: markerKey(rec.EventID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return err
	}
	if got.Item != nil {
		h.logger(ctx).InfoContext(ctx, "events already published", "event_id", rec.EventID)
		return nil
	}
	entries := make([]ebtypes.PutEventsRequestEntry, len(details))
	for i, d := range details {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		entries[i] = ebtypes.PutEventsRequestEntry{EventBusName: aws.String(h.Bus), Source: aws.String(h.Source),
			DetailType: aws.String(d.Type), Detail: aws.String(string(b)), Time: aws.Time(rec.Change.ApproximateCreationDateTime.UTC())}
	}
	for attempt := 0; len(entries) > 0; attempt++ {
		out, err := h.Events.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			return err
		}
		var again []ebtypes.PutEventsRequestEntry
		for i, r := range out.Entries {
			if r.ErrorCode != nil && i < len(entries) {
				again = append(again, entries[i])
			}
		}
		if len(again) > 0 && attempt == 2 {
			return fmt.Errorf("eventbridge refused %d of the record's events: %s", len(again), aws.ToString(out.Entries[0].ErrorCode))
		}
		entries = again
	}
	for _, d := range details {
		h.logger(ctx).InfoContext(ctx, "event published", "event_id", d.EventID, "type", d.Type, "user", d.User.UUID)
	}
	item := markerKey(rec.EventID)
	item["ttl"] = &types.AttributeValueMemberN{Value: fmt.Sprint(h.now().Add(markerTTL).Unix())}
	_, err = h.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(h.Table), Item: item})
	return err
}
