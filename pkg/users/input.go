package users

import "encoding/json"

// ProfileInput is the writable part of the user object, as sign-up, staff
// create, PUT and PATCH take it; nil means absent. The UbiOps names name,
// surname and phone are aliases.
type ProfileInput struct {
	Username             *string         `json:"username"`
	Email                *string         `json:"email"`
	Password             *string         `json:"password"`
	FirstName            *string         `json:"first_name"`
	Name                 *string         `json:"name"`
	LastName             *string         `json:"last_name"`
	Surname              *string         `json:"surname"`
	PhoneNumber          *string         `json:"phone_number"`
	Phone                *string         `json:"phone"`
	NativeName           *string         `json:"native_name"`
	JobTitle             *string         `json:"job_title"`
	Organization         *string         `json:"organization"`
	CivilNumber          *string         `json:"civil_number"`
	Description          *string         `json:"description"`
	PreferredLanguage    *string         `json:"preferred_language"`
	BirthDate            *string         `json:"birth_date"`
	Image                *string         `json:"image"`
	NotificationsEnabled *bool           `json:"notifications_enabled"`
	TokenLifetime        *int            `json:"token_lifetime"`
	CustomData           json.RawMessage `json:"custom_data"`
	AgreeWithPolicy      *bool           `json:"agree_with_policy"`
	IsStaff              *bool           `json:"is_staff"`
	IsSupport            *bool           `json:"is_support"`
	IsActive             *bool           `json:"is_active"`
	// Waldur's further fields (UserRequest).
	Slug                     *string         `json:"slug"`
	PersonalTitle            *string         `json:"personal_title"`
	Gender                   json.RawMessage `json:"gender"` // an ISO 5218 code or null
	PlaceOfBirth             *string         `json:"place_of_birth"`
	CountryOfResidence       *string         `json:"country_of_residence"`
	Nationality              *string         `json:"nationality"`
	Nationalities            *[]string       `json:"nationalities"`
	OrganizationCountry      *string         `json:"organization_country"`
	OrganizationType         *string         `json:"organization_type"`
	OrganizationRegistryCode *string         `json:"organization_registry_code"`
	EdupersonAssurance       *[]string       `json:"eduperson_assurance"`
	IsIdentityManager        *bool           `json:"is_identity_manager"`
	ManagedISDs              *[]string       `json:"managed_isds"`
}

// ReadOnlyFields are fields of the user object a client may send back after
// reading it; they are ignored on input so GET-modify-PUT works.
var ReadOnlyFields = map[string]bool{
	"uuid": true, "url": true, "full_name": true, "status": true, "registration_method": true,
	"date_joined": true, "modified": true, "agreement_date": true, "token_expires_at": true,
	"requested_email": true, "has_active_session": true, "ip_address": true, "permissions": true,
	"affiliations": true, "identity_provider_name": true, "identity_provider_label": true,
	"identity_provider_management_url": true, "identity_provider_fields": true,
	"identity_source": true, "token": true, "attribute_sources": true, "active_isds": true,
	"email_status": true,
}

// aliases folds the UbiOps names into the contract's.
func (in *ProfileInput) aliases() {
	if in.FirstName == nil {
		in.FirstName = in.Name
	}
	if in.LastName == nil {
		in.LastName = in.Surname
	}
	if in.PhoneNumber == nil {
		in.PhoneNumber = in.Phone
	}
	in.Name, in.Surname, in.Phone = nil, nil, nil
}
