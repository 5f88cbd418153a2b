package users

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// CanSee reports whether actor may read target: themselves, staff, support.
func CanSee(actor, target *User) bool {
	return actor.UUID == target.UUID || actor.IsStaff || actor.IsSupport
}

// CanChange reports whether actor may change target: themselves or staff.
func CanChange(actor, target *User) bool {
	return actor.UUID == target.UUID || actor.IsStaff
}

// ParseIfMatch reads an If-Match header into a version; ok is false when
// the header is absent or "*".
func ParseIfMatch(h string) (version int64, ok bool, err error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, false, nil
	}
	h = strings.TrimPrefix(h, "W/")
	v, perr := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	if perr != nil {
		return 0, false, httpapi.PreconditionFailed()
	}
	return v, true, nil
}

// Update changes target's profile as actor asks (PATCH, or PUT when put).
// Only the fields sent are written, so two PATCHes of different fields at
// once both persist; ifMatch, when given, makes the write conditional on the
// version the client read.
func (s *Service) Update(ctx context.Context, actor, target *User, in ProfileInput, put bool, ifMatch string) (*User, error) {
	want, hasVersion, err := ParseIfMatch(ifMatch)
	if err != nil {
		return nil, err
	}
	if hasVersion && want != target.Version {
		return nil, httpapi.PreconditionFailed()
	}
	in.aliases()
	staff := actor.IsStaff
	if !staff {
		var denied []string
		if in.IsStaff != nil && *in.IsStaff != target.IsStaff {
			denied = append(denied, "is_staff")
		}
		if in.IsSupport != nil && *in.IsSupport != target.IsSupport {
			denied = append(denied, "is_support")
		}
		// An UNVERIFIED account is already inactive: is_active:false (as a
		// GET-modify-PUT echoes it) leaves it waiting for activation.
		if in.IsActive != nil && *in.IsActive != target.IsActive {
			denied = append(denied, "is_active")
		}
		denied = append(denied, staffOnlyChanges(&in, target)...)
		// Only the stored address byte for byte (as GET-modify-PUT echoes it)
		// is no change; a case or Unicode variant would rewrite it.
		if in.Email != nil && *in.Email != target.Email {
			return nil, httpapi.Forbidden("Change your email with change_email, which confirms the new address.")
		}
		if len(denied) > 0 {
			return nil, httpapi.Forbidden("You may not change: " + strings.Join(denied, ", ") + ".")
		}
		in.Email = nil // the echo writes nothing
		unchangedEcho(&in)
	}
	p := problems{}
	if in.Password != nil {
		p.add("password", "Change a password with change_password.")
	}
	if put && in.Username == nil {
		p.add("username", "This field is required.")
	}
	next := *target
	if in.Username != nil {
		un, msg := ValidUsername(*in.Username)
		if msg != "" {
			p.add("username", msg)
		}
		next.Username = un
	}
	if in.Email != nil {
		e, msg := ValidEmail(*in.Email)
		if msg != "" {
			p.add("email", msg)
		}
		next.Email = e
	}
	if in.Username != nil && next.Username != target.Username {
		if msg := usernameIsAnotherEmail(next.Username, next.Email); msg != "" {
			p.add("username", msg)
		}
	}
	if in.Username == nil && in.Email != nil {
		if un, follows := followingUsername(target, next.Email); follows {
			next.Username = un
		}
	}
	now := s.now()
	applyProfile(p, &in, &next, now)
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	if !staff {
		// Fields the identity source set are the source's: sending them back
		// unchanged (GET-modify-PUT) is fine, changing them is not.
		var denied []string
		for _, f := range target.IdentityProviderFields {
			if sentField(&in, f) && fieldValue(&next, f) != fieldValue(target, f) {
				denied = append(denied, f)
			}
		}
		if len(denied) > 0 {
			return nil, httpapi.Forbidden("You may not change: " + strings.Join(denied, ", ") + " (they come from your identity provider).")
		}
	}

	upd := bump(expression.UpdateBuilder{}, now)
	epochMoves, dropActivation := false, false
	set := func(present bool, attr string, v any, empty bool) {
		if !present {
			return
		}
		if empty {
			upd = upd.Remove(expression.Name(attr))
		} else {
			upd = upd.Set(expression.Name(attr), expression.Value(v))
		}
	}
	set(in.FirstName != nil, "first_name", next.FirstName, next.FirstName == "")
	set(in.LastName != nil, "last_name", next.LastName, next.LastName == "")
	set(in.NativeName != nil, "native_name", next.NativeName, next.NativeName == "")
	set(in.JobTitle != nil, "job_title", next.JobTitle, next.JobTitle == "")
	set(in.PhoneNumber != nil, "phone_number", next.PhoneNumber, next.PhoneNumber == "")
	set(in.Organization != nil, "organization", next.Organization, next.Organization == "")
	set(in.CivilNumber != nil, "civil_number", next.CivilNumber, next.CivilNumber == "")
	set(in.Description != nil, "description", next.Description, next.Description == "")
	set(in.PreferredLanguage != nil, "preferred_language", next.PreferredLanguage, next.PreferredLanguage == "")
	set(in.BirthDate != nil, "birth_date", next.BirthDate, next.BirthDate == "")
	set(in.Image != nil, "image", next.Image, next.Image == "")
	set(in.NotificationsEnabled != nil, "notifications_enabled", next.NotificationsEnabled, false)
	set(in.TokenLifetime != nil, "token_lifetime", next.TokenLifetime, false)
	set(in.CustomData != nil, "custom_data", next.CustomData, next.CustomData == "")
	set(next.AgreementDate != target.AgreementDate, "agreement_date", next.AgreementDate, false)
	set(in.PersonalTitle != nil, "personal_title", next.PersonalTitle, next.PersonalTitle == "")
	set(in.Gender != nil, "gender", next.Gender, next.Gender == nil)
	set(in.PlaceOfBirth != nil, "place_of_birth", next.PlaceOfBirth, next.PlaceOfBirth == "")
	set(in.CountryOfResidence != nil, "country_of_residence", next.CountryOfResidence, next.CountryOfResidence == "")
	set(in.Nationality != nil, "nationality", next.Nationality, next.Nationality == "")
	set(in.Nationalities != nil, "nationalities", next.Nationalities, len(next.Nationalities) == 0)
	set(in.OrganizationCountry != nil, "organization_country", next.OrganizationCountry, next.OrganizationCountry == "")
	set(in.OrganizationType != nil, "organization_type", next.OrganizationType, next.OrganizationType == "")
	set(in.OrganizationRegistryCode != nil, "organization_registry_code", next.OrganizationRegistryCode, next.OrganizationRegistryCode == "")
	set(in.EdupersonAssurance != nil, "eduperson_assurance", next.EdupersonAssurance, len(next.EdupersonAssurance) == 0)
	if staff {
		set(in.IsIdentityManager != nil, "is_identity_manager", next.IsIdentityManager, !next.IsIdentityManager)
		set(in.ManagedISDs != nil, "managed_isds", next.ManagedISDs, len(next.ManagedISDs) == 0)
	}
	if staff {
		set(in.IsStaff != nil, "is_staff", derefBool(in.IsStaff), false)
		set(in.IsSupport != nil, "is_support", derefBool(in.IsSupport), false)
		// An UNVERIFIED account is already inactive: is_active:false (as a
		// GET-modify-PUT echoes it) leaves it waiting for activation.
		if in.IsActive != nil && *in.IsActive != target.IsActive {
			next.IsActive = *in.IsActive
			next.Status = StatusEnabled
			if !next.IsActive {
				next.Status = StatusDisabled
			}
			upd = upd.Set(expression.Name("is_active"), expression.Value(next.IsActive)).
				Set(expression.Name("status"), expression.Value(next.Status))
			if target.Status == StatusUnverified {
				upd = upd.Remove(expression.Name("ttl"))
				dropActivation = true
			}
			if !next.IsActive {
				// Disabling ends every session and code; re-enabling
				// revives none of them.
				epochMoves = true
			}
		}
	}
	cond := exists()
	emailChanged := NormalizeEmail(next.Email) != NormalizeEmail(target.Email)
	if emailChanged {
		// A staff email change is a confirmed one: what the old address
		// could do (reset, activation codes) ends with the epoch.
		epochMoves = true
	}
	var setPassword secret.Bearer
	switch {
	case dropActivation && next.IsActive:
		// Staff enabling an account nobody activated: whoever signed up
		// with the address may not be its owner, so the sign-up's password
		// goes, the epoch moves on and the address is mailed a code to set
		// one, as for an account staff create without a password.
		var err error
		if setPassword, err = secret.NewCode(target.UUID); err != nil {
			return nil, httpapi.Internal(err)
		}
		c := Code{Hash: secret.Hash(setPassword.Value), Expires: now.Add(ResetTTL), Epoch: target.CredEpoch + 1}
		upd = revokeToken(upd.Add(expression.Name("cred_epoch"), expression.Value(1))).
			Remove(expression.Name("password_hash")).Remove(expression.Name("code_activation")).
			Remove(expression.Name("code_email_change")).Remove(expression.Name("requested_email")).
			Set(expression.Name("code_reset"), expression.Value(c))
	case epochMoves:
		upd = newEpoch(upd)
	}
	if hasVersion {
		cond = cond.And(expression.Name("version").Equal(expression.Value(want)))
	}
	usernameChanged := next.Username != target.Username
	if emailChanged {
		upd = upd.Set(expression.Name("email"), expression.Value(next.Email))
	} else if in.Email != nil && next.Email != target.Email {
		upd = upd.Set(expression.Name("email"), expression.Value(next.Email)) // its canonical form (staff only)
	}
	if usernameChanged {
		upd = upd.Set(expression.Name("username"), expression.Value(next.Username))
	}
	// Only staff reach here with a new slug (staffOnlyChanges); its claim
	// moves with it, from the slug read.
	slugChanged := next.Slug != target.Slug
	if slugChanged {
		upd = upd.Set(expression.Name("slug"), expression.Value(next.Slug))
		was := expression.Name("slug").Equal(expression.Value(target.Slug))
		if target.Slug == "" {
			was = expression.AttributeNotExists(expression.Name("slug"))
		}
		cond = cond.And(was)
	}
	// Lists follow the status, flags and username (list.go).
	after := next
	if staff {
		after.IsStaff = derefBool(in.IsStaff) || (in.IsStaff == nil && target.IsStaff)
		after.IsSupport = derefBool(in.IsSupport) || (in.IsSupport == nil && target.IsSupport)
	}
	upd, cond, counts, relisted := s.st.listingWrite(target, &after, upd, cond)
	activating := target.Status == StatusUnverified && next.Status != StatusUnverified
	if emailChanged || usernameChanged {
		// Claims move from the values read: they must still be the user's.
		cond = cond.And(expression.Name("email").Equal(expression.Value(target.Email)),
			expression.Name("username").Equal(expression.Value(target.Username)))
	}
	conflict := func(nu *User, err error) (*User, error) {
		if errors.Is(err, errConditionFailed) {
			if hasVersion {
				return nil, httpapi.PreconditionFailed()
			}
			if relisted || emailChanged || usernameChanged || slugChanged {
				return nil, errListingRace()
			}
			return nil, httpapi.NotFound("")
		}
		if e, ok := httpapi.AsError(err); ok && slugChanged && !emailChanged && !usernameChanged && e.Message == httpapi.DuplicateMessage {
			return nil, httpapi.Invalid(map[string][]string{"slug": {"Someone already has that slug. Could you try another?"}})
		}
		return nu, err
	}
	if !emailChanged && !usernameChanged && !activating && !relisted && !slugChanged {
		return conflict(s.st.update(ctx, target, upd, cond)) // mails nobody: those below all change a claim
	}
	// Claims move with the fields: release the old, take the new, in the
	// same transaction as the user's write.
	var claims []types.TransactWriteItem
	claimTTL := int64(0)
	if target.Status == StatusUnverified && !activating {
		claimTTL = target.TTL // expire with the account, as its first claims do
	}
	if emailChanged {
		claims = append(claims, s.st.moveClaim(emailKey(target.Email), emailKey(next.Email), target.UUID, claimTTL, now)...)
	} else if activating {
		claims = append(claims, s.st.keepClaim(emailKey(target.Email), target.UUID))
	}
	if usernameChanged {
		claims = append(claims, s.st.moveClaim(usernameKey(target.Username), usernameKey(next.Username), target.UUID, claimTTL, now)...)
	} else if activating {
		claims = append(claims, s.st.keepClaim(usernameKey(target.Username), target.UUID))
	}
	switch {
	case slugChanged && target.Slug == "":
		claims = append(claims, s.st.takeClaim(slugKey(next.Slug), target.UUID, claimTTL, now))
	case slugChanged && !strings.EqualFold(next.Slug, target.Slug):
		claims = append(claims, s.st.moveClaim(slugKey(target.Slug), slugKey(next.Slug), target.UUID, claimTTL, now)...)
	case activating:
		claims = append(claims, slugClaims(target, s.st.keepClaim)...)
	}
	// The notice of an email change to the old address, and the set-password
	// code of an account staff enabled before anyone activated it, are
	// queued in the same transaction (outbox.go).
	var mails []outMail
	if emailChanged {
		mails = append(mails, outMail{kind: MailEmailChanged, msg: s.mailsFor(target).emailChanged(target.Email, next.Email, now)})
	}
	if setPassword.Value != "" {
		mails = append(mails, outMail{kind: MailSetPassword, expires: now.Add(ResetTTL),
			msg: s.mailsFor(&next).setPassword(next.Email, s.link(ctx, s.cfg.ResetLinkBase, "/account/reset", setPassword.Value))})
	}
	queued, err := s.outbox(ctx, target, now, mails...)
	if err != nil {
		return nil, err
	}
	return conflict(s.st.transactUpdate(ctx, target, upd, cond, append(append(claims, counts...), queued...)))
}

func derefBool(b *bool) bool { return b != nil && *b }

// sentField reports whether in sets the named user-object field.
func sentField(in *ProfileInput, field string) bool {
	switch field {
	case "first_name":
		return in.FirstName != nil
	case "last_name":
		return in.LastName != nil
	case "email":
		return in.Email != nil
	case "username":
		return in.Username != nil
	case "native_name":
		return in.NativeName != nil
	case "job_title":
		return in.JobTitle != nil
	case "phone_number":
		return in.PhoneNumber != nil
	case "organization":
		return in.Organization != nil
	case "civil_number":
		return in.CivilNumber != nil
	case "description":
		return in.Description != nil
	case "preferred_language":
		return in.PreferredLanguage != nil
	case "birth_date":
		return in.BirthDate != nil
	case "image":
		return in.Image != nil
	}
	return false
}

// moveClaim releases a claim held by user and takes another.
func (st *store) moveClaim(from, to map[string]types.AttributeValue, user string, ttl int64, now time.Time) []types.TransactWriteItem {
	return []types.TransactWriteItem{st.releaseClaim(from, user), st.takeClaim(to, user, ttl, now)}
}

// transactUpdate writes the user's update with claim changes in one
// transaction, then reads the user back (TransactWriteItems returns nothing).
func (st *store) transactUpdate(ctx context.Context, u *User, upd expression.UpdateBuilder, cond expression.ConditionBuilder, others []types.TransactWriteItem) (*User, error) {
	id := u.UUID
	item, err := st.userUpdate(u, upd, cond)
	if err != nil {
		return nil, err
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append([]types.TransactWriteItem{item}, others...)})
	if err != nil {
		if failed, conditional := txCanceled(err); conditional {
			if failed[0] {
				return nil, errConditionFailed
			}
			return nil, httpapi.BadRequest(httpapi.DuplicateMessage)
		}
		return nil, dbError(err)
	}
	nu, err := st.get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, httpapi.NotFound("") // deleted right after the write
	}
	return nu, err
}

// followingUsername is the username u gets when its email changes to
// newEmail: a username that was the (default) lowercased email follows it.
func followingUsername(u *User, newEmail string) (string, bool) {
	if u.Username != NormalizeEmail(u.Email) {
		return "", false
	}
	un, msg := ValidUsername(NormalizeEmail(newEmail))
	if msg != "" || un == u.Username {
		return "", false
	}
	return un, true
}

// fieldValue is the value of a profile field an identity source may set.
func fieldValue(u *User, field string) string {
	switch field {
	case "first_name":
		return u.FirstName
	case "last_name":
		return u.LastName
	case "email":
		return u.Email
	case "username":
		return u.Username
	case "native_name":
		return u.NativeName
	case "job_title":
		return u.JobTitle
	case "phone_number":
		return u.PhoneNumber
	case "organization":
		return u.Organization
	case "civil_number":
		return u.CivilNumber
	case "description":
		return u.Description
	case "preferred_language":
		return u.PreferredLanguage
	case "birth_date":
		return u.BirthDate
	case "image":
		return u.Image
	}
	return ""
}
