package users

import (
	"context"
	"crypto/subtle"
	"strings"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// CodeInfo is what a mailed code's page may show before anything is
// consumed: for whom the code is and what it would do.
type CodeInfo struct {
	// User is the uuid of the account the code is for.
	User string
	// Purpose is PurposeActivation, PurposeReset or PurposeEmailChange.
	Purpose string
	// Email is the account's address; for an email change, the new address.
	Email string
	// CurrentEmail is the account's address as it stands.
	CurrentEmail string
	// Language is the account's preferred_language ("" when unset).
	Language string
	// HasPassword is false for a staff-created account whose first
	// password the reset code sets.
	HasPassword bool
}

// DescribeCode reads, without changing anything, what a mailed code is
// for: one read of the user the code is bound to, its hash compared in
// constant time and its expiry checked. It counts no attempt and writes
// nothing, so a mail scanner's or a browser's prefetch of the link leaves
// the code as it was. A code that is unknown, used, expired or out of
// attempts gets the same error as using it would.
func (s *Service) DescribeCode(ctx context.Context, code, purpose string) (CodeInfo, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return CodeInfo{}, codeError()
	}
	if _, err := secret.ParseCode(code); err != nil {
		return CodeInfo{}, codeError()
	}
	u, err := s.userForCode(ctx, code)
	if err != nil {
		return CodeInfo{}, err
	}
	c := u.code(purpose)
	if c == nil {
		return CodeInfo{}, codeError()
	}
	// Every check runs whatever the first one said, so the answer's timing
	// does not tell which failed.
	// The same tests as checkCode's, which consumes: hash, expiry (the
	// code's and an unverified account's), attempts and credential epoch.
	now := s.now()
	match := secret.Matches(code, c.Hash)
	live := now.Before(c.Expires) && (u.TTL == 0 || now.Unix() < u.TTL)
	tries := c.Attempts < MaxCodeAttempts
	epoch := c.Epoch == u.CredEpoch
	ok := subtle.ConstantTimeByteEq(b2i(match)&b2i(live)&b2i(tries)&b2i(epoch), 1) == 1
	if !ok || (purpose == PurposeActivation && u.Status != StatusUnverified) {
		return CodeInfo{}, codeError()
	}
	info := CodeInfo{User: u.UUID, Purpose: purpose, Email: u.Email, CurrentEmail: u.Email,
		Language: u.PreferredLanguage, HasPassword: u.PasswordHash != ""}
	if purpose == PurposeEmailChange {
		info.Email = c.Email
	}
	return info, nil
}

func b2i(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// FormKey is the key the pages sign their per-form tokens with, derived
// from the token key (one secret to keep, not two).
func (s *Service) FormKey(ctx context.Context) ([]byte, error) {
	sl, err := s.sealer(ctx)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	return sl.Derive("pages/form-token"), nil
}

// ConfirmEmailCode confirms an email change for someone without the
// account's session (the pages, from the mail): the code proves the new
// mailbox and the account's password proves the account, so whoever reads
// a mistyped or recycled new address cannot take the account with the
// code alone. The password check is reserved against the lockout before
// its hash, as a login's is.
func (s *Service) ConfirmEmailCode(ctx context.Context, code, password string) (*User, error) {
	u, err := s.userForCode(ctx, code)
	if err != nil {
		return nil, err
	}
	if password == "" {
		return nil, httpapi.Invalid(map[string][]string{"password": {"This field is required."}})
	}
	if len(password) > 4*MaxPassword {
		return nil, httpapi.Invalid(map[string][]string{"password": {"This password is too long."}})
	}
	now := s.Now().UTC()
	if u, err = s.reserve(ctx, u, nil, now); err != nil {
		return nil, err
	}
	if !secret.CheckPassword(password, u.PasswordHash) {
		return nil, httpapi.Invalid(map[string][]string{"password": {"The password is wrong."}})
	}
	return s.confirmEmail(ctx, u, code, &now)
}
