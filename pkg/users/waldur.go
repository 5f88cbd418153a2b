package users

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxName bounds first_name, last_name and native_name (Waldur's 100).
const MaxName = 100

// MaxListItems bounds nationalities, eduperson_assurance and managed_isds.
const MaxListItems = 50

var (
	slugPattern    = regexp.MustCompile(`^[-a-zA-Z0-9_]+$`)
	countryPattern = regexp.MustCompile(`^[A-Z]{2}$`)
)

// genders are ISO 5218's codes (Waldur's GenderEnum).
var genders = map[int]bool{0: true, 1: true, 2: true, 9: true}

// applyWaldurProfile checks and applies the fields Waldur's UserRequest has
// beyond the contract's first ones.
func applyWaldurProfile(p problems, in *ProfileInput, u *User) {
	if in.Slug != nil {
		s := strings.TrimSpace(*in.Slug)
		switch {
		case s == "":
			p.add("slug", "This field may not be blank.")
		case len(s) > MaxSlug:
			p.add("slug", "Ensure this field has no more than 50 characters.")
		case !slugPattern.MatchString(s):
			p.add("slug", "Enter a valid slug of letters, numbers, underscores or hyphens.")
		}
		*in.Slug, u.Slug = s, s
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{
		{"country_of_residence", in.CountryOfResidence, &u.CountryOfResidence},
		{"nationality", in.Nationality, &u.Nationality},
		{"organization_country", in.OrganizationCountry, &u.OrganizationCountry},
	} {
		if f.v == nil {
			continue
		}
		c := strings.ToUpper(strings.TrimSpace(*f.v))
		if c != "" && !countryPattern.MatchString(c) {
			p.add(f.name, "Enter an ISO 3166-1 alpha-2 country code.")
		}
		*f.v, *f.dst = c, c
	}
	if in.Gender != nil {
		raw := bytes.TrimSpace(in.Gender)
		var g int
		switch {
		case bytes.Equal(raw, []byte("null")):
			u.Gender = nil
		case json.Unmarshal(raw, &g) != nil || !genders[g]:
			p.add("gender", "Select a valid choice: 0, 1, 2 or 9 (ISO 5218), or null.")
		default:
			u.Gender = &g
		}
	}
	country := func(s string) bool { return countryPattern.MatchString(s) }
	token := func(s string) bool {
		return s != "" && utf8.RuneCountInString(s) <= 255 && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
	}
	for _, f := range []struct {
		name  string
		v     *[]string
		dst   *[]string
		upper bool
		ok    func(string) bool
		what  string
	}{
		{"nationalities", in.Nationalities, &u.Nationalities, true, country, "an ISO 3166-1 alpha-2 country code"},
		{"eduperson_assurance", in.EdupersonAssurance, &u.EdupersonAssurance, false, token, "a URI of at most 255 characters"},
		{"managed_isds", in.ManagedISDs, &u.ManagedISDs, false, token, "an identifier of at most 255 characters without spaces"},
	} {
		if f.v == nil {
			continue
		}
		if len(*f.v) > MaxListItems {
			p.add(f.name, "Ensure this list has no more than 50 items.")
			continue
		}
		out := make([]string, 0, len(*f.v))
		for _, s := range *f.v {
			s = strings.TrimSpace(s)
			if f.upper {
				s = strings.ToUpper(s)
			}
			if !f.ok(s) {
				p.add(f.name, "Each item must be "+f.what+".")
				break
			}
			out = append(out, s)
		}
		*f.v, *f.dst = out, out
	}
	if in.IsIdentityManager != nil {
		u.IsIdentityManager = *in.IsIdentityManager
	}
}

// staffOnlyChanges names the staff-only Waldur fields in would change on u
// (an unchanged echo, as GET-modify-PUT sends, is no change).
func staffOnlyChanges(in *ProfileInput, u *User) []string {
	var out []string
	if in.Slug != nil && strings.TrimSpace(*in.Slug) != u.SlugOrDefault() {
		out = append(out, "slug")
	}
	if in.IsIdentityManager != nil && *in.IsIdentityManager != (u.IsIdentityManager || len(u.ManagedISDs) > 0) {
		out = append(out, "is_identity_manager")
	}
	if in.ManagedISDs != nil && strings.Join(*in.ManagedISDs, "\x00") != strings.Join(u.ManagedISDs, "\x00") {
		out = append(out, "managed_isds")
	}
	return out
}

// unchangedEcho drops from in the staff-only fields a non-staff caller sent
// back unchanged, so they write nothing.
func unchangedEcho(in *ProfileInput) {
	in.Slug, in.IsIdentityManager, in.ManagedISDs = nil, nil, nil
}
