package openapitest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/users"
)

// TestUserFollowsWaldursUser: every field of Waldur's User
// (shared/reference/waldur-users-openapi.json, copied to pkg/api/testdata) is
// in the description's User, with the type Waldur gives it.
func TestUserFollowsWaldursUser(t *testing.T) {
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	// The copy committed beside pkg/api's tests, so this never depends on
	// what lies beside the repository.
	b, err := os.ReadFile(filepath.Join(root, "pkg", "api", "testdata", "waldur-users-openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type string `json:"type"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	waldur := ref.Components.Schemas["User"].Properties
	if len(waldur) == 0 {
		t.Fatal("the reference has no User properties; the parsing is broken")
	}
	doc, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ours := doc.Components.Schemas["User"].Value.Properties
	for name, p := range waldur {
		s, ok := ours[name]
		if !ok {
			t.Errorf("User has no %s, which Waldur's User has", name)
			continue
		}
		if p.Type != "" && (s.Value.Type == nil || !slices.Contains(s.Value.Type.Slice(), p.Type)) {
			t.Errorf("User.%s is %v; Waldur's is %s", name, s.Value.Type, p.Type)
		}
	}
	for _, extra := range []string{"status", "custom_data", "modified", "name", "token"} {
		if _, ok := ours[extra]; !ok {
			t.Errorf("User has no %s, which the contract adds", extra)
		}
	}
}

// TestUserRequestNamesTheInputFields: the request schemas name exactly what
// the service takes (users.ProfileInput) and the read-only fields it ignores.
func TestUserRequestNamesTheInputFields(t *testing.T) {
	doc, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	rt := reflect.TypeOf(users.ProfileInput{})
	for i := range rt.NumField() {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			want[name] = true
		}
	}
	for name := range users.ReadOnlyFields {
		want[name] = true
	}
	for _, schema := range []string{"UserRequest", "PatchedUserRequest", "UserRequestForm", "UserRequestMultipart"} {
		got := doc.Components.Schemas[schema].Value.Properties
		for name := range want {
			if _, ok := got[name]; !ok {
				t.Errorf("%s does not name %s, which the service takes", schema, name)
			}
		}
		for name := range got {
			if !want[name] {
				t.Errorf("%s names %s, which the service refuses", schema, name)
			}
		}
	}
}
