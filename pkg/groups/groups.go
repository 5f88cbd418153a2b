// Package groups owns applications, groups and role grants: eContext's
// applications and groups, Waldur's role grants on customer and project
// scopes (the user object's permissions), and ApiHub's rule that deleting
// a user deletes the teams it was the only member of. It keeps its own
// items in the one table (docs/GROUPS.md "Storage") and asks pkg/users for
// what it needs of users (an existence check inside its transactions, a
// batch read of the members shown on a page); pkg/users knows nothing of it.
//
// The API other packages call:
//   - PermissionsOf / PermissionsFor / PermissionsOfMany: a user's grants in
//     Waldur's Permission shape (one GetItem; many users: one BatchGetItem
//     per 100).
//   - Scopes: applications and groups by id (one BatchGetItem; unknown ids
//     are a 400 naming them).
//   - CanAssign: whether a caller may add users to every named scope.
//   - JoinItems / JoinItemsBy: the transaction items that grant a role on
//     scopes, for another package's transaction (a user's creation).
//   - RemoveUser: the cascade of a deleted user (the stream runs it);
//     RemoveUnverifiedUser: only the grants of one never activated.
//   - ScopeRemoved, ScopeRenamed, GrantExpired: the stream's follow-ups.
package groups

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/example/accounts/pkg/table"
	"github.com/example/accounts/pkg/users"
)

// Kinds of scope.
const (
	KindApplication = "application"
	KindGroup       = "group"
)

// Statuses of a scope.
const (
	StatusEnabled  = "ENABLED"
	StatusDisabled = "DISABLED"
)

// Limits (docs/GROUPS.md "Limits").
const (
	// MaxGrantsPerUser bounds the role grants one user holds (their
	// user-side item stays far below DynamoDB's 400 KB).
	MaxGrantsPerUser = 500
	// MaxGroupsPerApplication bounds the groups of one application.
	MaxGroupsPerApplication = 1000
	// MaxCustomData bounds custom_data, as the user's.
	MaxCustomData = 16 << 10
	// MaxName and MaxDescription bound a scope's name and description.
	MaxName        = 150
	MaxDescription = 2000
	// MaxPageSize bounds list_users and the scope lists' page_size (one
	// BatchGetItem a page).
	MaxPageSize = 100
	// DefaultPageSize is the page size when none is asked.
	DefaultPageSize = 10
)

// Scope is what applications and groups share: eContext's object.
type Scope struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Status      string          `json:"status"`
	CustomData  json.RawMessage `json:"custom_data"`
	CreatedAt   string          `json:"created_at"`
	ModifiedAt  string          `json:"modified_at"`
	Href        string          `json:"href"`
}

// Application is eContext's application (Waldur's customer scope).
type Application struct {
	Scope
}

// Group is eContext's group (Waldur's project scope): it belongs to
// exactly one application.
type Group struct {
	Scope
	Application string `json:"application"`
	// appName is the application's name, when Scopes read it (the
	// customer_name JoinItems records).
	appName string
}

// Service performs the operations on applications, groups and grants.
type Service struct {
	db    table.DB
	table string
	users *users.Service
	log   *slog.Logger
	// Now is the clock; tests replace it to check expiry.
	Now func() time.Time
}

// New builds the service on db's table. us may be nil where no user is
// read or checked (the stream's cascade).
func New(db table.DB, tableName string, us *users.Service, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{db: table.RetryConflicts{DB: db}, table: tableName, users: us, log: log, Now: time.Now}
	return s
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Second) }

// timeFormat is how the package writes times: RFC 3339 in UTC (API.md).
func timeFormat(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// EContextTime is how eContext's objects (applications, groups, its user)
// write created_at and modified_at, as its documentation shows them:
// "2017-05-08 19:21:13.381000+00:00", RFC 3339 with a space for the T.
func EContextTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000000+00:00") }
