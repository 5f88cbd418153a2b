package apikeys

import (
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/google/uuid"
)

// The presented key: "ak_" and the base64url of the key's id (16 bytes), its
// user's uuid (16), its slot (1) and 256 random bits (32). The id, the user
// and the slot are not secret: they let authentication go straight to the
// one item that holds the key's hash, read beside the user in one request.
const (
	scheme      = "ak_"
	randomBytes = 32
	rawLen      = 16 + 16 + 1 + randomBytes
	// prefixLen is how much of a key is shown again: "ak_" and 8 characters
	// of its id (48 bits), so that people can tell their keys apart.
	prefixLen = len(scheme) + 8
)

var enc = base64.RawURLEncoding

// errMalformed is a string that is no key we issue.
var errMalformed = errors.New("apikeys: malformed key")

// presented is a key as a client sends it.
type presented struct {
	ID, User string
	Slot     int
	Value    string
}

// newKey makes a key for user in slot.
func newKey(user string, slot int) (presented, error) {
	uid, err := uuid.Parse(user)
	if err != nil {
		return presented{}, err
	}
	id := uuid.New()
	b := make([]byte, rawLen)
	copy(b, id[:])
	copy(b[16:], uid[:])
	b[32] = byte(slot)
	if _, err := rand.Read(b[33:]); err != nil {
		return presented{}, err
	}
	return presented{ID: id.String(), User: user, Slot: slot, Value: scheme + enc.EncodeToString(b)}, nil
}

// parseKey reads a key presented by a client.
func parseKey(s string) (presented, error) {
	if len(s) != len(scheme)+enc.EncodedLen(rawLen) || s[:len(scheme)] != scheme {
		return presented{}, errMalformed
	}
	b, err := enc.DecodeString(s[len(scheme):])
	if err != nil || len(b) != rawLen {
		return presented{}, errMalformed
	}
	id, err1 := uuid.FromBytes(b[:16])
	user, err2 := uuid.FromBytes(b[16:32])
	if err1 != nil || err2 != nil || int(b[32]) >= MaxKeys {
		return presented{}, errMalformed
	}
	return presented{ID: id.String(), User: user.String(), Slot: int(b[32]), Value: s}, nil
}

// prefix is the part of a key that may be shown again.
func prefix(value string) string { return value[:prefixLen] }
