package users

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// Lockout after consecutive failed logins (Amazon Cognito's rule): from the
// fifth failure on, the account waits 1 s, doubling per failure up to 15 min.
const (
	LockoutThreshold = 5
	LockoutMax       = 15 * time.Minute
)

// lockoutFor is the wait after the n-th consecutive failure.
func lockoutFor(n int) time.Duration {
	if n < LockoutThreshold {
		return 0
	}
	d := time.Duration(math.Pow(2, float64(min(n-LockoutThreshold, 20)))) * time.Second
	return min(d, LockoutMax)
}

var errBadCredentials = httpapi.Unauthorized("Unable to log in with the provided credentials.")

// Principal is who made a request.
type Principal struct {
	User *User
	// Token is the token the request carried, when it used one.
	Token string
}

// checkPassword verifies login and password, applying the lockout and,
// when r is given, the per-IP limit (read in the same request as the
// login's claims). It answers unknown logins and wrong passwords alike, in
// status, body and time (a dummy hash is verified when no user matches).
// On success the caller's own write must count r.
func (s *Service) checkPassword(ctx context.Context, login, password string, r *rate) (*User, error) {
	now := s.Now().UTC() // not truncated: a lockout is as long as it says
	id, count, err := s.st.lookup(ctx, login, r)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if r != nil && count >= r.limit {
		return nil, r.refused(now)
	}
	var u *User
	if id != "" {
		if u, err = s.st.get(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if u == nil {
		secret.CheckPassword(password, "")
		if err := s.hit(ctx, r); err != nil {
			return nil, err
		}
		return nil, errBadCredentials
	}
	if u.LockedUntil != nil && now.Before(*u.LockedUntil) {
		if err := s.hit(ctx, r); err != nil {
			return nil, err
		}
		wait := int(math.Ceil(u.LockedUntil.Sub(now).Seconds()))
		return nil, httpapi.TooManyRequests("Too many failed attempts; try again later.", wait)
	}
	if !secret.CheckPassword(password, u.PasswordHash) {
		fails := u.FailedLogins + 1
		upd := expression.Add(expression.Name("failed_logins"), expression.Value(1))
		if d := lockoutFor(fails); d > 0 {
			upd = upd.Set(expression.Name("locked_until"), expression.Value(now.Add(d)))
		}
		if _, err := s.st.writeUser(ctx, u.UUID, upd, exists(), r); err != nil && !errors.Is(err, errConditionFailed) {
			return nil, err
		}
		return nil, errBadCredentials
	}
	var refuse error
	switch {
	case u.Status == StatusUnverified:
		refuse = httpapi.Unauthorized("This account is not activated yet: open the link in the activation email, or ask for a new one.")
	case !u.IsActive || u.Status == StatusDisabled:
		refuse = httpapi.Unauthorized("This account is disabled.")
	}
	if refuse != nil {
		if err := s.hit(ctx, r); err != nil {
			return nil, err
		}
		return nil, refuse
	}
	return u, nil
}

// clearFailures is the part of a successful login's write that resets the lockout.
func clearFailures(upd expression.UpdateBuilder) expression.UpdateBuilder {
	return upd.Remove(expression.Name("failed_logins")).Remove(expression.Name("locked_until"))
}

// LoginResult is a login's answer.
type LoginResult struct {
	Token   string
	Expires time.Time
	User    *User
}

// Login checks credentials and returns the user's current token, issuing a
// new one if none is valid. At most three requests: the claims (with the
// IP's counter), the user, one write (the new token, or the login's IP and
// reset counters, with the IP's count in the same transaction).
func (s *Service) Login(ctx context.Context, login, password, ip string) (*LoginResult, error) {
	r := s.rateFor(ActionLogin, ip)
	u, err := s.checkPassword(ctx, login, password, r)
	if err != nil {
		return nil, err
	}
	now := s.now()
	loggedIn := func(u *User) {
		u.IPAddress, u.FailedLogins, u.LockedUntil = ip, 0, nil
	}
	if u.HasValidToken(now) {
		if tok, err := s.openToken(ctx, u); err == nil {
			upd := clearFailures(expression.Set(expression.Name("ip_address"), expression.Value(ip)))
			nu, err := s.st.writeUser(ctx, u.UUID, upd, expression.Name("token_hash").Equal(expression.Value(u.TokenHash)), r)
			if err == nil {
				if nu == nil {
					nu = u
					loggedIn(nu)
				}
				return &LoginResult{Token: tok, Expires: *nu.TokenExpires, User: nu}, nil
			} else if !errors.Is(err, errConditionFailed) {
				return nil, err
			}
			// The token changed meanwhile (refresh, logout): issue anew.
			if u, err = s.st.get(ctx, u.UUID); errors.Is(err, ErrNotFound) {
				return nil, errBadCredentials // deleted meanwhile
			} else if err != nil {
				return nil, err
			}
		}
	}
	tok, nu, err := s.issueToken(ctx, u, r, func(upd expression.UpdateBuilder) expression.UpdateBuilder {
		return clearFailures(upd.Set(expression.Name("ip_address"), expression.Value(ip)))
	})
	if err != nil {
		return nil, err
	}
	if nu == u {
		loggedIn(nu)
	}
	return &LoginResult{Token: tok, Expires: *nu.TokenExpires, User: nu}, nil
}

// openToken decrypts the stored copy of u's token.
func (s *Service) openToken(ctx context.Context, u *User) (string, error) {
	if u.TokenSealed == "" {
		return "", ErrNotFound
	}
	sl, err := s.sealer(ctx)
	if err != nil {
		return "", httpapi.Internal(err)
	}
	return sl.Open(u.TokenSealed, u.UUID)
}

// issueToken replaces u's token with a new one, conditional on the token
// being the one u was read with, so that of two concurrent issues only one
// token survives and the loser reports the race. extra adds to the write.
func (s *Service) issueToken(ctx context.Context, u *User, r *rate, extra func(expression.UpdateBuilder) expression.UpdateBuilder) (string, *User, error) {
	now := s.now()
	tok, err := secret.NewToken(u.UUID)
	if err != nil {
		return "", nil, httpapi.Internal(err)
	}
	sl, err := s.sealer(ctx)
	if err != nil {
		return "", nil, httpapi.Internal(err)
	}
	sealed, err := sl.Seal(tok.Value, u.UUID)
	if err != nil {
		return "", nil, httpapi.Internal(err)
	}
	hash, expires := secret.Hash(tok.Value), now.Add(u.Lifetime(s.cfg.TokenLifetime))
	upd := expression.Set(expression.Name("token_hash"), expression.Value(hash)).
		Set(expression.Name("token_sealed"), expression.Value(sealed)).
		Set(expression.Name("token_created"), expression.Value(now)).
		Set(expression.Name("token_expires"), expression.Value(expires))
	if extra != nil {
		upd = extra(upd)
	}
	cond := expression.AttributeNotExists(expression.Name("token_hash"))
	if u.TokenHash != "" {
		cond = expression.Name("token_hash").Equal(expression.Value(u.TokenHash))
	}
	nu, err := s.st.writeUser(ctx, u.UUID, upd, cond, r)
	if errors.Is(err, errConditionFailed) {
		return "", nil, httpapi.Unavailable(errors.New("token changed concurrently")).WithCause(err)
	}
	if err != nil {
		return "", nil, err
	}
	if nu == nil {
		// Written in a transaction with the rate counter: apply it here.
		nu = u
		nu.TokenHash, nu.TokenSealed, nu.TokenCreated, nu.TokenExpires = hash, sealed, &now, &expires
	}
	return tok.Value, nu, nil
}

// Authenticate reads the Authorization header: Token or Bearer (one
// strongly consistent read of the user's item, so logout and deletion take
// effect at once), or Basic (a password check that counts toward lockout).
func (s *Service) Authenticate(ctx context.Context, header string) (*Principal, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	if header == "" {
		return nil, httpapi.Unauthorized("Authentication credentials were not provided.")
	}
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		b, err := secret.ParseToken(cred)
		if err != nil {
			return nil, httpapi.Unauthorized("Invalid token.")
		}
		u, err := s.st.get(ctx, b.User)
		if errors.Is(err, ErrNotFound) {
			return nil, httpapi.Unauthorized("Invalid token.")
		}
		if err != nil {
			return nil, err
		}
		if !secret.Matches(b.Value, u.TokenHash) {
			return nil, httpapi.Unauthorized("Invalid token.")
		}
		if !u.HasValidToken(s.now()) {
			return nil, httpapi.Unauthorized("Token has expired.")
		}
		if !u.IsActive || u.Status != StatusEnabled {
			return nil, httpapi.Unauthorized("This account is disabled.")
		}
		httpapi.SetUser(ctx, u.UUID)
		return &Principal{User: u, Token: b.Value}, nil
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, httpapi.Unauthorized("Invalid basic credentials.")
		}
		login, password, ok := strings.Cut(string(raw), ":")
		if !ok || login == "" || len(password) > 4*MaxPassword {
			return nil, httpapi.Unauthorized("Invalid basic credentials.")
		}
		u, err := s.checkPassword(ctx, login, password, nil)
		if err != nil {
			return nil, err
		}
		if u.FailedLogins > 0 || u.LockedUntil != nil {
			if u, err = s.st.update(ctx, u.UUID, clearFailures(expression.Set(expression.Name("failed_logins"), expression.Value(0))), exists()); err != nil {
				return nil, err
			}
		}
		httpapi.SetUser(ctx, u.UUID)
		return &Principal{User: u}, nil
	}
	return nil, httpapi.Unauthorized("Use Authorization: Token <token>, Bearer <token> or Basic.")
}

// CurrentToken returns the principal's token: the one it presented, or the
// stored one opened when it used Basic; "" when there is none.
func (s *Service) CurrentToken(ctx context.Context, p *Principal) string {
	if p.Token != "" {
		return p.Token
	}
	if !p.User.HasValidToken(s.now()) {
		return ""
	}
	tok, err := s.openToken(ctx, p.User)
	if err != nil {
		return ""
	}
	return tok
}

// revokeToken is the update that ends a user's token.
func revokeToken(upd expression.UpdateBuilder) expression.UpdateBuilder {
	return upd.Remove(expression.Name("token_hash")).Remove(expression.Name("token_sealed")).
		Remove(expression.Name("token_created")).Remove(expression.Name("token_expires"))
}

// Logout ends the principal's token at once.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	if p.User.TokenHash == "" {
		return nil
	}
	_, err := s.st.update(ctx, p.User.UUID, revokeToken(expression.UpdateBuilder{}), expression.Name("token_hash").Equal(expression.Value(p.User.TokenHash)))
	if errors.Is(err, errConditionFailed) {
		return nil // already replaced or revoked
	}
	return err
}

// Delete removes u and its claims in one transaction; codes and the token
// live on the user's item and go with it.
func (s *Service) Delete(ctx context.Context, u *User) error {
	cond := aws.String("attribute_not_exists(pk) OR #user = :u")
	names := map[string]string{"#user": "user"}
	vals := map[string]types.AttributeValue{":u": str(u.UUID)}
	items := []types.TransactWriteItem{
		s.st.userDelete(u), // guarded when listed (list.go)
		{Delete: &types.Delete{TableName: aws.String(s.st.table), Key: emailKey(u.Email), ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals}},
		{Delete: &types.Delete{TableName: aws.String(s.st.table), Key: usernameKey(u.Username), ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals}},
	}
	items = append(items, s.st.countItems(u, nil)...)
	_, err := s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		if listingRaced(err) {
			return errListingRace()
		}
		if failed, conditional := txCanceled(err); conditional && failed[0] {
			return httpapi.NotFound("")
		}
		return dbError(err)
	}
	return nil
}
