// Package users owns the user account: its record in DynamoDB, its claims on
// an email and a username, its token and emailed codes, and the operations
// people and staff perform on it.
package users

import (
	"encoding/json"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"strings"
	"time"
	"unicode/utf8"
)

// Statuses of an account.
const (
	StatusUnverified = "UNVERIFIED"
	StatusEnabled    = "ENABLED"
	StatusDisabled   = "DISABLED"
)

// Code purposes, each kept in its own attribute of the user's item.
const (
	PurposeActivation  = "activation"
	PurposeReset       = "reset"
	PurposeEmailChange = "email_change"
)

// Code is what the table keeps of an emailed code: its hash, never the code.
type Code struct {
	Hash     string    `dynamodbav:"hash"`
	Expires  time.Time `dynamodbav:"expires"`
	Attempts int       `dynamodbav:"attempts"`
	Email    string    `dynamodbav:"email,omitempty"` // the new address, for an email change
	// Epoch is the user's credential epoch when the code was issued: the
	// code works only while it is still current.
	Epoch int64 `dynamodbav:"epoch,omitempty"`
}

// User is the stored account.
type User struct {
	UUID                          string     `dynamodbav:"uuid"`
	Username                      string     `dynamodbav:"username"`
	Email                         string     `dynamodbav:"email"`
	FirstName                     string     `dynamodbav:"first_name,omitempty"`
	LastName                      string     `dynamodbav:"last_name,omitempty"`
	NativeName                    string     `dynamodbav:"native_name,omitempty"`
	JobTitle                      string     `dynamodbav:"job_title,omitempty"`
	PhoneNumber                   string     `dynamodbav:"phone_number,omitempty"`
	Organization                  string     `dynamodbav:"organization,omitempty"`
	CivilNumber                   string     `dynamodbav:"civil_number,omitempty"`
	Description                   string     `dynamodbav:"description,omitempty"`
	IsActive                      bool       `dynamodbav:"is_active"`
	IsStaff                       bool       `dynamodbav:"is_staff"`
	IsSupport                     bool       `dynamodbav:"is_support"`
	Status                        string     `dynamodbav:"status"`
	RegistrationMethod            string     `dynamodbav:"registration_method"`
	DateJoined                    time.Time  `dynamodbav:"date_joined"`
	Modified                      time.Time  `dynamodbav:"modified"`
	AgreementDate                 *time.Time `dynamodbav:"agreement_date,omitempty"`
	TokenLifetime                 int        `dynamodbav:"token_lifetime,omitempty"`
	NotificationsEnabled          bool       `dynamodbav:"notifications_enabled"`
	PreferredLanguage             string     `dynamodbav:"preferred_language,omitempty"`
	BirthDate                     string     `dynamodbav:"birth_date,omitempty"`
	CustomData                    string     `dynamodbav:"custom_data,omitempty"` // a JSON object, as given
	RequestedEmail                string     `dynamodbav:"requested_email,omitempty"`
	IPAddress                     string     `dynamodbav:"ip_address,omitempty"`
	Affiliations                  []string   `dynamodbav:"affiliations,omitempty"`
	IdentityProviderName          string     `dynamodbav:"identity_provider_name,omitempty"`
	IdentityProviderLabel         string     `dynamodbav:"identity_provider_label,omitempty"`
	IdentityProviderManagementURL string     `dynamodbav:"identity_provider_management_url,omitempty"`
	IdentityProviderFields        []string   `dynamodbav:"identity_provider_fields,omitempty"`
	IdentitySource                string     `dynamodbav:"identity_source,omitempty"`
	RemoteSub                     string     `dynamodbav:"remote_sub,omitempty"` // the identity source's sub, linked at the first pull (remote.go); never shown
	Image                         string     `dynamodbav:"image,omitempty"`
	// Waldur's further profile fields (its UserRequest schema).
	Slug                     string     `dynamodbav:"slug,omitempty"`
	PersonalTitle            string     `dynamodbav:"personal_title,omitempty"`
	Gender                   *int       `dynamodbav:"gender,omitempty"` // ISO 5218: 0, 1, 2 or 9
	PlaceOfBirth             string     `dynamodbav:"place_of_birth,omitempty"`
	CountryOfResidence       string     `dynamodbav:"country_of_residence,omitempty"`
	Nationality              string     `dynamodbav:"nationality,omitempty"`
	Nationalities            []string   `dynamodbav:"nationalities,omitempty"`
	OrganizationCountry      string     `dynamodbav:"organization_country,omitempty"`
	OrganizationType         string     `dynamodbav:"organization_type,omitempty"`
	OrganizationRegistryCode string     `dynamodbav:"organization_registry_code,omitempty"`
	EdupersonAssurance       []string   `dynamodbav:"eduperson_assurance,omitempty"`
	IsIdentityManager        bool       `dynamodbav:"is_identity_manager,omitempty"`
	ManagedISDs              []string   `dynamodbav:"managed_isds,omitempty"`
	Version                  int64      `dynamodbav:"version"`
	PasswordHash             string     `dynamodbav:"password_hash,omitempty"`
	TokenHash                string     `dynamodbav:"token_hash,omitempty"`
	TokenSealed              string     `dynamodbav:"token_sealed,omitempty"`
	TokenCreated             *time.Time `dynamodbav:"token_created,omitempty"`
	TokenExpires             *time.Time `dynamodbav:"token_expires,omitempty"`
	// TokenEpoch is the credential epoch the token was issued under.
	TokenEpoch int64 `dynamodbav:"token_epoch,omitempty"`
	// CredEpoch is the credential epoch: it moves on every password set,
	// reset or change, confirmed email change and disable, and ends every
	// token and code issued before (docs/SECURITY.md).
	CredEpoch       int64 `dynamodbav:"cred_epoch,omitempty"`
	CodeActivation  *Code `dynamodbav:"code_activation,omitempty"`
	CodeReset       *Code `dynamodbav:"code_reset,omitempty"`
	CodeEmailChange *Code `dynamodbav:"code_email_change,omitempty"`
	FailedLogins    int   `dynamodbav:"failed_logins,omitempty"`
	LockedUntil     int64 `dynamodbav:"locked_until,omitempty"` // unix ms: compared in conditions
	TTL             int64 `dynamodbav:"ttl,omitempty"`
	// EmailStatus is "" (fine), or failed, bounced or complained (outbox.go):
	// set by the stream function and the SES feedback, shown to staff.
	EmailStatus string `dynamodbav:"email_status,omitempty"`
	// MailFailedAt and MailFailedKind tell of the last mail that failed.
	MailFailedAt   *time.Time `dynamodbav:"mail_failed_at,omitempty"`
	MailFailedKind string     `dynamodbav:"mail_failed_kind,omitempty"`
	// HasGrants is set when the user is first given a role grant
	// (pkg/groups, through MarkGrants) and never cleared: a user without it
	// holds none, so reads of their permissions are skipped.
	HasGrants bool `dynamodbav:"has_grants,omitempty"`
	// upgrade is set by a password check that verified an imported legacy
	// hash: the write that records the success replaces it (never stored).
	upgrade *upgrade
}

// upgrade is the service's own hash of a password that verified against a
// legacy hash, and that password, to recheck the hash a concurrent login's
// upgrade wrote (afterRace).
type upgrade struct {
	hash     string
	password string
}

// upgraded adds to a successful check's write the replacement of a legacy
// hash it verified; the write's verified(u) condition makes it conditional
// on the legacy hash still being the one verified.
func upgraded(u *User, upd expression.UpdateBuilder) expression.UpdateBuilder {
	if u.upgrade == nil {
		return upd
	}
	return upd.Set(expression.Name("password_hash"), expression.Value(u.upgrade.hash))
}

// code returns the code kept for purpose, or nil.
func (u *User) code(purpose string) *Code {
	switch purpose {
	case PurposeActivation:
		return u.CodeActivation
	case PurposeReset:
		return u.CodeReset
	case PurposeEmailChange:
		return u.CodeEmailChange
	}
	return nil
}

// MaxFullName bounds full_name (and name) as Waldur's User schema does.
const MaxFullName = 200

// MaxSlug bounds a slug as Waldur's schema does.
const MaxSlug = 50

// SlugOrDefault is the user's slug: the one kept, or (for accounts from
// before slugs) the one their username gives.
func (u *User) SlugOrDefault() string {
	if u.Slug != "" {
		return u.Slug
	}
	return SlugFrom(u.Username)
}

// SlugFrom derives a slug from a username: what Waldur's slug pattern
// ([-a-zA-Z0-9_]) does not allow becomes "-", cut to MaxSlug characters.
func SlugFrom(username string) string {
	b := []byte(strings.ToLower(username))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > MaxSlug {
		b = b[:MaxSlug]
	}
	if len(b) == 0 {
		return "user"
	}
	return string(b)
}

// FullName is derived from the first and last names.
func (u *User) FullName() string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

// HasValidToken reports whether the user's token is live at now.
func (u *User) HasValidToken(now time.Time) bool {
	return u.TokenHash != "" && u.TokenExpires != nil && now.Before(*u.TokenExpires) && u.TokenEpoch == u.CredEpoch
}

// Lifetime is the user's token lifetime, or def when unset.
func (u *User) Lifetime(def time.Duration) time.Duration {
	if u.TokenLifetime > 0 {
		return time.Duration(u.TokenLifetime) * time.Second
	}
	return def
}

// View is the contract's user object.
type View struct {
	UUID                          string          `json:"uuid"`
	URL                           string          `json:"url"`
	Username                      string          `json:"username"`
	Email                         string          `json:"email"`
	FirstName                     string          `json:"first_name"`
	LastName                      string          `json:"last_name"`
	FullName                      string          `json:"full_name"`
	Name                          string          `json:"name"` // the full name again, as ApiHub and eContext return it
	NativeName                    string          `json:"native_name"`
	JobTitle                      string          `json:"job_title"`
	PhoneNumber                   string          `json:"phone_number"`
	Organization                  string          `json:"organization"`
	CivilNumber                   string          `json:"civil_number"`
	Description                   string          `json:"description"`
	IsActive                      bool            `json:"is_active"`
	IsStaff                       bool            `json:"is_staff"`
	IsSupport                     bool            `json:"is_support"`
	Status                        string          `json:"status"`
	RegistrationMethod            string          `json:"registration_method"`
	DateJoined                    string          `json:"date_joined"`
	Modified                      string          `json:"modified"`
	AgreementDate                 *string         `json:"agreement_date"`
	TokenLifetime                 int             `json:"token_lifetime"`
	TokenExpiresAt                *string         `json:"token_expires_at"`
	NotificationsEnabled          bool            `json:"notifications_enabled"`
	PreferredLanguage             string          `json:"preferred_language"`
	BirthDate                     *string         `json:"birth_date"`
	CustomData                    json.RawMessage `json:"custom_data"`
	RequestedEmail                *string         `json:"requested_email"`
	HasActiveSession              bool            `json:"has_active_session"`
	IPAddress                     *string         `json:"ip_address"`
	Permissions                   []any           `json:"permissions"`
	Affiliations                  []string        `json:"affiliations"`
	IdentityProviderName          string          `json:"identity_provider_name"`
	IdentityProviderLabel         string          `json:"identity_provider_label"`
	IdentityProviderManagementURL string          `json:"identity_provider_management_url"`
	IdentityProviderFields        []string        `json:"identity_provider_fields"`
	IdentitySource                string          `json:"identity_source"`
	Image                         *string         `json:"image"`
	Slug                          string          `json:"slug"`
	PersonalTitle                 string          `json:"personal_title"`
	Gender                        *int            `json:"gender"`
	PlaceOfBirth                  string          `json:"place_of_birth"`
	CountryOfResidence            string          `json:"country_of_residence"`
	Nationality                   string          `json:"nationality"`
	Nationalities                 []string        `json:"nationalities"`
	OrganizationCountry           string          `json:"organization_country"`
	OrganizationType              string          `json:"organization_type"`
	OrganizationRegistryCode      string          `json:"organization_registry_code"`
	EdupersonAssurance            []string        `json:"eduperson_assurance"`
	IsIdentityManager             bool            `json:"is_identity_manager"`
	ManagedISDs                   []string        `json:"managed_isds"`
	AttributeSources              map[string]any  `json:"attribute_sources"` // none tracked yet
	ActiveISDs                    []string        `json:"active_isds"`       // no Identity Bridge yet
	// EmailStatus is failed, bounced or complained when mail to the
	// address has a problem (outbox.go); absent when it has none.
	EmailStatus string `json:"email_status,omitempty"`
	Token       string `json:"token,omitempty"`
}

// TimeFormat is how every time is written: RFC 3339 in UTC.
func TimeFormat(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := TimeFormat(*t)
	return &s
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ToView renders u for output; baseURL is the API's public base URL.
func (u *User) ToView(baseURL string, defLifetime time.Duration, now time.Time) View {
	v := View{
		UUID: u.UUID, URL: baseURL + "/api/users/" + u.UUID + "/",
		Username: u.Username, Email: u.Email,
		FirstName: u.FirstName, LastName: u.LastName, FullName: u.FullName(), Name: u.FullName(),
		NativeName: u.NativeName, JobTitle: u.JobTitle, PhoneNumber: u.PhoneNumber,
		Organization: u.Organization, CivilNumber: u.CivilNumber, Description: u.Description,
		IsActive: u.IsActive, IsStaff: u.IsStaff, IsSupport: u.IsSupport,
		Status: u.Status, RegistrationMethod: u.RegistrationMethod,
		DateJoined: TimeFormat(u.DateJoined), Modified: TimeFormat(u.Modified),
		AgreementDate:        optTime(u.AgreementDate),
		TokenLifetime:        int(u.Lifetime(defLifetime).Seconds()),
		NotificationsEnabled: u.NotificationsEnabled, PreferredLanguage: u.PreferredLanguage,
		BirthDate: optString(u.BirthDate), RequestedEmail: optString(u.RequestedEmail),
		HasActiveSession: u.HasValidToken(now), IPAddress: optString(u.IPAddress),
		Permissions: []any{}, Affiliations: orEmpty(u.Affiliations),
		IdentityProviderName: u.IdentityProviderName, IdentityProviderLabel: u.IdentityProviderLabel,
		IdentityProviderManagementURL: u.IdentityProviderManagementURL,
		IdentityProviderFields:        orEmpty(u.IdentityProviderFields),
		IdentitySource:                u.IdentitySource, Image: optString(u.Image),
		CustomData: json.RawMessage("{}"),
		Slug:       u.SlugOrDefault(), PersonalTitle: u.PersonalTitle, Gender: u.Gender,
		PlaceOfBirth: u.PlaceOfBirth, CountryOfResidence: u.CountryOfResidence,
		Nationality: u.Nationality, Nationalities: orEmpty(u.Nationalities),
		OrganizationCountry: u.OrganizationCountry, OrganizationType: u.OrganizationType,
		OrganizationRegistryCode: u.OrganizationRegistryCode,
		EdupersonAssurance:       orEmpty(u.EdupersonAssurance),
		IsIdentityManager:        u.IsIdentityManager || len(u.ManagedISDs) > 0,
		ManagedISDs:              orEmpty(u.ManagedISDs),
		AttributeSources:         map[string]any{}, ActiveISDs: []string{},
		EmailStatus: u.EmailStatus,
	}
	if utf8.RuneCountInString(v.FullName) > MaxFullName {
		v.FullName = string([]rune(v.FullName)[:MaxFullName]) // Waldur's full_name is at most 200
		v.Name = v.FullName
	}
	if u.CustomData != "" {
		v.CustomData = json.RawMessage(u.CustomData)
	}
	if u.HasValidToken(now) {
		v.TokenExpiresAt = optTime(u.TokenExpires)
	}
	return v
}
