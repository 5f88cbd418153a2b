package users

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/metrics"
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
	sealer func(context.Context) (*secret.Sealer, error)
	cfg    config.Config
	log    *slog.Logger
	// Now is the clock; tests replace it to check expiry.
	Now func() time.Time
	// full is shared by the copies List makes (ratelimit.go fullWindows).
	full *fullWindows
	// legacy is lazy migration's endpoint; nil when it is off (migrate.go).
	legacy LegacyVerifier
	// keys checks Authorization: Api-Key (keyauth.go); nil refuses it.
	keys KeyAuthenticator
	// Metrics counts sign-ups, activations, logins, failed logins and
	// lockouts (EMF lines; nil counts nothing).
	Metrics *metrics.Recorder
}

// New builds the service. sealer returns the token sealer, loading its key
// on first use.
func New(db DB, cfg config.Config, sealer func(context.Context) (*secret.Sealer, error), log *slog.Logger) *Service {
	db = retrying(db, time.Sleep, countShards(cfg.CountShards))
	return &Service{st: store{db: db, table: cfg.TableName, countShards: cfg.CountShards}, sealer: sealer, cfg: cfg, log: log, Now: time.Now,
		full: &fullWindows{m: map[string]time.Time{}}}
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
		// Bounds no looser than Waldur's UserRequest, so every answer
		// validates against its User schema.
		{"first_name", in.FirstName, &u.FirstName, MaxName},
		{"last_name", in.LastName, &u.LastName, MaxName},
		{"native_name", in.NativeName, &u.NativeName, MaxName},
		{"job_title", in.JobTitle, &u.JobTitle, 120},
		{"phone_number", in.PhoneNumber, &u.PhoneNumber, 40},
		{"organization", in.Organization, &u.Organization, MaxShortString},
		{"civil_number", in.CivilNumber, &u.CivilNumber, 50},
		{"description", in.Description, &u.Description, MaxLongString},
		{"preferred_language", in.PreferredLanguage, &u.PreferredLanguage, 10},
		{"image", in.Image, &u.Image, MaxLongString},
		{"personal_title", in.PersonalTitle, &u.PersonalTitle, 50},
		{"place_of_birth", in.PlaceOfBirth, &u.PlaceOfBirth, 255},
		{"organization_type", in.OrganizationType, &u.OrganizationType, 255},
		{"organization_registry_code", in.OrganizationRegistryCode, &u.OrganizationRegistryCode, 255},
	} {
		if f.v == nil {
			continue
		}
		boundString(p, f.name, f.v, f.max)
		*f.dst = *f.v
	}
	if in.Image != nil && *in.Image != "" {
		if msg := httpapi.WebURLProblem(*in.Image); msg != "" {
			p.add("image", msg) // the identity source's pictures pass the same check
		}
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
		case len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) || !utf8.Valid(raw): // a form's value is not UTF-8-checked by a JSON decoder
			p.add("custom_data", "Expected a JSON object.")
		case len(raw) > MaxCustomData:
			p.add("custom_data", "Ensure custom_data is at most 16 KiB.")
		default:
			u.CustomData = string(raw)
		}
	}
	applyWaldurProfile(p, in, u)
	if in.AgreeWithPolicy != nil && *in.AgreeWithPolicy {
		t := now
		u.AgreementDate = &t
	}
}

// Register signs a person up: the account is UNVERIFIED until they open the
// activation link mailed to them and give the password chosen here. One
// DynamoDB request after the limits: the user and both claims in one
// transaction, so two sign-ups with one email cannot both win. An address
// or username held only by an UNVERIFIED account is no obstacle: that
// account is replaced (st.create), so whoever signed up first with someone
// else's address holds nothing once the owner signs up.
func (s *Service) Register(ctx context.Context, in ProfileInput, ip string) (*User, error) {
	return s.RegisterJoining(ctx, in, ip, Join{})
}

// Join is what a sign-up writes besides the account, in the account's own
// transaction: another domain's items built for the new account (pkg/groups'
// grants of an eContext create), so the account and they exist together or
// not at all.
type Join struct {
	// Items are the other domain's transaction items for the new account;
	// it may mark the account (User.HasGrants) before it is written.
	Items func(u *User) []types.TransactWriteItem
	// Failed is the answer when one of their conditions fails (a scope
	// deleted meanwhile).
	Failed error
	// Method is the account's registration_method ("default" when empty).
	Method string
}

// RegisterJoining is Register writing j's items with the account.
func (s *Service) RegisterJoining(ctx context.Context, in ProfileInput, ip string, j Join) (*User, error) {
	if in.IsStaff != nil || in.IsSupport != nil || in.IsActive != nil {
		return nil, httpapi.Forbidden("Only staff can set is_staff, is_support or is_active.")
	}
	if in.Slug != nil || in.IsIdentityManager != nil || in.ManagedISDs != nil {
		return nil, httpapi.Forbidden("Only staff can set slug, is_identity_manager or managed_isds.")
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
	username := email
	if in.Username != nil {
		un, msg := ValidUsername(*in.Username)
		if msg != "" {
			p.add("username", msg)
		}
		username = un
	} else if email != "" {
		un, msg := ValidUsername(email)
		if msg != "" {
			p.add("username", "Your email cannot serve as a username; choose one.")
		}
		username = un
	}
	if msg := usernameIsAnotherEmail(username, email); msg != "" && email != "" {
		p.add("username", msg)
	}
	if in.Password == nil || *in.Password == "" {
		p.add("password", "This field is required.")
	} else if msgs := ValidPassword(*in.Password, email, username); len(msgs) > 0 {
		p["password"] = append(p["password"], msgs...)
	}
	u := &User{
		UUID: uuid.NewString(), Username: username, Email: email,
		Status: StatusUnverified, RegistrationMethod: "default",
		DateJoined: now, Modified: now, NotificationsEnabled: true, Version: 1, CredEpoch: 1,
		TTL: now.Add(UnverifiedTTL).Unix(),
	}
	if j.Method != "" {
		u.RegistrationMethod = j.Method
	}
	applyProfile(p, &in, u, now)
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	// The limits are counted before the hash, so a refused sign-up costs
	// none; every attempt counts, duplicates included, so addresses cannot
	// be probed faster than the limit.
	if err := s.hitAll(ctx, s.rateFor(ActionSignUp, ip), s.rateForAddress(NormalizeEmail(email))); err != nil {
		return nil, err
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
	u.CodeActivation = &Code{Hash: secret.Hash(code.Value), Expires: now.Add(ActivationTTL), Epoch: u.CredEpoch}
	// The activation mail is queued in the sign-up's own transaction
	// (outbox.go): still one request, and no mail without the account.
	queued, err := s.outbox(ctx, u, now, outMail{kind: MailActivation, expires: u.CodeActivation.Expires,
		msg: s.mailsFor(u).activation(u.Email, s.link(ctx, s.cfg.ActivationLinkBase, "/account/activate", code.Value))})
	if err != nil {
		return nil, err
	}
	var joined []types.TransactWriteItem
	if j.Items != nil {
		joined = j.Items(u)
		u.HasGrants = len(joined) > 0 // its grants are read with it (pkg/groups)
	}
	if err := s.st.createJoining(ctx, u, now, true, joined, j.Failed, queued...); err != nil {
		return nil, err
	}
	s.Metrics.Count(ctx, metrics.SignUps, 1)
	return u, nil
}

// PublicURL is the service's base URL for ctx's request: PUBLIC_URL, or
// the execute-api URL of the API that received it. Never built from
// request headers.
func (s *Service) PublicURL(ctx context.Context) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	id, stage := httpapi.APIStage(ctx)
	if id == "" {
		return ""
	}
	suffix := "amazonaws.com"
	if strings.HasPrefix(s.cfg.Region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	b := "https://" + id + ".execute-api." + s.cfg.Region + "." + suffix
	if stage != "" && stage != "$default" {
		b += "/" + stage
	}
	return b
}

// link is the mailed link for code: the configured page, or the route on
// the service's public URL.
func (s *Service) link(ctx context.Context, configured, route, code string) string {
	b := configured
	if b == "" {
		b = s.PublicURL(ctx) + route
	}
	sep := "?"
	if strings.Contains(b, "?") {
		sep = "&"
	}
	return b + sep + "code=" + code
}

// create writes a new user and its claims in one transaction. A claim held
// by an UNVERIFIED account (one nobody has proved the mailbox and password
// of) is taken over: that account, and its other claim, are deleted in the
// same transaction, conditional on it still being unverified and as read.
//
// The slug is claimed too: one given (by staff) must be free; one derived
// from the username that another account holds gets a random suffix. A
// slug is never a reason to replace an account: only the replaced holder
// of the email or username gives its slug up.
// queued (outbox items) are written in the same transaction.
func (st *store) create(ctx context.Context, u *User, now time.Time, queued ...types.TransactWriteItem) error {
	return st.createAs(ctx, u, now, true, queued...)
}

// createAs is create; with replace false (an import), a claim held by any
// account, activated or not, fails the create with a *claimHeld instead of
// replacing its holder.
func (st *store) createAs(ctx context.Context, u *User, now time.Time, replace bool, queued ...types.TransactWriteItem) error {
	return st.createJoining(ctx, u, now, replace, nil, nil, queued...)
}

// createJoining is createAs with another domain's items last in the
// transaction; when one of their conditions fails the answer is failed.
func (st *store) createJoining(ctx context.Context, u *User, now time.Time, replace bool, joined []types.TransactWriteItem, failed error, queued ...types.TransactWriteItem) error {
	derived := u.Slug == ""
	if derived {
		u.Slug = SlugFrom(u.Username)
	}
	claims := []map[string]types.AttributeValue{emailKey(u.Email), usernameKey(u.Username)}
	// An account created active is listed at once (list.go); sign-up's is not.
	counts := append(st.countItems(nil, u), st.entryItems(nil, u)...)
	for attempt := 0; ; attempt++ {
		item, err := st.marshalUser(u)
		if err != nil {
			return httpapi.Internal(err)
		}
		put := types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}}
		items := []types.TransactWriteItem{put,
			st.takeClaim(claims[0], u.UUID, u.TTL, now), st.takeClaim(claims[1], u.UUID, u.TTL, now),
			st.takeClaim(slugKey(u.Slug), u.UUID, u.TTL, now)}
		if attempt > 0 {
			// Who holds the claims now, and may they be replaced?
			over, err := st.replaceable(ctx, claims, now, replace)
			if err != nil {
				return err
			}
			for i, h := range over.holders {
				if h != nil {
					items[1+i] = st.takeClaimFrom(claims[i], u.UUID, h.UUID, u.TTL)
				}
			}
			slugItem, removals, err := st.slugOver(ctx, u, derived, over, now)
			if err != nil {
				return err
			}
			if slugItem.Put != nil {
				items[0].Put.Item["slug"] = str(u.Slug) // it may have got a suffix
				items[3] = slugItem
			}
			items = append(items, removals...)
		}
		items = append(append(append(items, counts...), queued...), joined...)
		_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		fails, conditional := txCanceled(err)
		if !conditional {
			return dbError(err)
		}
		for i := len(items) - len(joined); i < len(fails); i++ {
			if fails[i] && failed != nil {
				return failed
			}
		}
		if attempt == 3 {
			return httpapi.BadRequest(httpapi.DuplicateMessage)
		}
	}
}

// takeover is what replacing the unverified holders of claims takes: per
// claim its holder (nil when free or held by an active account, whose
// claim the transaction then fails on), and the deletes of the holders and
// of their other claims.
type takeover struct {
	holders  []*User
	removals []types.TransactWriteItem
}

// claimHeld is a create without replace refused by a claim's holder.
type claimHeld struct {
	// Claim is the index of the claim (0 email, 1 username).
	Claim int
	// Holder is the uuid of the account holding it.
	Holder string
}

func (e *claimHeld) Error() string { return "users: claim held by " + e.Holder }

// replaceable reads the holders of claims and plans the takeover of those
// that are unverified. An active holder makes the sign-up a duplicate.
// Without replace, any holder refuses the create (*claimHeld).
func (st *store) replaceable(ctx context.Context, claims []map[string]types.AttributeValue, now time.Time, replace bool) (takeover, error) {
	got, err := st.batchGet(ctx, claims)
	if err != nil {
		return takeover{}, err
	}
	held := map[string]string{}
	for _, it := range got {
		if h, ok := it["user"].(*types.AttributeValueMemberS); ok {
			held[pkOf(it)] = h.Value
		}
	}
	t := takeover{holders: make([]*User, len(claims))}
	seen := map[string]*User{}
	for i, k := range claims {
		id := held[pkOf(k)]
		if id == "" {
			continue
		}
		h, ok := seen[id]
		if !ok {
			if h, err = st.get(ctx, id); errors.Is(err, ErrNotFound) {
				h = nil // a stray claim: the retry's takeClaim (TTL) or the duplicate answer decides
			} else if err != nil {
				return takeover{}, err
			}
			if h != nil && !replace {
				return takeover{}, &claimHeld{Claim: i, Holder: h.UUID}
			}
			if h != nil && h.Status != StatusUnverified {
				return takeover{}, httpapi.BadRequest(httpapi.DuplicateMessage)
			}
			seen[id] = h
		}
		t.holders[i] = h
	}
	taken := map[string]bool{}
	for _, k := range claims {
		taken[pkOf(k)] = true
	}
	for _, h := range seen {
		if h == nil {
			continue
		}
		t.removals = append(t.removals, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: userKey(h.UUID),
			ConditionExpression:      aws.String("#status = :unverified AND version = :v"),
			ExpressionAttributeNames: map[string]string{"#status": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":unverified": str(StatusUnverified), ":v": n(h.Version)}}})
		for _, k := range []map[string]types.AttributeValue{emailKey(h.Email), usernameKey(h.Username)} {
			if !taken[pkOf(k)] {
				taken[pkOf(k)] = true
				t.removals = append(t.removals, st.releaseClaim(k, h.UUID))
			}
		}
		if h.RemoteSub != "" { // the remote identity it was linked to (remote.go)
			t.removals = append(t.removals, st.releaseClaim(remoteSubKey(h.RemoteSub), h.UUID))
		}
		if h.Slug != "" {
			t.removals = append(t.removals, st.releaseClaim(slugKey(h.Slug), h.UUID))
		}
	}
	return t, nil
}

// slugOver decides the claim of u's slug on a retried create: taken from a
// holder the create replaces anyway (whose release then drops out of the
// removals), or, held by anyone else, a suffixed slug when derived and a
// refusal when chosen. It returns the claim's item and the removals.
func (st *store) slugOver(ctx context.Context, u *User, derived bool, over takeover, now time.Time) (types.TransactWriteItem, []types.TransactWriteItem, error) {
	k := slugKey(u.Slug)
	got, err := st.batchGet(ctx, []map[string]types.AttributeValue{k})
	if err != nil {
		return types.TransactWriteItem{}, nil, err
	}
	holder := ""
	if len(got) == 1 {
		if h, ok := got[0]["user"].(*types.AttributeValueMemberS); ok {
			holder = h.Value
		}
		if t, ok := got[0]["ttl"].(*types.AttributeValueMemberN); ok {
			if exp, err := strconv.ParseInt(t.Value, 10, 64); err == nil && exp < now.Unix() {
				holder = "" // expired, not yet swept: takeClaim's condition allows it
			}
		}
	}
	if holder == "" || holder == u.UUID {
		return st.takeClaim(k, u.UUID, u.TTL, now), over.removals, nil
	}
	for _, h := range over.holders {
		if h != nil && h.UUID == holder {
			var removals []types.TransactWriteItem
			for _, r := range over.removals {
				if r.Delete == nil || pkOf(r.Delete.Key) != pkOf(k) {
					removals = append(removals, r)
				}
			}
			return st.takeClaimFrom(k, u.UUID, holder, u.TTL), removals, nil
		}
	}
	if !derived {
		return types.TransactWriteItem{}, nil, httpapi.Invalid(map[string][]string{"slug": {"Someone already has that slug. Could you try another?"}})
	}
	base := SlugFrom(u.Username)
	if len(base) > MaxSlug-9 {
		base = base[:MaxSlug-9]
	}
	u.Slug = base + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	return st.takeClaim(slugKey(u.Slug), u.UUID, u.TTL, now), over.removals, nil
}

// codeError is the one answer for a code that cannot be used.
func codeError() error {
	return httpapi.BadRequest("This code is invalid, already used or expired.")
}

// checkCode verifies a presented code against the user's stored one for
// purpose: counting the attempt first, comparing in constant time, then
// checking expiry and that it was issued under the current credential
// epoch. A wrong code costs one attempt (one UpdateItem).
func (s *Service) checkCode(ctx context.Context, u *User, purpose, presented string, now time.Time) (*Code, error) {
	c := u.code(purpose)
	if c == nil || c.Attempts >= MaxCodeAttempts || c.Epoch != u.CredEpoch {
		return nil, codeError()
	}
	attr := "code_" + purpose
	if !secret.Matches(presented, c.Hash) {
		upd := expression.Set(expression.Name(attr+".attempts"), expression.Name(attr+".attempts").Plus(expression.Value(1)))
		cond := expression.Name(attr + ".hash").Equal(expression.Value(c.Hash))
		if _, err := s.st.update(ctx, u, upd, cond); err != nil && !errors.Is(err, errConditionFailed) {
			return nil, err
		}
		return nil, codeError()
	}
	if !now.Before(c.Expires) || (u.TTL != 0 && now.Unix() >= u.TTL) {
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

// Activate enables the account a code was mailed for, when the caller also
// gives the password chosen at sign-up: activation proves both the mailbox
// and the password the account will have, so an account someone else
// signed up with your address never becomes yours or theirs. A wrong
// password counts toward the lockout and leaves the code usable. Two
// requests: read the user, then one transaction that consumes the code
// (conditional on its hash, the password verified and the credential
// epoch, so a second use fails) and makes the claims permanent.
func (s *Service) Activate(ctx context.Context, code, password string) (*User, error) {
	now := s.now()
	p := problems{}
	if strings.TrimSpace(code) == "" {
		p.add("code", "This field is required.")
	}
	if password == "" {
		p.add("password", "This field is required: the password chosen at sign-up.")
	} else if len(password) > 4*MaxPassword {
		p.add("password", "This password is too long.")
	}
	if len(p) > 0 {
		return nil, httpapi.Invalid(p)
	}
	u, err := s.userForCode(ctx, code)
	if err != nil {
		return nil, err
	}
	c, err := s.checkCode(ctx, u, PurposeActivation, strings.TrimSpace(code), now)
	if err != nil {
		return nil, err
	}
	// A wrong password counts toward the lockout. Unlike a login's, it is
	// counted after the hash, which keeps activation within its two
	// requests: a burst of guesses here needs the code, that is the
	// mailbox, whose owner can simply sign up again (which replaces the
	// account) rather than guess.
	checked := s.Now().UTC()
	if w := u.lockWait(checked); w > 0 {
		return nil, lockedOut(w)
	}
	if !secret.CheckPassword(password, u.PasswordHash) {
		if _, err := s.reserve(ctx, u, nil, checked); err != nil {
			return nil, err
		}
		return nil, httpapi.Invalid(map[string][]string{"password": {"This is not the password chosen at sign-up."}})
	}
	if err := prepareUpgrade(u, password); err != nil {
		return nil, err
	}
	upd := upgraded(u, clearFailures(bump(expression.Set(expression.Name("status"), expression.Value(StatusEnabled)).
		Set(expression.Name("is_active"), expression.Value(true)).
		Remove(expression.Name("code_activation")).
		Remove(expression.Name("ttl")), now)))
	// Activation lists the account: its index keys and counts (list.go).
	active := *u
	active.Status, active.IsActive = StatusEnabled, true
	cond := expression.Name("code_activation.hash").Equal(expression.Value(c.Hash)).And(verified(u), ours(u, checked))
	upd, cond, counts, _ := s.st.listingWrite(u, &active, upd, cond)
	item, err := s.st.userUpdate(u, upd, cond)
	if err != nil {
		return nil, err
	}
	_, err = s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append([]types.TransactWriteItem{
		item, s.st.keepClaim(emailKey(u.Email), u.UUID), s.st.keepClaim(usernameKey(u.Username), u.UUID),
	}, append(slugClaims(u, s.st.keepClaim), counts...)...)})
	if err != nil {
		if _, conditional := txCanceled(err); conditional {
			// Used, replaced, re-keyed or locked meanwhile; or the claims
			// were swept with the expired account: it must sign up again.
			return nil, codeError()
		}
		return nil, dbError(err)
	}
	u.Status, u.IsActive, u.CodeActivation, u.TTL = StatusEnabled, true, nil, 0
	u.FailedLogins, u.LockedUntil = 0, 0
	u.Version++
	u.Modified = now
	s.Metrics.Count(ctx, metrics.Activations, 1)
	return u, nil
}

// ResendActivation mails a new activation code if email belongs to an
// account that is not yet active. It answers the same either way and does
// the same work either way (mailOnRequest), so it tells nobody whether an
// address has an account. The new code expires with the account: a resend
// never extends an unverified account's life past its first 7 days.
func (s *Service) ResendActivation(ctx context.Context, email, ip string) error {
	return s.mailOnRequest(ctx, email, s.rateFor(ActionResend, ip), func(u *User, now time.Time) (*Code, string, func(string) mail.Message) {
		if u.Status != StatusUnverified || u.TTL == 0 || now.Unix() >= u.TTL {
			return nil, "", nil
		}
		expires := now.Add(ActivationTTL)
		if end := time.Unix(u.TTL, 0).UTC(); end.Before(expires) {
			expires = end
		}
		c := &Code{Expires: expires, Epoch: u.CredEpoch}
		return c, "code_activation", func(code string) mail.Message {
			return s.mailsFor(u).activation(u.Email, s.link(ctx, s.cfg.ActivationLinkBase, "/account/activate", code))
		}
	})
}

// mailOnRequest is resend and reset: count the client IP; read the
// address's user; if plan gives a code for it, store the code and queue
// its mail (with the address's mail counter, in one transaction). Whether
// or not the address has an account, or the address's window is full, the
// DynamoDB work is the same (one counted write, two reads, a three-item
// transaction): where there is nothing to mail, a decoy is queued, which
// the stream function drops. So neither the answer nor its timing tells
// whether the address has an account.
func (s *Service) mailOnRequest(ctx context.Context, email string, ipRate *rate,
	plan func(u *User, now time.Time) (*Code, string, func(string) mail.Message)) error {
	e, msg := ValidEmail(email)
	if msg != "" {
		return httpapi.Invalid(map[string][]string{"email": {msg}})
	}
	if err := s.hit(ctx, ipRate); err != nil {
		return err
	}
	now := s.now()
	u, err := s.userByEmail(ctx, e)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	addr := s.rateForAddress(NormalizeEmail(e))
	var c *Code
	var attr string
	var build func(string) mail.Message
	if u != nil {
		c, attr, build = plan(u, now)
	}
	owner, kind := unknownUser, MailReset
	if c != nil {
		owner = u.UUID
		if attr == "code_activation" {
			kind = MailActivation
		}
	}
	code, err := secret.NewCode(owner)
	if err != nil {
		return httpapi.Internal(err)
	}
	if c != nil {
		c.Hash = secret.Hash(code.Value)
		queued, err := s.outbox(ctx, u, now, outMail{kind: kind, expires: c.Expires, msg: build(code.Value)})
		if err != nil {
			return err
		}
		_, err = s.st.writeUser(ctx, u, expression.Set(expression.Name(attr), expression.Value(*c)), expression.ConditionBuilder{}, addr.exact(), queued...)
		if err == nil || errors.Is(err, errConditionFailed) || isRefused(err) {
			// Sent, or changed meanwhile, or the address had mail enough:
			// the same answer.
			return nil
		}
		return err
	}
	// Nothing to mail: a decoy, queued like a mail and sent to nobody.
	decoy, err := s.outbox(ctx, nil, now, outMail{kind: MailDecoy, msg: s.decoyMail(s.link(ctx, "", "/", code.Value))})
	if err != nil {
		return err
	}
	if err := s.decoyWrite(ctx, addr, decoy...); err != nil && !isRefused(err) {
		return err
	}
	return nil
}

// decoyWrite is the write a request makes where it has nothing to store,
// shaped as the user write it stands in for: a decoy counter, in one
// transaction with r when limits are on.
func (s *Service) decoyWrite(ctx context.Context, r *rate, queued ...types.TransactWriteItem) error {
	if r == nil && len(queued) == 0 {
		return s.hit(ctx, s.decoyRate())
	}
	if now := s.Now().UTC(); r != nil && r.knownFull(now) {
		return r.refused(now)
	}
	items := []types.TransactWriteItem{s.decoyRate().item(s.st.table, false)}
	if r != nil {
		items = append(items, r.item(s.st.table, true))
	}
	items = append(items, queued...)
	_, err := s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	if failed, conditional := txCanceled(err); conditional && len(failed) > 1 && failed[1] {
		return r.refused(s.Now().UTC())
	}
	return dbError(err)
}

// userByEmail follows the email claim to its user. It reads a user item
// whether or not the claim exists (an unknown address reads a key nobody
// has), so both cases cost the same.
func (s *Service) userByEmail(ctx context.Context, email string) (*User, error) {
	out, err := s.st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.st.table), Key: emailKey(email), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dbError(err)
	}
	var claim struct {
		User string `dynamodbav:"user"`
	}
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &claim); err != nil {
			return nil, httpapi.Internal(err)
		}
	}
	if claim.User == "" {
		claim.User = unknownUser
	}
	return s.st.get(ctx, claim.User)
}
