package users

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/remote"
)

// MaxAffiliations bounds the affiliations a remote source may set.
const MaxAffiliations = 50

// PullRemote writes what the remote identity source says about target, in
// one UpdateItem: the fields it gave, the list of those fields
// (identity_provider_fields, which the user may then not change), the
// provider's name, label and management URL, and identity_source.
//
// A value that fails the same checks as a PATCH is left out, unlocked, and
// logged by field name. A field the source set before but no longer gives
// keeps its value and is unlocked. The email is never taken from the source,
// and registration_method is kept: an account that signed up here stays
// "default" (or "admin") and only gains an identity_source.
func (s *Service) PullRemote(ctx context.Context, target *User, c remote.Claims) (*User, error) {
	now := s.now()
	rc := s.cfg.Remote
	in := ProfileInput{
		FirstName: given(c.FirstName), LastName: given(c.LastName), NativeName: given(c.NativeName),
		JobTitle: given(c.JobTitle), PhoneNumber: given(c.PhoneNumber), Organization: given(c.Organization),
		PreferredLanguage: given(c.PreferredLanguage), BirthDate: given(c.BirthDate), Image: given(c.Image),
	}
	p := problems{}
	next := *target
	applyProfile(p, &in, &next, now)

	upd := bump(expression.UpdateBuilder{}, now)
	var fields, refused []string
	for _, f := range []struct {
		name string
		sent *string
		v    string
	}{
		{"first_name", in.FirstName, next.FirstName},
		{"last_name", in.LastName, next.LastName},
		{"native_name", in.NativeName, next.NativeName},
		{"job_title", in.JobTitle, next.JobTitle},
		{"phone_number", in.PhoneNumber, next.PhoneNumber},
		{"organization", in.Organization, next.Organization},
		{"preferred_language", in.PreferredLanguage, next.PreferredLanguage},
		{"birth_date", in.BirthDate, next.BirthDate},
		{"image", in.Image, next.Image},
	} {
		switch {
		case f.sent == nil:
		case len(p[f.name]) > 0 || f.v == "":
			refused = append(refused, f.name)
		default:
			upd = upd.Set(expression.Name(f.name), expression.Value(f.v))
			fields = append(fields, f.name)
		}
	}
	if aff := affiliations(c.Affiliations); len(aff) > 0 {
		upd = upd.Set(expression.Name("affiliations"), expression.Value(aff))
		fields = append(fields, "affiliations")
	} else if len(c.Affiliations) > 0 {
		refused = append(refused, "affiliations")
	}
	if len(refused) > 0 {
		s.log.WarnContext(ctx, "identity source values not applied", "request_id", httpapi.RequestID(ctx),
			"user", target.UUID, "fields", strings.Join(refused, ","))
	}

	setOrRemove := func(attr string, v any, empty bool) {
		if empty {
			upd = upd.Remove(expression.Name(attr))
		} else {
			upd = upd.Set(expression.Name(attr), expression.Value(v))
		}
	}
	setOrRemove("identity_provider_fields", fields, len(fields) == 0)
	setOrRemove("identity_provider_name", rc.Name, rc.Name == "")
	setOrRemove("identity_provider_label", rc.Label, rc.Label == "")
	setOrRemove("identity_provider_management_url", rc.ManagementURL, rc.ManagementURL == "")
	setOrRemove("identity_source", rc.Name, rc.Name == "")

	u, err := s.st.update(ctx, target, upd, exists())
	if errors.Is(err, errConditionFailed) {
		return nil, httpapi.NotFound("") // deleted while the source answered
	}
	return u, err
}

// given is a claim as a PATCH would send it: absent when empty.
func given(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// affiliations keeps the distinct, non-blank entries of at most
// MaxShortString characters, at most MaxAffiliations of them.
func affiliations(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range in {
		a = strings.TrimSpace(a)
		if a == "" || seen[a] || !utf8.ValidString(a) || utf8.RuneCountInString(a) > MaxShortString {
			continue
		}
		seen[a] = true
		out = append(out, a)
		if len(out) == MaxAffiliations {
			break
		}
	}
	return out
}
