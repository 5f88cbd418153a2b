package users

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/secret"
)

// TokenInfo is Waldur's token answer.
type TokenInfo struct {
	Created           string `json:"created"`
	UserFirstName     string `json:"user_first_name"`
	UserLastName      string `json:"user_last_name"`
	UserUsername      string `json:"user_username"`
	UserIsActive      bool   `json:"user_is_active"`
	UserTokenLifetime int    `json:"user_token_lifetime"`
	Token             string `json:"token"`
}

func (s *Service) tokenInfo(u *User, tok string) TokenInfo {
	created := ""
	if u.TokenCreated != nil {
		created = TimeFormat(*u.TokenCreated)
	}
	return TokenInfo{Created: created, UserFirstName: u.FirstName, UserLastName: u.LastName,
		UserUsername: u.Username, UserIsActive: u.IsActive,
		UserTokenLifetime: int(u.Lifetime(s.cfg.TokenLifetime).Seconds()), Token: tok}
}

// Token returns u's current token. It issues none: no GET changes
// anything; POST refresh_token issues one.
func (s *Service) Token(ctx context.Context, u *User) (TokenInfo, error) {
	if u.HasValidToken(s.now()) {
		if tok, err := s.openToken(ctx, u); err == nil {
			return s.tokenInfo(u, tok), nil
		}
	}
	return TokenInfo{}, httpapi.NotFound("This user has no active token; log in, or POST refresh_token to issue one.")
}

// errCredentialsChanged answers a request whose credential (token,
// password, epoch) changed while it ran.
var errCredentialsChanged = httpapi.Unauthorized("The account's credentials changed; log in again.")

// RefreshToken replaces u's token; the old one stops working at once. Of
// concurrent refreshes one write wins; the others answer with the winner's
// token, so exactly one token works afterwards. A refresh never issues past
// a credential change: the write is conditional on the epoch read.
func (s *Service) RefreshToken(ctx context.Context, u *User) (TokenInfo, error) {
	tok, nu, err := s.issueToken(ctx, u, nil)
	if err == nil {
		return s.tokenInfo(nu, tok), nil
	}
	if !errors.Is(errCause(err), errConditionFailed) {
		return TokenInfo{}, err
	}
	cur, err := s.st.get(ctx, u.UUID)
	if errors.Is(err, ErrNotFound) {
		return TokenInfo{}, httpapi.NotFound("")
	}
	if err != nil {
		return TokenInfo{}, err
	}
	if cur.CredEpoch != u.CredEpoch || cur.PasswordHash != u.PasswordHash || !cur.HasValidToken(s.now()) {
		return TokenInfo{}, errCredentialsChanged
	}
	tok, err = s.openToken(ctx, cur)
	if err != nil {
		return TokenInfo{}, httpapi.Internal(err)
	}
	return s.tokenInfo(cur, tok), nil
}

// writeFailed maps a guarded write's failed condition: the user is gone
// (404), or what the request read has changed (a credential change: 401;
// otherwise a conflict to retry).
func (s *Service) writeFailed(ctx context.Context, u *User, err error) error {
	if !errors.Is(err, errConditionFailed) {
		return err
	}
	cur, gerr := s.st.get(ctx, u.UUID)
	switch {
	case errors.Is(gerr, ErrNotFound):
		return httpapi.NotFound("")
	case gerr != nil:
		return gerr
	case cur.CredEpoch != u.CredEpoch:
		return errCredentialsChanged
	}
	return errListingRace()
}

// ChangeEmail starts an email change: requested_email is set, a code goes
// to the new address and a notice to the old one. It is limited per client
// IP and per user, since each request mails two addresses.
func (s *Service) ChangeEmail(ctx context.Context, u *User, email, ip string) (*User, error) {
	e, msg := ValidEmail(email)
	if msg != "" {
		return nil, httpapi.Invalid(map[string][]string{"email": {msg}})
	}
	if NormalizeEmail(e) == NormalizeEmail(u.Email) {
		return nil, httpapi.Invalid(map[string][]string{"email": {"This is already the account's email."}})
	}
	// Per user, per client IP, and per address mailed (whoever asks, as for
	// sign-up, resend and reset).
	if err := s.hitAll(ctx, s.rateFor(actionChangeEmailUser, hashedKey(u.UUID)), s.rateFor(ActionChangeEmail, ip), s.rateForAddress(NormalizeEmail(e))); err != nil {
		return nil, err
	}
	now := s.now()
	code, err := secret.NewCode(u.UUID)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	c := Code{Hash: secret.Hash(code.Value), Expires: now.Add(EmailChangeTTL), Email: e, Epoch: u.CredEpoch}
	upd := bump(expression.Set(expression.Name("requested_email"), expression.Value(e)).
		Set(expression.Name("code_email_change"), expression.Value(c)), now)
	// The code to the new address and the notice to the old one are
	// queued in the same transaction (outbox.go).
	queued, err := s.outbox(ctx, u, now,
		outMail{kind: MailEmailChange, expires: c.Expires,
			msg: s.mailsFor(u).emailChange(e, s.link(ctx, s.cfg.EmailChangeLinkBase, "/account/confirm-email", code.Value))},
		outMail{kind: MailEmailNotice, msg: s.mailsFor(u).emailChangeNotice(u.Email, e)})
	if err != nil {
		return nil, err
	}
	nu, err := s.st.transactUpdate(ctx, u, upd, expression.ConditionBuilder{}, queued)
	if err != nil {
		return nil, s.writeFailed(ctx, u, err)
	}
	return nu, nil
}

// CancelChangeEmail drops a pending email change; its code stops working.
func (s *Service) CancelChangeEmail(ctx context.Context, u *User) (*User, error) {
	upd := bump(expression.Remove(expression.Name("requested_email")).Remove(expression.Name("code_email_change")), s.now())
	nu, err := s.st.update(ctx, u, upd, expression.ConditionBuilder{})
	if err != nil {
		return nil, s.writeFailed(ctx, u, err)
	}
	return nu, nil
}

// ConfirmEmail completes an email change for caller, the user the code was
// sent for: in one transaction the code is consumed, the old address's claim
// released and the new one taken, failing cleanly if someone took the
// address meanwhile. The credential epoch moves on, so reset and
// activation codes mailed to the old address (and the token) stop working,
// and the old address is told.
func (s *Service) ConfirmEmail(ctx context.Context, caller *User, code string) (*User, error) {
	return s.confirmEmail(ctx, caller, code, nil)
}

// confirmEmail is ConfirmEmail; checked, when set, is when the caller's
// password was verified (ConfirmEmailCode): the write then clears the
// failure that check reserved and is conditional on the password verified.
func (s *Service) confirmEmail(ctx context.Context, caller *User, code string, checked *time.Time) (*User, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return nil, httpapi.Invalid(map[string][]string{"code": {"This field is required."}})
	}
	b, err := secret.ParseCode(code)
	if err != nil || b.User != caller.UUID {
		return nil, codeError()
	}
	now := s.now()
	c, err := s.checkCode(ctx, caller, PurposeEmailChange, code, now)
	if err != nil {
		return nil, err
	}
	upd := newEpoch(bump(expression.Set(expression.Name("email"), expression.Value(c.Email)), now))
	// The claims move from the email and username read: they must still be
	// the user's (a staff change may have moved them meanwhile).
	cond := expression.Name("code_email_change.hash").Equal(expression.Value(c.Hash)).
		And(expression.Name("email").Equal(expression.Value(caller.Email)),
			expression.Name("username").Equal(expression.Value(caller.Username)))
	if checked != nil {
		upd = clearFailures(upd)
		cond = cond.And(verified(caller), ours(caller, *checked))
	}
	moves := [][2]map[string]types.AttributeValue{{emailKey(caller.Email), emailKey(c.Email)}}
	after := *caller
	if un, follows := followingUsername(caller, c.Email); follows {
		after.Username = un
		// A username that was the email follows it, so the old address no
		// longer logs in.
		upd = upd.Set(expression.Name("username"), expression.Value(un))
		moves = append(moves, [2]map[string]types.AttributeValue{usernameKey(caller.Username), usernameKey(un)})
	}
	// A new username moves the user's count bucket (list.go).
	upd, cond, counts, _ := s.st.listingWrite(caller, &after, upd, cond)
	// The old address is told, by a mail queued in the same transaction.
	queued, err := s.outbox(ctx, caller, now, outMail{kind: MailEmailChanged, msg: s.mailsFor(caller).emailChanged(caller.Email, c.Email, now)})
	if err != nil {
		return nil, err
	}
	counts = append(counts, queued...)
	claims := func(over takeover) []types.TransactWriteItem {
		var items []types.TransactWriteItem
		for i, m := range moves {
			take := s.st.takeClaim(m[1], caller.UUID, 0, now)
			if over.holders != nil && over.holders[i] != nil {
				take = s.st.takeClaimFrom(m[1], caller.UUID, over.holders[i].UUID, 0)
			}
			items = append(items, s.st.releaseClaim(m[0], caller.UUID), take)
		}
		return append(append(items, over.removals...), counts...)
	}
	nu, err := s.st.transactUpdate(ctx, caller, upd, cond, claims(takeover{}))
	if e, ok := httpapi.AsError(err); ok && e.Message == httpapi.DuplicateMessage {
		// The address proved by the code outranks an account nobody
		// activated that holds it: replace that account, as a sign-up would.
		to := make([]map[string]types.AttributeValue, len(moves))
		for i, m := range moves {
			to[i] = m[1]
		}
		over, rerr := s.st.replaceable(ctx, to, now)
		if rerr != nil {
			return nil, rerr
		}
		nu, err = s.st.transactUpdate(ctx, caller, upd, cond, claims(over))
	}
	if errors.Is(err, errConditionFailed) {
		return nil, codeError()
	}
	if err != nil {
		return nil, err
	}
	return nu, nil
}

// ChangePassword sets a new password. A user changing their own gives the
// current one; staff changing another's do not. Either way the credential
// epoch moves on: every token and code issued before stops working. The
// write is conditional on the epoch read (and, for a self change, on the
// password verified), so a change in flight cannot overwrite a password
// that staff or a reset set after it authenticated.
func (s *Service) ChangePassword(ctx context.Context, actor, target *User, current, next string) error {
	self := actor.UUID == target.UUID
	p := problems{}
	if self && current == "" {
		p.add("current_password", "This field is required.")
	}
	if next == "" {
		p.add("new_password", "This field is required.")
	} else if msgs := ValidPassword(next, target.Email, target.Username); len(msgs) > 0 {
		p["new_password"] = append(p["new_password"], msgs...)
	}
	if len(p) > 0 {
		return httpapi.Invalid(p)
	}
	cond := expression.ConditionBuilder{}
	if self {
		// The current password is a password check like a login's: it is
		// reserved against the lockout before the hash, so a stolen token
		// cannot guess it, not even in a concurrent burst.
		now := s.Now().UTC()
		authenticated := target.CredEpoch
		var err error
		if target, err = s.reserve(ctx, target, nil, now); err != nil {
			return err
		}
		if target.CredEpoch != authenticated {
			// The credentials the caller authenticated with ended meanwhile.
			return errCredentialsChanged
		}
		if !secret.CheckPassword(current, target.PasswordHash) {
			return httpapi.Invalid(map[string][]string{"current_password": {"The current password is wrong."}})
		}
		cond = verified(target).And(ours(target, now))
	}
	if err := s.setPassword(ctx, target, next, cond); err != nil {
		return s.writeFailed(ctx, target, err)
	}
	return nil
}

// setPassword stores a new hash under cond (and asRead(u)), moving the
// credential epoch on (which ends the token, every code and a pending email
// change) and ending the lockout.
func (s *Service) setPassword(ctx context.Context, u *User, password string, cond expression.ConditionBuilder) error {
	hash, err := secret.HashPassword(password)
	if err != nil {
		return httpapi.Internal(err)
	}
	upd := newEpoch(clearFailures(bump(expression.Set(expression.Name("password_hash"), expression.Value(hash)), s.now())))
	_, err = s.st.update(ctx, u, upd, cond)
	return err
}

// PasswordReset mails a reset code when email has an active (or staff
// disabled) account; it answers the same, and does the same work, either
// way (mailOnRequest). An unactivated account has no password to reset:
// its owner signs up again (which replaces it) or asks for the activation
// mail.
func (s *Service) PasswordReset(ctx context.Context, email, ip string) error {
	return s.mailOnRequest(ctx, email, s.rateFor(ActionReset, ip), func(u *User, now time.Time) (*Code, string, func(string) mail.Message) {
		if u.Status == StatusUnverified {
			return nil, "", nil
		}
		return &Code{Expires: now.Add(ResetTTL), Epoch: u.CredEpoch}, "code_reset", func(code string) mail.Message {
			return s.mailsFor(u).reset(u.Email, s.link(ctx, s.cfg.ResetLinkBase, "/account/reset", code))
		}
	})
}

// PasswordResetConfirm sets a new password with a reset code. The code is
// consumed by the same conditional write, which moves the credential epoch
// on: the token, a pending email change and its code all end.
func (s *Service) PasswordResetConfirm(ctx context.Context, code, password string) error {
	p := problems{}
	if strings.TrimSpace(code) == "" {
		p.add("code", "This field is required.")
	}
	if password == "" {
		p.add("new_password", "This field is required.")
	}
	if len(p) > 0 {
		return httpapi.Invalid(p)
	}
	u, err := s.userForCode(ctx, code)
	if err != nil {
		return err
	}
	c, err := s.checkCode(ctx, u, PurposeReset, strings.TrimSpace(code), s.now())
	if err != nil {
		return err
	}
	if msgs := ValidPassword(password, u.Email, u.Username); len(msgs) > 0 {
		return httpapi.Invalid(map[string][]string{"new_password": msgs})
	}
	err = s.setPassword(ctx, u, password, expression.Name("code_reset.hash").Equal(expression.Value(c.Hash)))
	if errors.Is(err, errConditionFailed) {
		return codeError()
	}
	return err
}
