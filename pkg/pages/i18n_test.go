package pages

import "testing"

func TestNegotiate(t *testing.T) {
	for _, c := range []struct {
		desc, preferred, accept, want string
	}{
		{"nothing gives English", "", "", "en"},
		{"the account's language wins over the browser's", "de", "en-US,en;q=0.9", "de"},
		{"a regional preferred_language counts", "de_CH", "", "de"},
		{"an unsupported preferred_language falls back to the browser", "fr", "de-DE,de;q=0.9", "de"},
		{"the browser's best supported language", "", "fr-FR,fr;q=0.9,de;q=0.8,en;q=0.7", "de"},
		{"quality values decide, not order", "", "en;q=0.4,de;q=0.9", "de"},
		{"q=0 means not wanted", "", "de;q=0,en;q=0.1", "en"},
		{"garbage is ignored", "", ";;,q=x,de;q=abc", "en"},
	} {
		t.Run("case="+c.desc, func(t *testing.T) {
			if got := negotiate(c.preferred, c.accept); got != c.want {
				t.Fatalf("negotiate(%q, %q) = %q, want %q", c.preferred, c.accept, got, c.want)
			}
		})
	}
}

// Every key of every language has an English text, and every key the
// English catalogue has is translated (the service's sentences aside,
// which fall back to English when a new one appears).
func TestCataloguesAreComplete(t *testing.T) {
	for lang, msgs := range messages {
		for k := range msgs {
			if _, ok := messages["en"][k]; !ok && lang != "en" && !isServiceSentence(k) {
				t.Errorf("%s has %q, which English lacks", lang, k)
			}
		}
	}
	for k := range messages["en"] {
		if _, ok := messages["de"][k]; !ok && k != "lang.en" && k != "lang.de" {
			t.Errorf("German lacks %q", k)
		}
	}
}

// isServiceSentence tells the service's own sentences (translated by
// their English text) from the pages' keys.
func isServiceSentence(k string) bool {
	for _, r := range k {
		if r == ' ' {
			return true
		}
	}
	return false
}
