package users

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// LegacyVerifier is lazy migration's legacy endpoint (pkg/legacyauth):
// whether a login and password are good on the system users come from,
// and the user's fields when they are.
type LegacyVerifier interface {
	// Verify answers the user's fields and true for a yes, false for a no;
	// an error (a timeout, a failing endpoint) never carries the password.
	Verify(ctx context.Context, login, password string) (json.RawMessage, bool, error)
}

// SetLegacy turns lazy migration on: a login for a login nobody has is
// checked by v, and on a yes the account is created (migrate).
func (s *Service) SetLegacy(v LegacyVerifier) { s.legacy = v }

// migrate asks the legacy endpoint about a login nobody has here and, on a
// yes, creates the ENABLED account from its answer with the password
// hashed as argon2id, as Cognito's migrate-user trigger does. A no, a
// failure of the endpoint or an answer the service cannot take is nil, and
// the caller answers as for any wrong password (so a failing endpoint does
// not tell that an address is unknown here); failures are logged without
// the password. The per-IP limit was counted before (checkPassword).
func (s *Service) migrate(ctx context.Context, login, password string) *User {
	if s.legacy == nil || password == "" {
		return nil
	}
	logf := func(msg string, args ...any) {
		s.log.WarnContext(ctx, msg, append([]any{"request_id", httpapi.RequestID(ctx)}, args...)...)
	}
	raw, ok, err := s.legacy.Verify(ctx, strings.TrimSpace(login), password)
	if err != nil {
		logf("lazy migration: the legacy endpoint failed", "cause", err.Error())
		return nil
	}
	if !ok {
		return nil
	}
	var in ProfileInput
	if err := json.Unmarshal(raw, &in); err != nil {
		logf("lazy migration: the legacy endpoint's user is not one the service takes")
		return nil
	}
	// The legacy system vouches for a person, not for their role here.
	in.Password, in.IsStaff, in.IsSupport, in.IsActive = nil, nil, nil, nil
	in.Slug, in.IsIdentityManager, in.ManagedISDs = nil, nil, nil
	if in.Username == nil && in.Email != nil {
		if e, msg := ValidEmail(*in.Email); msg == "" {
			in.Username = &e // as at sign-up
		}
	}
	now := s.now()
	u, p := adminUser(&in, now)
	if len(p) > 0 {
		logf("lazy migration: the legacy endpoint's user is invalid here", "fields", strings.Join(keys(p), ","))
		return nil
	}
	// The answer must be the account the person asked for.
	if NormalizeEmail(login) != u.Email && NormalizeUsername(login) != u.Username {
		logf("lazy migration: the legacy endpoint answered for another login")
		return nil
	}
	hash, err := secret.HashPassword(password)
	if err != nil {
		return nil
	}
	u.PasswordHash = hash
	if err := s.st.createAs(ctx, u, now, false); err != nil {
		logf("lazy migration: the account could not be created", "cause", err.Error())
		return nil
	}
	s.log.InfoContext(ctx, "lazy migration: account created", "request_id", httpapi.RequestID(ctx), "user", u.UUID)
	return u
}

func keys(p problems) []string {
	var out []string
	for k := range p {
		out = append(out, k)
	}
	return out
}
