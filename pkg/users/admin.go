package users

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// AdminCreate is staff creating an account: username and email required,
// password optional, is_staff/is_support/is_active allowed; the account is
// ENABLED at once. Without a password the person is mailed a code to set one.
func (s *Service) AdminCreate(ctx context.Context, in ProfileInput) (*User, error) {
	now := s.now()
	p := problems{}
	email := ""
	if in.Email == nil {
		p.add("email", "This field is required.")
	} else if e, msg := ValidEmail(*in.Email); msg != "" {
		p.add("email", msg)
	} else {
		email = e
	}
	username := ""
	if in.Username == nil {
		p.add("username", "This field is required.")
	} else {
		un, msg := ValidUsername(*in.Username)
		if msg != "" {
			p.add("username", msg)
		}
		username = un
	}
	if msg := usernameIsAnotherEmail(username, email); msg != "" && email != "" {
		p.add("username", msg)
	}
	if in.Password != nil {
		if msgs := ValidPassword(*in.Password, email, username); len(msgs) > 0 {
			p["password"] = append(p["password"], msgs...)
		}
	}
	u := &User{
		UUID: uuid.NewString(), Username: username, Email: email,
		Status: StatusEnabled, IsActive: true, RegistrationMethod: "admin",
		DateJoined: now, Modified: now, NotificationsEnabled: true, Version: 1, CredEpoch: 1,
	}
	if in.IsStaff != nil {
		u.IsStaff = *in.IsStaff
	}
	if in.IsSupport != nil {
		u.IsSupport = *in.IsSupport
	}
	if in.IsActive != nil && !*in.IsActive {
		u.IsActive, u.Status = false, StatusDisabled
	}
	applyProfile(p, &in, u, now)
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	var code secret.Bearer
	if in.Password != nil {
		hash, err := secret.HashPassword(*in.Password)
		if err != nil {
			return nil, httpapi.Internal(err)
		}
		u.PasswordHash = hash
	} else {
		var err error
		if code, err = secret.NewCode(u.UUID); err != nil {
			return nil, httpapi.Internal(err)
		}
		u.CodeReset = &Code{Hash: secret.Hash(code.Value), Expires: now.Add(ResetTTL), Epoch: u.CredEpoch}
	}
	// An unverified account holding the address or username is replaced,
	// as a sign-up would (st.create).
	var queued []types.TransactWriteItem
	if code.Value != "" {
		var err error
		queued, err = s.outbox(ctx, u, now, outMail{kind: MailSetPassword, expires: u.CodeReset.Expires,
			msg: s.mailsFor(u).setPassword(u.Email, s.link(ctx, s.cfg.ResetLinkBase, "/account/reset", code.Value))})
		if err != nil {
			return nil, err
		}
	}
	if err := s.st.create(ctx, u, now, queued...); err != nil {
		return nil, err
	}
	return u, nil
}

// EnsureStaff makes sure an active staff (or support) account with email and
// password exists: it creates one, or promotes, activates and re-keys the
// existing account. It bootstraps the first staff member of a stack and is
// idempotent.
func (s *Service) EnsureStaff(ctx context.Context, email, password string, staff, support bool) (*User, error) {
	e, msg := ValidEmail(email)
	if msg != "" {
		return nil, httpapi.Invalid(map[string][]string{"email": {msg}})
	}
	if msgs := ValidPassword(password, e, ""); len(msgs) > 0 {
		return nil, httpapi.Invalid(map[string][]string{"password": msgs})
	}
	u, err := s.userByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		t, f := true, false
		in := ProfileInput{Email: &e, Username: ptr(e), Password: &password, IsStaff: &staff, IsSupport: &support, IsActive: &t}
		if !staff {
			in.IsStaff = &f
		}
		return s.AdminCreate(ctx, in)
	}
	if err != nil {
		return nil, err
	}
	if u.IsStaff == staff && u.IsSupport == support && u.IsActive && u.Status == StatusEnabled && secret.CheckPassword(password, u.PasswordHash) {
		return u, nil
	}
	hash, err := secret.HashPassword(password)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	// A new password moves the credential epoch on, as every password set does.
	upd := newEpoch(bump(expression.Set(expression.Name("is_staff"), expression.Value(staff)).
		Set(expression.Name("is_support"), expression.Value(support)).
		Set(expression.Name("is_active"), expression.Value(true)).
		Set(expression.Name("status"), expression.Value(StatusEnabled)).
		Set(expression.Name("password_hash"), expression.Value(hash)).
		Remove(expression.Name("ttl")), s.now()))
	if u.Status == StatusUnverified {
		return nil, httpapi.BadRequest("That address has an account waiting for activation; activate it first.")
	}
	// Lists follow the flags (list.go).
	after := *u
	after.IsStaff, after.IsSupport, after.IsActive, after.Status = staff, support, true, StatusEnabled
	if upd, cond, counts, ok := s.st.listingWrite(u, &after, upd, exists()); ok {
		nu, err := s.st.transactUpdate(ctx, u, upd, cond, counts)
		if errors.Is(err, errConditionFailed) {
			return nil, errListingRace()
		}
		return nu, err
	}
	return s.st.update(ctx, u, upd, exists())
}

func ptr[T any](v T) *T { return &v }
