package groups

import (
	"github.com/google/uuid"
)

// Role names.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Role is a role a grant gives: its uuid never changes.
type Role struct {
	Name        string `json:"name"`
	UUID        string `json:"uuid"`
	Description string `json:"description"`
}

// roleNS makes the roles' uuids: name-based, so they never change.
var roleNS = uuid.MustParse("6f0d7c2e-6c1a-4c59-9a53-3b6f0c1d2e4f")

// Roles are the roles, most powerful first.
var Roles = []Role{
	{RoleOwner, uuid.NewSHA1(roleNS, []byte(RoleOwner)).String(), "Owns the scope: manages it, its grants and (on an application) its groups."},
	{RoleAdmin, uuid.NewSHA1(roleNS, []byte(RoleAdmin)).String(), "Administers the scope: manages its grants and (on an application) its groups."},
	{RoleMember, uuid.NewSHA1(roleNS, []byte(RoleMember)).String(), "Member of the scope: reads it and its members."},
}

// RoleByName returns the role named name.
func RoleByName(name string) (Role, bool) {
	for _, r := range Roles {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// manages reports whether role may manage a scope's grants (and, on an
// application, its groups).
func manages(role string) bool { return role == RoleOwner || role == RoleAdmin }
