package users

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// What the stream function (pkg/streams) needs to know of the table's
// items, so that it reaches into no key format of its own.

// ItemKind tells what a table item is from its key.
type ItemKind int

// Item kinds the stream function acts on; every other item is ignored.
const (
	ItemOther ItemKind = iota
	ItemUser           // a user's item
	ItemMail           // an outbox mail (outbox.go)
)

// KindOf tells what the item with key pk, sk is.
func KindOf(pk, sk string) ItemKind {
	if !strings.HasPrefix(pk, userPrefix) {
		return ItemOther
	}
	switch {
	case sk == userSK:
		return ItemUser
	case strings.HasPrefix(sk, MailSKPrefix):
		return ItemMail
	}
	return ItemOther
}

// UserPK is the partition key of user id's items (the user and its mails).
func UserPK(id string) string { return userPrefix + id }

// UserKey is the key of user id's item.
func UserKey(id string) map[string]types.AttributeValue { return userKey(id) }

// ClaimKeys are the keys of the claims u holds or held: its email,
// username, slug and remote identity.
func ClaimKeys(u *User) []map[string]types.AttributeValue {
	keys := []map[string]types.AttributeValue{emailKey(u.Email), usernameKey(u.Username)}
	if u.Slug != "" {
		keys = append(keys, slugKey(u.Slug))
	}
	if u.RemoteSub != "" {
		keys = append(keys, remoteSubKey(u.RemoteSub))
	}
	return keys
}

// EmailClaimKey is the key of the claim of email.
func EmailClaimKey(email string) map[string]types.AttributeValue { return emailKey(email) }

// IsDecoyOwner reports whether id is the owner of decoy mails.
func IsDecoyOwner(id string) bool { return id == unknownUser }

// MarshalOutbox is the item of an outbox mail.
func MarshalOutbox(pk, sk string, om OutboxMail) (map[string]types.AttributeValue, error) {
	return marshalOutbox(pk, sk, om)
}
