package users

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/example/accounts/pkg/httpapi"
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

// Token returns u's current token, issuing one when none is valid.
func (s *Service) Token(ctx context.Context, u *User) (TokenInfo, error) {
	if u.HasValidToken(s.now()) {
		tok, err := s.openToken(ctx, u)
		if err == nil {
			return s.tokenInfo(u, tok), nil
		}
	}
	return s.RefreshToken(ctx, u)
}

// RefreshToken replaces u's token; the old one stops working at once. Of
// concurrent refreshes one write wins; the others answer with the winner's
// token, so exactly one token works afterwards.
func (s *Service) RefreshToken(ctx context.Context, u *User) (TokenInfo, error) {
	tok, nu, err := s.issueToken(ctx, u, nil, nil)
	if err == nil {
		return s.tokenInfo(nu, tok), nil
	}
	if e, ok := httpapi.AsError(err); !ok || !errors.Is(e.Cause, errConditionFailed) {
		return TokenInfo{}, err
	}
	cur, err := s.st.get(ctx, u.UUID)
	if errors.Is(err, ErrNotFound) {
		return TokenInfo{}, httpapi.NotFound("")
	}
	if err != nil {
		return TokenInfo{}, err
	}
	if !cur.HasValidToken(s.now()) {
		return TokenInfo{}, httpapi.Unavailable(errors.New("token revoked during refresh"))
	}
	tok, err = s.openToken(ctx, cur)
	if err != nil {
		return TokenInfo{}, httpapi.Internal(err)
	}
	return s.tokenInfo(cur, tok), nil
}

// ChangeEmail starts an email change: requested_email is set, a code goes
// to the new address and a notice to the old one.
func (s *Service) ChangeEmail(ctx context.Context, u *User, email, base string) (*User, error) {
	e, msg := ValidEmail(email)
	if msg != "" {
		return nil, httpapi.Invalid(map[string][]string{"email": {msg}})
	}
	if NormalizeEmail(e) == NormalizeEmail(u.Email) {
		return nil, httpapi.Invalid(map[string][]string{"email": {"This is already the account's email."}})
	}
	now := s.now()
	code, err := secret.NewCode(u.UUID)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	c := Code{Hash: secret.Hash(code.Value), Expires: now.Add(EmailChangeTTL), Email: e}
	upd := bump(expression.Set(expression.Name("requested_email"), expression.Value(e)).
		Set(expression.Name("code_email_change"), expression.Value(c)), now)
	nu, err := s.st.update(ctx, u.UUID, upd, exists())
	if errors.Is(err, errConditionFailed) {
		return nil, httpapi.NotFound("")
	}
	if err != nil {
		return nil, err
	}
	s.send(ctx, u.UUID, emailChangeMail(e, s.link(base, s.cfg.EmailChangeLinkBase, "/api/users/confirm_email", code.Value)))
	s.send(ctx, u.UUID, emailChangeNotice(u.Email, e))
	return nu, nil
}

// CancelChangeEmail drops a pending email change; its code stops working.
func (s *Service) CancelChangeEmail(ctx context.Context, u *User) (*User, error) {
	upd := bump(expression.Remove(expression.Name("requested_email")).Remove(expression.Name("code_email_change")), s.now())
	nu, err := s.st.update(ctx, u.UUID, upd, exists())
	if errors.Is(err, errConditionFailed) {
		return nil, httpapi.NotFound("")
	}
	return nu, err
}

// ConfirmEmail completes an email change for caller, the user the code was
// sent for: in one transaction the code is consumed, the old address's claim
// released and the new one taken, failing cleanly if someone took the
// address meanwhile.
func (s *Service) ConfirmEmail(ctx context.Context, caller *User, code string) (*User, error) {
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
	upd := bump(expression.Set(expression.Name("email"), expression.Value(c.Email)).
		Remove(expression.Name("requested_email")).Remove(expression.Name("code_email_change")), now)
	// The claims move from the email and username read: they must still be
	// the user's (a staff change may have moved them meanwhile).
	cond := expression.Name("code_email_change.hash").Equal(expression.Value(c.Hash)).
		And(expression.Name("email").Equal(expression.Value(caller.Email)),
			expression.Name("username").Equal(expression.Value(caller.Username)))
	claims := s.st.moveClaim(emailKey(caller.Email), emailKey(c.Email), caller.UUID, 0, now)
	after := *caller
	if un, follows := followingUsername(caller, c.Email); follows {
		after.Username = un
		// A username that was the email follows it, so the old address no
		// longer logs in.
		upd = upd.Set(expression.Name("username"), expression.Value(un))
		claims = append(claims, s.st.moveClaim(usernameKey(caller.Username), usernameKey(un), caller.UUID, 0, now)...)
	}
	// A new username moves the user's count bucket (list.go).
	upd, cond, counts, _ := s.st.listingWrite(caller, &after, upd, cond)
	nu, err := s.st.transactUpdate(ctx, caller.UUID, upd, cond, append(claims, counts...))
	if errors.Is(err, errConditionFailed) {
		return nil, codeError()
	}
	return nu, err
}

// ChangePassword sets a new password. A user changing their own gives the
// current one; staff changing another's do not, and that revokes the
// user's token.
func (s *Service) ChangePassword(ctx context.Context, actor, target *User, current, next string) error {
	self := actor.UUID == target.UUID
	p := problems{}
	if self {
		// The current password is a password check like a login's: it
		// counts toward the lockout, so a stolen token cannot guess it.
		now := s.Now().UTC()
		if w := target.lockWait(now); w > 0 {
			return lockedOut(w)
		}
		if current == "" {
			p.add("current_password", "This field is required.")
		} else if !secret.CheckPassword(current, target.PasswordHash) {
			if err := s.recordFailure(ctx, target, nil, now); err != nil {
				return err
			}
			p.add("current_password", "The current password is wrong.")
		}
	}
	if next == "" {
		p.add("new_password", "This field is required.")
	} else if msgs := ValidPassword(next, target.Email, target.Username); len(msgs) > 0 {
		p["new_password"] = append(p["new_password"], msgs...)
	}
	if len(p) > 0 {
		return httpapi.Invalid(p)
	}
	return s.setPassword(ctx, target, next, !self, expression.AttributeExists(expression.Name("pk")))
}

// setPassword stores a new hash under cond, ending reset codes and the
// lockout; revoke also ends the token.
func (s *Service) setPassword(ctx context.Context, u *User, password string, revoke bool, cond expression.ConditionBuilder) error {
	hash, err := secret.HashPassword(password)
	if err != nil {
		return httpapi.Internal(err)
	}
	upd := clearFailures(bump(expression.Set(expression.Name("password_hash"), expression.Value(hash)).
		Remove(expression.Name("code_reset")), s.now()))
	if revoke {
		upd = revokeToken(upd)
	}
	_, err = s.st.update(ctx, u.UUID, upd, cond)
	if errors.Is(err, errConditionFailed) {
		return codeError()
	}
	return err
}

// PasswordReset mails a reset code when email has an account; it answers
// the same either way.
func (s *Service) PasswordReset(ctx context.Context, email, base, ip string) error {
	e, msg := ValidEmail(email)
	if msg != "" {
		return httpapi.Invalid(map[string][]string{"email": {msg}})
	}
	if err := s.hit(ctx, s.rateFor(ActionReset, ip)); err != nil {
		return err
	}
	u, err := s.userByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.now()
	code, err := secret.NewCode(u.UUID)
	if err != nil {
		return httpapi.Internal(err)
	}
	c := Code{Hash: secret.Hash(code.Value), Expires: now.Add(ResetTTL)}
	if _, err := s.st.update(ctx, u.UUID, expression.Set(expression.Name("code_reset"), expression.Value(c)), exists()); err != nil {
		if errors.Is(err, errConditionFailed) {
			return nil
		}
		return err
	}
	s.send(ctx, u.UUID, resetMail(u.Email, s.link(base, s.cfg.ResetLinkBase, "/api/auth/password_reset/confirm", code.Value)))
	return nil
}

// PasswordResetConfirm sets a new password with a reset code and revokes
// the user's token. The code is consumed by the same conditional write.
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
	return s.setPassword(ctx, u, password, true, expression.Name("code_reset.hash").Equal(expression.Value(c.Hash)))
}
