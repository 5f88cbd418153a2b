package users

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/metrics"
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
	// APIKey is the id of the API key the request carried, when it used
	// one (pkg/apikeys): such a request may not change credentials.
	APIKey string
}

// lockWait is how long u stays locked at now (0 when it is not).
func (u *User) lockWait(now time.Time) time.Duration {
	if u.LockedUntil == 0 {
		return 0
	}
	return max(time.UnixMilli(u.LockedUntil).Sub(now), 0)
}

func lockedOut(wait time.Duration) error {
	return httpapi.TooManyRequests("Too many failed attempts; try again later.", int(math.Ceil(wait.Seconds())))
}

// notLocked is the condition, on a successful login's write, that no
// failure locked the account while its password was being checked.
func notLocked(now time.Time) expression.ConditionBuilder {
	return expression.AttributeNotExists(expression.Name("locked_until")).
		Or(expression.Name("locked_until").LessThanEqual(expression.Value(now.UnixMilli())))
}

// failuresAre is the condition that the failure count is still n.
func failuresAre(n int) expression.ConditionBuilder {
	c := expression.Name("failed_logins").Equal(expression.Value(n))
	if n == 0 {
		c = expression.AttributeNotExists(expression.Name("failed_logins")).Or(c)
	}
	return c
}

// reserve counts a password check on u as a failure before the hash is
// computed: one write, conditional on the failure count read and on no
// lock, that sets the count (and the lock from the fifth on) and, when r is
// given, counts the client IP's window exactly in the same transaction.
// So a concurrent burst gets no more guesses checked than the lockout
// allows, and a full window or a lock refuses before any hash. A correct
// password then clears the count in the caller's own write, conditional
// on ours(u). On a race it reads again (a changed credential epoch is read
// too, and the password is then checked against what was read).
func (s *Service) reserve(ctx context.Context, u *User, r *rate, now time.Time) (*User, error) {
	// Each round one of the racing writers wins, so a burst of n settles
	// within n rounds; the bound only stops a pathological loop.
	for round := range 64 {
		if round > 0 {
			time.Sleep(time.Duration(1+rand.IntN(10)) * time.Millisecond)
		}
		if w := u.lockWait(now); w > 0 {
			if err := s.hit(ctx, r); err != nil {
				return nil, err
			}
			return nil, lockedOut(w)
		}
		fails := u.FailedLogins + 1
		upd := expression.Set(expression.Name("failed_logins"), expression.Value(fails))
		var until int64
		if d := lockoutFor(fails); d > 0 {
			until = now.Add(d).UnixMilli()
			upd = upd.Set(expression.Name("locked_until"), expression.Value(until))
		}
		_, err := s.st.writeUser(ctx, u, upd, failuresAre(u.FailedLogins).And(notLocked(now)), r.exact())
		if err == nil {
			nu := *u
			nu.FailedLogins = fails
			if until != 0 {
				nu.LockedUntil = until
				s.Metrics.Count(ctx, metrics.Lockouts, 1)
			}
			return &nu, nil
		}
		if !errors.Is(err, errConditionFailed) {
			return nil, err // a full window's 429, or a failure
		}
		if u, err = s.st.get(ctx, u.UUID); errors.Is(err, ErrNotFound) {
			return nil, errBadCredentials
		} else if err != nil {
			return nil, err
		}
	}
	return nil, httpapi.Unavailable(errors.New("failed-login count kept changing"))
}

// ours is the condition, on the write of a check that reserve let through,
// that no other attempt locked the account meanwhile: the count is still
// the one this check set (a lock it set itself is its own to clear), or
// no lock holds.
func ours(u *User, now time.Time) expression.ConditionBuilder {
	return expression.Name("failed_logins").Equal(expression.Value(u.FailedLogins)).Or(notLocked(now))
}

// afterRace re-reads u after a conditional write of a successful login
// failed. The login may go on only with what it verified: if the password
// or the credential epoch changed meanwhile (a reset, a staff change, a
// disable), the password it checked is no longer the account's, and it
// answers as for wrong credentials; a lock set meanwhile answers 429.
func (s *Service) afterRace(ctx context.Context, u *User, now time.Time) (*User, error) {
	nu, err := s.st.get(ctx, u.UUID)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadCredentials // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	switch {
	case nu.CredEpoch != u.CredEpoch:
		return nil, errBadCredentials
	case nu.PasswordHash == u.PasswordHash:
		nu.upgrade = u.upgrade // still to be replaced by this login's write
	case u.upgrade != nil && !secret.IsLegacy(nu.PasswordHash) && secret.CheckPassword(u.upgrade.password, nu.PasswordHash):
		// A concurrent login verified the same legacy hash and replaced it
		// first: the password is still the account's.
	default:
		return nil, errBadCredentials
	}
	if w := nu.lockWait(now); w > 0 {
		return nil, lockedOut(w)
	}
	if !nu.IsActive || nu.Status != StatusEnabled {
		return nil, httpapi.Unauthorized("This account is disabled.")
	}
	return nu, nil
}

// verified is the condition, on a write that a password check allowed,
// that the password checked is still the account's.
func verified(u *User) expression.ConditionBuilder {
	return expression.Name("password_hash").Equal(expression.Value(u.PasswordHash))
}

// checkPassword verifies login and password under the lockout and, when r
// is given, the per-IP limit: both are counted before the hash (reserve),
// so a refused check costs none. It answers unknown logins and wrong
// passwords alike: the same status and body, and the same work (the
// claims, a user read, one write: the reservation, or for an unknown login
// a decoy counter in its place, and one hash). On success the caller's own
// write must clear the failures under verified and ours.
func (s *Service) checkPassword(ctx context.Context, login, password string, r *rate) (*User, error) {
	now := s.Now().UTC() // not truncated: a lockout is as long as it says
	if r.knownFull(now) {
		return nil, r.refused(now) // no request, no hash
	}
	id, err := s.st.lookup(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if id == "" {
		// No such login: spend what a wrong password spends.
		id = unknownUser
	}
	u, err := s.st.get(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if u == nil {
		if err := s.decoyWrite(ctx, r); err != nil {
			return nil, err
		}
		if nu := s.migrate(ctx, login, password); nu != nil {
			return nu, nil // created from the legacy system's yes (migrate.go)
		}
		secret.CheckPassword(password, "")
		s.Metrics.Count(ctx, metrics.LoginsFailed, 1)
		return nil, errBadCredentials
	}
	if u, err = s.reserve(ctx, u, r, now); err != nil {
		return nil, err
	}
	if !secret.CheckPassword(password, u.PasswordHash) {
		s.Metrics.Count(ctx, metrics.LoginsFailed, 1)
		return nil, errBadCredentials // counted by the reservation
	}
	switch {
	case u.Status == StatusUnverified:
		return nil, httpapi.Unauthorized("This account is not activated yet: open the link in the activation email, or ask for a new one.")
	case !u.IsActive || u.Status == StatusDisabled:
		return nil, httpapi.Unauthorized("This account is disabled.")
	}
	if err := prepareUpgrade(u, password); err != nil {
		return nil, err
	}
	return u, nil
}

// prepareUpgrade hashes a password that verified against an imported legacy
// hash with the service's argon2id, for the success's write (upgraded). A
// password the service's rules would refuse today is kept all the same: it
// is the account's.
func prepareUpgrade(u *User, password string) error {
	if !secret.IsLegacy(u.PasswordHash) {
		return nil
	}
	h, err := secret.HashPassword(password)
	if err != nil {
		return httpapi.Internal(err)
	}
	u.upgrade = &upgrade{hash: h, password: password}
	return nil
}

// unknownUser is the uuid read when a login names nobody: no user has it
// (version 4 uuids never have this form), so the read finds nothing, as
// a wrong password's read finds the user.
const unknownUser = "00000000-0000-0000-0000-000000000000"

// decoyRate is a counter no one reads, written when a login names nobody
// and per-IP limits are off, so that the unknown login writes as a wrong
// password does.
func (s *Service) decoyRate() *rate {
	now := s.Now().UTC()
	// Spread over 64 items so that a flood of unknown logins meets no hot key.
	k := "RATE#decoy#" + strconv.Itoa(rand.IntN(64)) + "#" + strconv.FormatInt(now.Unix()/60, 10)
	return &rate{key: key(k, "RATE"), limit: math.MaxInt32, end: now.Truncate(time.Minute).Add(time.Minute), decoy: true}
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
// new one if none is valid. At most four requests: the IP's count (a
// guarded write, before any hash, so the limit is exact under a burst and a
// refused login costs no hash), the claims, the user, one write (the new
// token, or the login's IP and reset counters). The write is conditional on
// the password and credential epoch verified, the token read and no lock
// set meanwhile; when it loses a race the user is read again, and the login
// goes on only if the password it verified is still the account's (then it
// answers with the winner's token, or 429 if a lock won).
func (s *Service) Login(ctx context.Context, login, password, ip string) (*LoginResult, error) {
	// The bounds every caller gets (the API checks them too): a login
	// longer than any email or username is no key DynamoDB takes.
	p := problems{}
	if len(strings.TrimSpace(login)) > MaxEmail {
		p.add("login", "Ensure this field has no more than 254 characters.")
	}
	if len(password) > 4*MaxPassword {
		p.add("password", "This password is too long.")
	}
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	u, err := s.checkPassword(ctx, login, password, s.rateFor(ActionLogin, ip))
	if err != nil {
		return nil, err
	}
	loggedIn := func(upd expression.UpdateBuilder) expression.UpdateBuilder {
		return upgraded(u, clearFailures(upd.Set(expression.Name("ip_address"), expression.Value(ip))))
	}
	for range 4 {
		now := s.Now().UTC()
		var tok string
		var nu *User
		var err error
		opened := false
		if u.HasValidToken(now) {
			// A copy that no longer opens (the key was replaced) is as good as
			// no token: a new one is issued in its place.
			tok, err = s.openToken(ctx, u)
			opened = err == nil
		}
		if opened {
			cond := expression.Name("token_hash").Equal(expression.Value(u.TokenHash)).And(verified(u), ours(u, now))
			nu, err = s.st.update(ctx, u, loggedIn(expression.UpdateBuilder{}), cond)
		} else {
			tok, nu, err = s.issueToken(ctx, u, loggedIn, verified(u), ours(u, now))
		}
		if err == nil {
			nu.IPAddress, nu.FailedLogins, nu.LockedUntil = ip, 0, 0
			s.Metrics.Count(ctx, metrics.Logins, 1)
			return &LoginResult{Token: tok, Expires: *nu.TokenExpires, User: nu}, nil
		}
		if !errors.Is(err, errConditionFailed) && !errors.Is(errCause(err), errConditionFailed) {
			return nil, err
		}
		// Another login, a refresh, a logout, a lock or a credential change
		// changed the user.
		if u, err = s.afterRace(ctx, u, now); err != nil {
			return nil, err
		}
	}
	return nil, httpapi.Unavailable(errors.New("token kept changing during login"))
}

// errCause is the cause of a contract error, or err itself.
func errCause(err error) error {
	if e, ok := httpapi.AsError(err); ok && e.Cause != nil {
		return e.Cause
	}
	return err
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
// being the one u was read with and on u's credential epoch (asRead), so
// that of two concurrent issues only one token survives, no token is
// issued past a credential change, and the loser reports the race. extra
// adds to the write, also to its condition.
func (s *Service) issueToken(ctx context.Context, u *User, extra func(expression.UpdateBuilder) expression.UpdateBuilder, also ...expression.ConditionBuilder) (string, *User, error) {
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
		Set(expression.Name("token_expires"), expression.Value(expires)).
		Set(expression.Name("token_epoch"), expression.Value(u.CredEpoch))
	if extra != nil {
		upd = extra(upd)
	}
	cond := expression.AttributeNotExists(expression.Name("token_hash"))
	if u.TokenHash != "" {
		cond = expression.Name("token_hash").Equal(expression.Value(u.TokenHash))
	}
	for _, c := range also {
		cond = cond.And(c)
	}
	nu, err := s.st.update(ctx, u, upd, cond)
	if errors.Is(err, errConditionFailed) {
		return "", nil, httpapi.Unavailable(errors.New("token changed concurrently")).WithCause(err)
	}
	if err != nil {
		return "", nil, err
	}
	return tok.Value, nu, nil
}

// credential is an Authorization header as read before any request.
type credential struct {
	scheme          string        // "token" (Token or Bearer), "api-key" or "basic"
	bearer          secret.Bearer // a token's
	key             string        // an API key's
	user            string        // the user a token or key names ("" for Basic)
	login, password string        // Basic's
}

// readCredential reads header without a request: a missing header, an
// unknown scheme or a credential that is not well formed is the 401
// Authenticate answers.
func (s *Service) readCredential(header string) (credential, error) {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	if header == "" {
		return credential{}, httpapi.Unauthorized("Authentication credentials were not provided.")
	}
	switch strings.ToLower(scheme) {
	case "token", "bearer":
		b, err := secret.ParseToken(cred)
		if err != nil {
			return credential{}, httpapi.Unauthorized("Invalid token.")
		}
		return credential{scheme: "token", bearer: b, user: b.User}, nil
	case "api-key":
		if s.keys == nil {
			return credential{}, errNoAPIKey
		}
		user, err := s.keys.KeyUser(cred)
		if err != nil {
			return credential{}, err
		}
		return credential{scheme: "api-key", key: cred, user: user}, nil
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return credential{}, httpapi.Unauthorized("Invalid basic credentials.")
		}
		login, password, ok := strings.Cut(string(raw), ":")
		if !ok || login == "" || len(login) > MaxEmail || len(password) > 4*MaxPassword {
			return credential{}, httpapi.Unauthorized("Invalid basic credentials.")
		}
		return credential{scheme: "basic", login: login, password: password}, nil
	}
	return credential{}, httpapi.Unauthorized("Use Authorization: Token <token>, Bearer <token>, Api-Key <key> or Basic.")
}

// Claimant returns the user an Authorization header's token or API key
// names, without a request and without checking it (Authenticate does):
// "" for Basic, which names a login. A header that is missing or no
// credential is the 401 Authenticate answers. A list that reads before it
// authenticates (AuthenticateAlong) uses it to ask for the caller's items.
func (s *Service) Claimant(header string) (string, error) {
	c, err := s.readCredential(header)
	return c.user, err
}

// Authenticate reads the Authorization header: Token or Bearer (one
// strongly consistent read of the user's item, so logout and deletion take
// effect at once), Api-Key (one read of the user and the key) or Basic (a
// password check that counts toward lockout).
func (s *Service) Authenticate(ctx context.Context, header string) (*Principal, error) {
	c, err := s.readCredential(header)
	if err != nil {
		return nil, err
	}
	switch c.scheme {
	case "token":
		b := c.bearer
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
	case "api-key":
		return s.authenticateKey(ctx, c.key)
	}
	return s.authenticateBasic(ctx, c.login, c.password)
}

// authenticateBasic serves the Basic scheme of Authenticate.
func (s *Service) authenticateBasic(ctx context.Context, login, password string) (*Principal, error) {
	// Basic attempts are counted like a JSON login's, before the hash
	// (toward the per-IP login limit and the lockout); a success gives
	// its IP count back and clears the failures, as a Basic client
	// authenticates every request.
	r := s.rateFor(ActionLogin, httpapi.ClientIP(ctx))
	u, err := s.checkPassword(ctx, login, password, r)
	if err != nil {
		return nil, err
	}
	// The clearing is conditional on the password verified and on no
	// other attempt having locked the account while this one was hashed.
	// Whatever the request then writes is conditional on the credential
	// epoch verified here (asRead).
	now := s.Now().UTC()
	nu, err := s.st.writeUser(ctx, u, upgraded(u, clearFailures(expression.UpdateBuilder{})), verified(u).And(ours(u, now)), r.refund())
	if errors.Is(err, errConditionFailed) {
		_, err = s.afterRace(ctx, u, now)
		if err == nil {
			err = errBadCredentials
		}
	}
	if err != nil {
		return nil, err
	}
	if nu == nil {
		// Written with the IP's refund in one transaction: apply it here.
		nu = u
		nu.FailedLogins, nu.LockedUntil = 0, 0
		if u.upgrade != nil {
			nu.PasswordHash, nu.upgrade = u.upgrade.hash, nil
		}
	}
	u = nu
	httpapi.SetUser(ctx, u.UUID)
	return &Principal{User: u}, nil
}

// CurrentToken returns the principal's token: the one it presented, or the
// stored one opened when it used Basic; "" when there is none, or when it
// used an API key (a key never shows the token, which could change what
// a key may not).
func (s *Service) CurrentToken(ctx context.Context, p *Principal) string {
	if p.ViaAPIKey() {
		return ""
	}
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
	_, err := s.st.update(ctx, p.User, revokeToken(expression.UpdateBuilder{}), expression.Name("token_hash").Equal(expression.Value(p.User.TokenHash)))
	if errors.Is(err, errConditionFailed) {
		return nil // already replaced or revoked (a credential change revokes it too)
	}
	return err
}

// Delete removes u and its claims in one transaction; codes and the token
// live on the user's item and go with it.
func (s *Service) Delete(ctx context.Context, u *User) error {
	for attempt := 0; ; attempt++ {
		err := s.deleteOnce(ctx, u)
		if !errors.Is(err, errRaced) {
			return err
		}
		if u, err = s.retryRaced(ctx, u, attempt); err != nil {
			return err
		}
	}
}

func (s *Service) deleteOnce(ctx context.Context, u *User) error {
	items := []types.TransactWriteItem{
		s.st.userDelete(u), // guarded on the fields read (list.go)
		s.st.releaseClaim(emailKey(u.Email), u.UUID),
		s.st.releaseClaim(usernameKey(u.Username), u.UUID),
	}
	items = append(items, slugClaims(u, s.st.releaseClaim)...)
	items = append(items, s.st.countItems(u, nil)...)
	items = append(items, s.st.entryItems(u, nil)...)
	if u.RemoteSub != "" { // the remote identity it was linked to (remote.go)
		items = append(items, s.st.releaseClaim(remoteSubKey(u.RemoteSub), u.UUID))
	}
	_, err := s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		if failed, conditional := txCanceled(err); conditional && failed[0] {
			// Gone (404), its credentials changed since it was read (401),
			// or its indexed fields did (a race: Delete retries).
			return errRaced
		}
		return dbError(err)
	}
	return nil
}
