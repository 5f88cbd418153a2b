package config_test

import (
	"slices"
	"testing"

	"github.com/example/accounts/pkg/config"
)

func TestBrandingValues(t *testing.T) {
	base := map[string]string{"TABLE_NAME": "t", "MAIL_FROM": "a@b.example", "TOKEN_KEY": "0123456789abcdef0123"}
	for _, c := range []struct {
		desc string
		env  map[string]string
		ok   bool
	}{
		{"empty values take the defaults", nil, true},
		{"a product name with spaces and accents", map[string]string{"PRODUCT_NAME": "Société Générale ID"}, true},
		{"markup in the product name is refused", map[string]string{"PRODUCT_NAME": "<b>x</b>"}, false},
		{"a newline in the product name is refused", map[string]string{"PRODUCT_NAME": "a\nb"}, false},
		{"an https logo", map[string]string{"LOGO_URL": "https://cdn.example.com/logo.svg"}, true},
		{"an http logo is refused", map[string]string{"LOGO_URL": "http://cdn.example.com/logo.svg"}, false},
		{"a logo URL with a quote is refused", map[string]string{"LOGO_URL": `https://x.example/a"b`}, false},
		{"a six-digit colour", map[string]string{"ACCENT_COLOR": "#00AA33"}, true},
		{"a colour name is refused", map[string]string{"ACCENT_COLOR": "red"}, false},
		{"a support address", map[string]string{"SUPPORT_EMAIL": "help@example.com"}, true},
		{"a support address with a display name is refused", map[string]string{"SUPPORT_EMAIL": "Help <help@example.com>"}, false},
	} {
		t.Run("case="+c.desc, func(t *testing.T) {
			cfg, err := config.Load(func(k string) string {
				if v, ok := c.env[k]; ok {
					return v
				}
				return base[k]
			})
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err == nil && c.env == nil && (cfg.Branding.ProductName != config.DefaultProductName || cfg.Branding.AccentColor != config.DefaultAccentColor) {
				t.Fatalf("defaults: %+v", cfg.Branding)
			}
		})
	}
}

// Variables names every setting Load reads, the conditional ones (the
// remote source's, read only with a URL) included.
func TestVariables(t *testing.T) {
	vars := config.Variables()
	for _, want := range []string{"TABLE_NAME", "MAIL_FROM", "RATE_LIMIT_LOGIN", "REMOTE_IDP_NAME", "REMOTE_USERINFO_TIMEOUT_MS", "METRICS_NAMESPACE", "SUPPORT_EMAIL", "LOG_LEVEL"} {
		if !slices.Contains(vars, want) {
			t.Errorf("Variables() = %v lacks %s", vars, want)
		}
	}
}
