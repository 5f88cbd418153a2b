package httpapi_test

import (
	"strings"
	"testing"

	"github.com/example/accounts/pkg/httpapi"
)

func TestWebURLProblem(t *testing.T) {
	long := "https://example.org/" + strings.Repeat("a", httpapi.MaxWebURL-len("https://example.org/"))
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://example.org/p/grace.png", true},
		{"http://example.org/p.png?size=64#top", true},
		{"HTTPS://Example.org/p.png", true},
		{"https://[2001:db8::1]:8443/p.png", true},
		{"https://example.org/%20space-escaped.png", true},
		{long, true},
		{long + "a", false},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{"data:image/png;base64,iVBORw0KGgo=", false},
		{"ftp://example.org/p.png", false},
		{"file:///etc/passwd", false},
		{"//example.org/p.png", false},
		{"/p/grace.png", false},
		{"p/grace.png", false},
		{"https://", false},
		{"https:///p.png", false},
		{"https://:443/p.png", false},
		{"http:example.org/p.png", false},
		{"https://user@example.org/p.png", false},
		{"https://user:pw@example.org/p.png", false},
		{"https://evil.example\\@example.org/p.png", false},
		{"https://example.org/p.png\n", false},
		{"https://example.org/\x00.png", false},
		{"https://example.org/\u0085.png", false},
		{"https://example.org/a b.png", false},
		{"https://example.org/\xff.png", false},
		{"", false},
	} {
		got := httpapi.WebURLProblem(tc.url)
		if (got == "") != tc.ok {
			t.Errorf("WebURLProblem(%q) = %q, want ok=%v", tc.url, got, tc.ok)
		}
	}
}
