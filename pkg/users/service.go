package users

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/secret"
)

// Lifetimes of what the service hands out.
const (
	ActivationTTL  = 24 * time.Hour
	EmailChangeTTL = 24 * time.Hour
	ResetTTL       = time.Hour
	// UnverifiedTTL is how long a never-activated account and its claims live.
	UnverifiedTTL = 7 * 24 * time.Hour
	// MaxCodeAttempts is how many wrong tries a user-bound code survives.
	MaxCodeAttempts = 5
)

// Service performs the account operations.
type Service struct {
	st     store
	mail   mail.Sender
	sealer func(context.Context) (*secret.Sealer, error)
	cfg    config.Config
	log    *slog.Logger
	// Now is the clock; tests replace it to check expiry.
	Now func() time.Time
}

// New builds the service. sealer returns the token sealer, loading its key
// on first use.
func New(db DB, cfg config.Config, m mail.Sender, sealer func(context.Context) (*secret.Sealer, error), log *slog.Logger) *Service {
	db = retryConflicts{DB: db, sleep: time.Sleep}
	return &Service{st: store{db: db, table: cfg.TableName}, mail: m, sealer: sealer, cfg: cfg, log: log, Now: time.Now}
}

// Config returns the settings the service runs with.
func (s *Service) Config() config.Config { return s.cfg }

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Second) }

// Get returns the user with id, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (*User, error) {
	return s.st.get(ctx, id)
}

// View renders u for output.
func (s *Service) View(u *User, base string) View {
	return u.ToView(base, s.cfg.TokenLifetime, s.now())
}

var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// applyProfile validates the profile fields of in and writes them to u.
func applyProfile(p problems, in *ProfileInput, u *User, now time.Time) {
	in.aliases()
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
		max  int
	}{
		{"first_name", in.FirstName, &u.FirstName, MaxShortString},
		{"last_name", in.LastName, &u.LastName, MaxShortString},
		{"native_name", in.NativeName, &u.NativeName, MaxShortString},
		{"job_title", in.JobTitle, &u.JobTitle, MaxShortString},
		{"phone_number", in.PhoneNumber, &u.PhoneNumber, 40},
		{"organization", in.Organization, &u.Organization, MaxShortString},
		{"civil_number", in.CivilNumber, &u.CivilNumber, 50},
		{"description", in.Description, &u.Description, MaxLongString},
		{"preferred_language", in.PreferredLanguage, &u.PreferredLanguage, 10},
		{"image", in.Image, &u.Image, MaxLongString},
	} {
		if f.v == nil {
			continue
		}
		boundString(p, f.name, f.v, f.max)
		*f.dst = *f.v
	}
	if in.BirthDate != nil {
		b := strings.TrimSpace(*in.BirthDate)
		if b != "" {
			t, err := time.Parse("2006-01-02", b)
			if err != nil || !datePattern.MatchString(b) || t.After(now) {
				p.add("birth_date", "Enter a valid date in the past, as YYYY-MM-DD.")
			}
		}
		u.BirthDate = b
	}
	if in.NotificationsEnabled != nil {
		u.NotificationsEnabled = *in.NotificationsEnabled
	}
	if in.TokenLifetime != nil {
		l := *in.TokenLifetime
		if l < 60 || l > int(config.MaxTokenLifetime/time.Second) {
			p.add("token_lifetime", "Enter a number of seconds between 60 and 2592000 (30 days).")
		}
		u.TokenLifetime = l
	}
	if in.CustomData != nil {
		raw := bytes.TrimSpace(in.CustomData)
		switch {
		case bytes.Equal(raw, []byte("null")):
			u.CustomData = ""
		case len(raw) == 0 || raw[0] != '{' || !json.Valid(raw):
			p.add("custom_data", "Expected a JSON object.")
		case len(raw) > MaxCustomData:
			p.add("custom_data", "Ensure custom_data is at most 16 KiB.")
		default:
			u.CustomData = string(raw)
		}
	}
	if in.AgreeWithPolicy != nil && *in.AgreeWithPolicy {
		t := now
		u.AgreementDate = &t
	}
}

// RegisterResult is what sign-up made.
type RegisterResult struct {
	User *User
}

// Register signs a person up: the account is UNVERIFIED until they open the
// activation link mailed to them. One DynamoDB request: the user and both
// claims in one transaction, so two sign-ups with one email cannot both win.
func (s *Service) Register(ctx context.Context, in ProfileInput, base, ip string) (*User, error) {
	if in.IsStaff != nil || in.IsSupport != nil || in.IsActive != nil {
		return nil, httpapi.Forbidden("Only staff can set is_staff, is_support or is_active.")
	}
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
	username := strings.ToLower(email)
	if in.Username != nil {
		username = strings.TrimSpace(*in.Username)
		if msg := ValidUsername(username); msg != "" {
			p.add("username", msg)
		}
	} else if email != "" {
		if msg := ValidUsername(username); msg != "" {
			p.add("username", "Your email cannot serve as a username; choose one.")
		}
	}
	if in.Password == nil || *in.Password == "" {
		p.add("password", "This field is required.")
	} else if msgs := ValidPassword(*in.Password, email, username); len(msgs) > 0 {
		p["password"] = append(p["password"], msgs...)
	}
	u := &User{
		UUID: uuid.NewString(), Username: username, Email: email,
		Status: StatusUnverified, RegistrationMethod: "default",
		DateJoined: now, Modified: now, NotificationsEnabled: true, Version: 1,
		TTL: now.Add(UnverifiedTTL).Unix(),
	}
	applyProfile(p, &in, u, now)
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	hash, err := secret.HashPassword(*in.Password)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	u.PasswordHash = hash
	code, err := secret.NewCode(u.UUID)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	u.CodeActivation = &Code{Hash: secret.Hash(code.Value), Expires: now.Add(ActivationTTL)}
	r := s.rateFor(ActionSignUp, ip)
	if err := s.st.create(ctx, u, now, r); err != nil {
		if e, ok := httpapi.AsError(err); ok && e.Message == httpapi.DuplicateMessage {
			// A refused duplicate still counts, so addresses cannot be
			// probed through sign-up faster than the limit.
			if herr := s.hit(ctx, r); herr != nil {
				return nil, herr
			}
		}
		return nil, err
	}
	s.send(ctx, u.UUID, activationMail(u.Email, s.link(base, s.cfg.ActivationLinkBase, "/api/auth/activate", code.Value)))
	return u, nil
}

// send mails m; a failure is logged, not returned: the account exists and
// the person can ask for the mail again.
func (s *Service) send(ctx context.Context, user string, m mail.Message) {
	if err := s.mail.Send(ctx, m); err != nil {
		s.log.ErrorContext(ctx, "mail not sent", "request_id", httpapi.RequestID(ctx), "user", user, "subject", m.Subject, "cause", err.Error())
	}
}

func (s *Service) link(base, configured, route, code string) string {
	b := configured
	if b == "" {
		b = base + route
	}
	sep := "?"
	if strings.Contains(b, "?") {
		sep = "&"
	}
	return b + sep + "code=" + code
}

// create writes a new user and its claims in one transaction.
func (st *store) create(ctx context.Context, u *User, now time.Time, r *rate) error {
	item, err := st.marshalUser(u)
	if err != nil {
		return httpapi.Internal(err)
	}
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(st.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		st.takeClaim(emailKey(u.Email), u.UUID, u.TTL, now),
		st.takeClaim(usernameKey(u.Username), u.UUID, u.TTL, now),
	}
	// An account created active is listed at once (list.go); sign-up's is not.
	items = append(items, st.countItems(nil, u)...)
	if r != nil {
		// The IP's count rides in the same transaction: still one request.
		items = append(items, r.item(st.table, true))
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	if failed, conditional := txCanceled(err); conditional {
		if r != nil && failed[len(failed)-1] {
			return r.refused(now)
		}
		return httpapi.BadRequest(httpapi.DuplicateMessage)
	}
	return dbError(err)
}

// codeError is the one answer for a code that cannot be used.
func codeError() error {
	return httpapi.BadRequest("This code is invalid, already used or expired.")
}

// checkCode verifies a presented code against the user's stored one for
// purpose: counting the attempt first, comparing in constant time, then
// checking expiry. A wrong code costs one attempt (one UpdateItem).
func (s *Service) checkCode(ctx context.Context, u *User, purpose, presented string, now time.Time) (*Code, error) {
	c := u.code(purpose)
	if c == nil || c.Attempts >= MaxCodeAttempts {
		return nil, codeError()
	}
	attr := "code_" + purpose
	if !secret.Matches(presented, c.Hash) {
		upd := expression.Set(expression.Name(attr+".attempts"), expression.Name(attr+".attempts").Plus(expression.Value(1)))
		cond := expression.Name(attr + ".hash").Equal(expression.Value(c.Hash))
		if _, err := s.st.update(ctx, u.UUID, upd, cond); err != nil && !errors.Is(err, errConditionFailed) {
			return nil, err
		}
		return nil, codeError()
	}
	if !now.Before(c.Expires) {
		return nil, codeError()
	}
	return c, nil
}

// userForCode reads the user a code was issued for.
func (s *Service) userForCode(ctx context.Context, code string) (*User, error) {
	b, err := secret.ParseCode(strings.TrimSpace(code))
	if err != nil {
		return nil, codeError()
	}
	u, err := s.st.get(ctx, b.User)
	if errors.Is(err, ErrNotFound) {
		return nil, codeError()
	}
	return u, err
}

// Activate enables the account a code was mailed for. Two requests: read
// the user, then one transaction that consumes the code (conditional on its
// hash, so a second use fails) and makes the claims permanent.
func (s *Service) Activate(ctx context.Context, code string) (*User, error) {
	now := s.now()
	if strings.TrimSpace(code) == "" {
		return nil, httpapi.Invalid(map[string][]string{"code": {"This field is required."}})
	}
	u, err := s.userForCode(ctx, code)
	if err != nil {
		return nil, err
	}
	c, err := s.checkCode(ctx, u, PurposeActivation, strings.TrimSpace(code), now)
	if err != nil {
		return nil, err
	}
	upd := bump(expression.Set(expression.Name("status"), expression.Value(StatusEnabled)).
		Set(expression.Name("is_active"), expression.Value(true)).
		Remove(expression.Name("code_activation")).
		Remove(expression.Name("ttl")), now)
	// Activation lists the account: its index keys and counts (list.go).
	active := *u
	active.Status, active.IsActive = StatusEnabled, true
	upd, cond, counts, _ := s.st.listingWrite(u, &active, upd, expression.Name("code_activation.hash").Equal(expression.Value(c.Hash)))
	item, err := s.st.userUpdate(u.UUID, upd, cond)
	if err != nil {
		return nil, err
	}
	_, err = s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append([]types.TransactWriteItem{
		item, s.st.keepClaim(emailKey(u.Email), u.UUID), s.st.keepClaim(usernameKey(u.Username), u.UUID),
	}, counts...)})
	if err != nil {
		if failed, conditional := txCanceled(err); conditional {
			if failed[0] {
				return nil, codeError()
			}
			// The claims were swept with the expired account: it must sign up again.
			return nil, codeError()
		}
		return nil, dbError(err)
	}
	u.Status, u.IsActive, u.CodeActivation, u.TTL = StatusEnabled, true, nil, 0
	u.Version++
	u.Modified = now
	return u, nil
}

// ResendActivation mails a new activation code if email belongs to an
// account that is not yet active. It answers the same either way, so it
// tells nobody whether an address has an account.
func (s *Service) ResendActivation(ctx context.Context, email, base, ip string) error {
	e, msg := ValidEmail(email)
	if msg != "" {
		return httpapi.Invalid(map[string][]string{"email": {msg}})
	}
	if err := s.hit(ctx, s.rateFor(ActionResend, ip)); err != nil {
		return err
	}
	u, err := s.userByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if u.Status != StatusUnverified {
		return nil
	}
	now := s.now()
	code, err := secret.NewCode(u.UUID)
	if err != nil {
		return httpapi.Internal(err)
	}
	c := Code{Hash: secret.Hash(code.Value), Expires: now.Add(ActivationTTL)}
	upd := expression.Set(expression.Name("code_activation"), expression.Value(c))
	cond := expression.Name("status").Equal(expression.Value(StatusUnverified))
	if _, err := s.st.update(ctx, u.UUID, upd, cond); err != nil {
		if errors.Is(err, errConditionFailed) {
			return nil
		}
		return err
	}
	s.send(ctx, u.UUID, activationMail(u.Email, s.link(base, s.cfg.ActivationLinkBase, "/api/auth/activate", code.Value)))
	return nil
}

// userByEmail follows the email claim to its user.
func (s *Service) userByEmail(ctx context.Context, email string) (*User, error) {
	out, err := s.st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.st.table), Key: emailKey(email), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dbError(err)
	}
	var claim struct {
		User string `dynamodbav:"user"`
	}
	if out.Item == nil {
		return nil, ErrNotFound
	}
	if err := attributevalue.UnmarshalMap(out.Item, &claim); err != nil {
		return nil, httpapi.Internal(err)
	}
	return s.st.get(ctx, claim.User)
}
