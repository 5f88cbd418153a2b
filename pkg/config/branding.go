package config

import (
	"fmt"
	"net/url"
	"regexp"
)

// Branding is how the pages and the mails name and show the product; the
// support address they give is Config.SupportEmail.
type Branding struct {
	ProductName string // PRODUCT_NAME; default "Accounts"
	LogoURL     string // LOGO_URL: an https image URL, or empty
	AccentColor string // ACCENT_COLOR: #rrggbb; default #0b5cad
}

// Defaults of the branding parameters.
const (
	DefaultProductName = "Accounts"
	DefaultAccentColor = "#0b5cad"
)

func loadBranding(getenv func(string) string) (Branding, error) {
	b := Branding{
		ProductName: getenv("PRODUCT_NAME"),
		LogoURL:     getenv("LOGO_URL"),
		AccentColor: getenv("ACCENT_COLOR"),
	}
	for _, c := range []struct {
		name, v string
		re      *regexp.Regexp
	}{
		{"PRODUCT_NAME", b.ProductName, ProductNamePattern},
		{"LOGO_URL", b.LogoURL, LogoURLPattern},
		{"ACCENT_COLOR", b.AccentColor, AccentColorPattern},
		{"SUPPORT_EMAIL", getenv("SUPPORT_EMAIL"), SupportEmailPattern},
	} {
		if !c.re.MatchString(c.v) {
			return b, fmt.Errorf("config: %s %q must match %s", c.name, c.v, c.re)
		}
	}
	if err := checkURL("LOGO_URL", b.LogoURL, LogoURLPattern); err != nil {
		return b, err
	}
	if b.ProductName == "" {
		b.ProductName = DefaultProductName
	}
	if b.AccentColor == "" {
		b.AccentColor = DefaultAccentColor
	}
	return b, nil
}

// LogoOrigin is the scheme and host of the logo URL ("" without a logo),
// the one image source besides the pages' own that their policy allows.
func (b Branding) LogoOrigin() string {
	if b.LogoURL == "" {
		return ""
	}
	u, err := url.Parse(b.LogoURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
