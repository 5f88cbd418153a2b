package config_test

import (
	"testing"

	"github.com/example/accounts/pkg/config"
)

func TestCountShards(t *testing.T) {
	env := func(shards string) func(string) string {
		vars := map[string]string{"TABLE_NAME": "t", "MAIL_FROM": "a@example.com", "TOKEN_KEY": "0123456789abcdef0123", "COUNT_SHARDS": shards}
		return func(k string) string { return vars[k] }
	}
	for _, tc := range []struct {
		value string
		want  int // 0: refused
	}{{"", config.DefaultCountShards}, {"1", 1}, {"64", 64}, {"0", 0}, {"65", 0}, {"x", 0}} {
		c, err := config.Load(env(tc.value))
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("COUNT_SHARDS=%q accepted (%d)", tc.value, c.CountShards)
		case tc.want != 0 && (err != nil || c.CountShards != tc.want):
			t.Errorf("COUNT_SHARDS=%q: %d, %v; want %d", tc.value, c.CountShards, err, tc.want)
		}
	}
}
