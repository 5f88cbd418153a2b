package users

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/remote"
)

// MaxAffiliations bounds the affiliations a remote source may set.
const MaxAffiliations = 50

// MaxRemoteSub bounds the sub claim an account is linked to (OpenID Connect
// allows at most 255 ASCII characters).
const MaxRemoteSub = 255

// The answers when the identity source's claims are not the account's.
var (
	errOtherIdentity = httpapi.Conflict("This account is linked to another identity at the identity source " +
		"(its sub differs); nothing was changed.")
	errIdentityTaken = httpapi.Conflict("That identity at the identity source is linked to another account; nothing was changed.")
)

// PullRemote writes what the remote identity source says about target: the
// fields it gave, the list of those fields (identity_provider_fields, which
// the user may then not change), the provider's name, label and management
// URL, and identity_source.
//
// The source is asked by username, which users can change, so its answer is
// bound to a stable id: the first pull links the account to the answer's
// sub (remote_sub, with a REMOTESUB# claim in the same transaction, so a sub
// links one account at most), and later pulls are applied only when the
// sub is the linked one, in one UpdateItem. Every write is conditional on
// the sub and username it checked. An answer without a sub is refused (502),
// a sub other than the linked one or linked to another account is a 409;
// neither writes anything.
//
// A value that fails the same checks as a PATCH is left out, unlocked, and
// logged by field name. A field the source set before but no longer gives
// keeps its value and is unlocked. The email is never taken from the source,
// and registration_method is kept: an account that signed up here stays
// "default" (or "admin") and only gains an identity_source.
func (s *Service) PullRemote(ctx context.Context, target *User, c remote.Claims) (*User, error) {
	sub := c.Subject
	if sub == "" || len(sub) > MaxRemoteSub || !utf8.ValidString(sub) || strings.ContainsFunc(sub, unicode.IsControl) {
		return nil, httpapi.BadGateway("The identity source's answer has no usable sub claim to link the account to.",
			errors.New("remote: the answer's sub is missing, too long or not text"))
	}
	if target.RemoteSub != "" && target.RemoteSub != sub {
		return nil, errOtherIdentity
	}
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

	// The answer is about the username asked for and links to sub: both
	// must still hold when the write lands.
	upd = upd.Set(expression.Name("remote_sub"), expression.Value(sub))
	cond := expression.Name("username").Equal(expression.Value(target.Username)).And(
		expression.AttributeNotExists(expression.Name("remote_sub")).Or(expression.Name("remote_sub").Equal(expression.Value(sub))))
	// The fields written move the account's index entries (list.go).
	after := *target
	for _, f := range fields {
		switch f {
		case "first_name":
			after.FirstName = next.FirstName
		case "last_name":
			after.LastName = next.LastName
		case "native_name":
			after.NativeName = next.NativeName
		case "job_title":
			after.JobTitle = next.JobTitle
		case "phone_number":
			after.PhoneNumber = next.PhoneNumber
		case "organization":
			after.Organization = next.Organization
		}
	}
	upd, cond, idx, _ := s.st.listingWrite(target, &after, upd, cond)
	if target.RemoteSub == sub {
		var u *User
		var err error
		if len(idx) > 0 {
			u, err = s.st.transactUpdate(ctx, target, upd, cond, idx)
		} else {
			u, err = s.st.update(ctx, target, upd, cond)
		}
		if errors.Is(err, errConditionFailed) {
			return nil, s.pullRaced(ctx, target.UUID, sub)
		}
		return u, err
	}
	return s.linkRemote(ctx, target, sub, upd, cond, idx)
}

// linkRemote writes an account's first pull with the claim that links sub
// to it, in one transaction. A claim whose holder no longer exists (an
// account deleted while it was being linked, or an unactivated one that
// expired) is taken over; one held by an existing account is a 409.
func (s *Service) linkRemote(ctx context.Context, target *User, sub string, upd expression.UpdateBuilder, cond expression.ConditionBuilder, idx []types.TransactWriteItem) (*User, error) {
	id := target.UUID
	item, err := s.st.userUpdate(target, upd, cond)
	if err != nil {
		return nil, err
	}
	stale := ""
	for range 3 { // each round follows a holder that went away; more is a pathological race
		_, err := s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: append([]types.TransactWriteItem{item, s.st.takeSubClaim(sub, id, stale)}, idx...)})
		if err == nil {
			u, err := s.st.get(ctx, id)
			if errors.Is(err, ErrNotFound) {
				return nil, httpapi.NotFound("") // deleted right after the write
			}
			return u, err
		}
		failed, conditional := txCanceled(err)
		if !conditional {
			return nil, dbError(err)
		}
		if failed[0] {
			return nil, s.pullRaced(ctx, id, sub)
		}
		holder, err := s.st.claimHolder(ctx, remoteSubKey(sub))
		if err != nil {
			return nil, err
		}
		if holder != "" {
			if _, err := s.st.get(ctx, holder); !errors.Is(err, ErrNotFound) {
				if err != nil {
					return nil, err
				}
				return nil, errIdentityTaken
			}
		}
		stale = holder
	}
	return nil, httpapi.Unavailable(errors.New("remote: the sub claim kept changing hands"))
}

// pullRaced answers a pull whose write found the account changed since it
// was read: deleted, linked to another sub, renamed, or its credentials
// changed (store.go asRead).
func (s *Service) pullRaced(ctx context.Context, id, sub string) error {
	u, err := s.st.get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return httpapi.NotFound("") // deleted while the source answered
	case err != nil:
		return err
	case u.RemoteSub != "" && u.RemoteSub != sub:
		return errOtherIdentity
	}
	return httpapi.Unavailable(errors.New("remote: the account was renamed or its credentials changed while the identity source answered"))
}

// takeSubClaim is the transaction item that links sub to user: the claim
// is free, already user's (two first pulls of one account at once), or held
// by stale, an account that no longer exists.
func (st *store) takeSubClaim(sub, user, stale string) types.TransactWriteItem {
	cond := "attribute_not_exists(pk) OR #user = :u"
	vals := map[string]types.AttributeValue{":u": str(user)}
	if stale != "" {
		cond += " OR #user = :stale"
		vals[":stale"] = str(stale)
	}
	return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: claimItem(remoteSubKey(sub), user, 0),
		ConditionExpression: aws.String(cond), ExpressionAttributeNames: map[string]string{"#user": "user"}, ExpressionAttributeValues: vals}}
}

// claimHolder is the uuid holding claim k, "" when nobody does.
func (st *store) claimHolder(ctx context.Context, k map[string]types.AttributeValue) (string, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", dbError(err)
	}
	u, _ := out.Item["user"].(*types.AttributeValueMemberS)
	if u == nil {
		return "", nil
	}
	return u.Value, nil
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
