package apikeys

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestKeyFormat(t *testing.T) {
	user := uuid.NewString()
	k, err := newKey(user, 19)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseKey(k.Value)
	if err != nil || got != k {
		t.Fatalf("parse(new) = %+v, %v; want %+v", got, err, k)
	}
	if !strings.HasPrefix(k.Value, prefix(k.Value)) || len(prefix(k.Value)) != 11 || !strings.HasPrefix(k.Value, "ak_") {
		t.Errorf("prefix %q of %q", prefix(k.Value), k.Value)
	}
	other, _ := newKey(user, 19)
	if prefix(other.Value) == prefix(k.Value) || other.Value == k.Value {
		t.Error("two keys of one user share a prefix")
	}
	for _, bad := range []string{"", "ak_", k.Value[3:], "xx_" + k.Value[3:], k.Value + "A", k.Value[:len(k.Value)-1], strings.Replace(k.Value, k.Value[5:6], "*", 1)} {
		if _, err := parseKey(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
	// A slot past MaxKeys is no key we issue.
	b, _ := enc.DecodeString(k.Value[3:])
	b[32] = MaxKeys
	if _, err := parseKey("ak_" + enc.EncodeToString(b)); err == nil {
		t.Error("a slot past MaxKeys parsed")
	}
}
