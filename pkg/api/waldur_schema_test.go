package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/example/accounts/pkg/testenv"
)

// waldurUser is the User schema of Waldur's own OpenAPI description
// (testdata/waldur-users-openapi.json, a copy of the shared reference):
// what its generated clients read.
var waldurUser = sync.OnceValues(func() (*openapi3.Schema, error) {
	openapi3.DefineStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail))
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
	openapi3.DefineStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
		u, err := url.ParseRequestURI(s)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return errors.New("not an absolute URI")
		}
		return nil
	}))
	// The cut description refers to parameters it leaves out: load its
	// schemas alone.
	raw, err := os.ReadFile("testdata/waldur-users-openapi.json")
	if err != nil {
		return nil, err
	}
	var full struct {
		Components struct {
			Schemas json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		return nil, err
	}
	only, _ := json.Marshal(map[string]any{
		"openapi": "3.0.3", "info": map[string]any{"title": "Waldur users", "version": "8.0.5"}, "paths": map[string]any{},
		"components": map[string]any{"schemas": full.Components.Schemas},
	})
	doc, err := openapi3.NewLoader().LoadFromData(only)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	ref := doc.Components.Schemas["User"]
	if ref == nil || ref.Value == nil {
		return nil, errors.New("no User schema")
	}
	return ref.Value, nil
})

// checkWaldurUser fails t unless v (a decoded JSON value) is a valid
// Waldur User, as a response.
func checkWaldurUser(t *testing.T, what string, v any) {
	t.Helper()
	s, err := waldurUser()
	if err != nil {
		t.Fatalf("loading the Waldur schema: %v", err)
	}
	if err := s.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsResponse(), openapi3.EnableFormatValidation()); err != nil {
		b, _ := json.Marshal(v)
		t.Errorf("%s: not a Waldur User: %v\n%s", what, err, b)
	}
}

func decodeAny(t *testing.T, r *testenv.Resp) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("not JSON: %s", r.Body)
	}
	return v
}

// waldurProfile sets every field of Waldur's UserRequest a user may set on
// themselves.
var waldurProfile = map[string]any{
	"first_name": "Grace", "last_name": "Hopper", "native_name": "Grace Brewster Murray Hopper",
	"job_title": "Rear admiral", "phone_number": "+15550100", "organization": "US Navy",
	"description": "Compilers.", "notifications_enabled": true, "preferred_language": "en",
	"birth_date": "1906-12-09", "token_lifetime": 3600, "agree_with_policy": true,
	"gender": 2, "personal_title": "Dr", "place_of_birth": "New York",
	"country_of_residence": "us", "nationality": "US", "nationalities": []string{"US", "nl"},
	"organization_country": "US", "organization_type": "urn:schac:homeOrganizationType:int:other",
	"organization_registry_code": "N00014", "eduperson_assurance": []string{"https://refeds.org/assurance/IAP/low"},
}

func TestUserObjectsMatchWaldurSchema(t *testing.T) {
	staff := env.NewStaff(t, "schema-staff", false)
	u := env.NewUser(t, "schema-user")
	path := "/api/users/" + u.UUID + "/"

	check := func(what string, r *testenv.Resp, status int, pick func(any) []any) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: %d %s", what, r.Status, r.Body)
		}
		for _, v := range pick(decodeAny(t, r)) {
			checkWaldurUser(t, what, v)
		}
	}
	self := func(v any) []any { return []any{v} }
	inList := func(v any) []any { a, _ := v.([]any); return a }
	under := func(k string) func(any) []any {
		return func(v any) []any { m, _ := v.(map[string]any); return []any{m[k]} }
	}

	// A bare new account, then one with every field set.
	email := testenv.Email("schema-new")
	check("POST /api/users", env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword}), 201, self)
	code := env.CodeFromMail(t, email, "Activate")
	check("POST /api/auth/activate", env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}), 200, self)
	check("POST /api/auth/login", env.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": testenv.DefaultPassword}), 200, under("user"))
	check("PATCH every field", env.Do(t, "PATCH", path, waldurProfile, auth(u)...), 200, self)
	check("GET /api/users/me", env.Do(t, "GET", "/api/users/me/", nil, auth(u)...), 200, self)
	check("GET /api/users/{uuid}", env.Do(t, "GET", path, nil, auth(staff)...), 200, self)
	check("GET /api/users", env.Do(t, "GET", "/api/users/?page_size=300", nil, auth(staff)...), 200, inList)
	put := map[string]any{}
	for k, v := range waldurProfile {
		put[k] = v
	}
	put["username"] = strings.ToLower(u.Email)
	put["gender"] = nil
	check("PUT", env.Do(t, "PUT", path, put, auth(u)...), 200, self)
	check("staff PATCH of staff-only fields", env.Do(t, "PATCH", path, map[string]any{
		"slug": "grace_hopper-" + u.UUID[:8], "is_identity_manager": true, "managed_isds": []string{"isd:puhuri"},
	}, auth(staff)...), 200, self)
	check("POST change_email", env.Do(t, "POST", path+"change_email/", map[string]any{"email": testenv.Email("schema-ce")}, auth(u)...), 200, self)
	check("POST cancel_change_email", env.Do(t, "POST", path+"cancel_change_email/", nil, auth(u)...), 200, self)
	newEmail := testenv.Email("schema-ce2")
	env.Do(t, "POST", path+"change_email/", map[string]any{"email": newEmail}, auth(u)...)
	code = env.CodeFromMail(t, newEmail, "Confirm your new email")
	check("POST confirm_email", env.Do(t, "POST", "/api/users/confirm_email/", map[string]any{"code": code}, auth(u)...), 200, self)
	check("staff create", env.Do(t, "POST", "/api/users", map[string]any{
		"email": testenv.Email("schema-admin"), "username": "schema-admin-" + u.UUID[:8], "first_name": "Ada",
	}, auth(staff)...), 201, self)
	tok := env.Login(t, newEmail, testenv.DefaultPassword)
	check("DELETE /api/users", env.Do(t, "DELETE", "/api/users/", nil, "Authorization", "Token "+tok), 200, self)
}

func TestWaldurSchemaCheckRefuses(t *testing.T) {
	s, err := waldurUser()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc string
		v    map[string]any
	}{
		{desc: "an email that is no address", v: map[string]any{"email": "nope"}},
		{desc: "a relative url", v: map[string]any{"url": "/api/users/x/"}},
		{desc: "a uuid that is none", v: map[string]any{"uuid": "123"}},
		{desc: "a gender outside ISO 5218", v: map[string]any{"gender": 3.0}},
		{desc: "a first_name over 100 characters", v: map[string]any{"first_name": strings.Repeat("a", 101)}},
		{desc: "a slug with a dot", v: map[string]any{"slug": "a.b"}},
		{desc: "a null username", v: map[string]any{"username": nil}},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			if err := s.VisitJSON(tc.v, openapi3.VisitAsResponse(), openapi3.EnableFormatValidation()); err == nil {
				t.Fatalf("%v passed", tc.v)
			}
		})
	}
}

func TestWaldurProfileFields(t *testing.T) {
	u := env.NewUser(t, "wprofile")
	staff := env.NewStaff(t, "wprofile-staff", false)
	path := "/api/users/" + u.UUID + "/"
	r := env.Do(t, "PATCH", path, waldurProfile, auth(u)...)
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	got := r.JSON()
	for k, want := range map[string]any{
		"gender": 2.0, "personal_title": "Dr", "place_of_birth": "New York", "country_of_residence": "US",
		"nationality": "US", "organization_country": "US", "organization_type": "urn:schac:homeOrganizationType:int:other",
		"organization_registry_code": "N00014", "is_identity_manager": false,
	} {
		if got[k] != want {
			t.Errorf("%s = %#v, want %#v", k, got[k], want)
		}
	}
	if b, _ := json.Marshal(got["nationalities"]); string(b) != `["US","NL"]` {
		t.Errorf("nationalities = %s", b)
	}
	if b, _ := json.Marshal(got["eduperson_assurance"]); string(b) != `["https://refeds.org/assurance/IAP/low"]` {
		t.Errorf("eduperson_assurance = %s", b)
	}
	item := userItem(t, u.UUID)
	if attr(item, "gender") != "2" || attr(item, "nationality") != "US" || attr(item, "place_of_birth") != "New York" {
		t.Errorf("not stored: %v", item)
	}
	// A GET-modify-PUT of the whole object, staff-only fields echoed unchanged, works.
	me := env.Do(t, "GET", path, nil, auth(u)...).JSON()
	delete(me, "name") // UbiOps' alias of first_name on input
	me["job_title"] = "Admiral"
	if r := env.Do(t, "PUT", path, me, auth(u)...); r.Status != http.StatusOK || r.Str("job_title") != "Admiral" {
		t.Fatalf("GET-modify-PUT: %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "PATCH", path, map[string]any{"gender": nil}, auth(u)...); r.Status != http.StatusOK || r.JSON()["gender"] != nil {
		t.Fatalf("gender null: %d %s", r.Status, r.Body)
	}
	for _, tc := range []struct {
		desc   string
		body   map[string]any
		status int
		field  string
	}{
		{desc: "gender outside ISO 5218", body: map[string]any{"gender": 3}, status: 400, field: "gender"},
		{desc: "gender as a string", body: map[string]any{"gender": "1"}, status: 400, field: "gender"},
		{desc: "nationality of three letters", body: map[string]any{"nationality": "USA"}, status: 400, field: "nationality"},
		{desc: "nationalities not an array", body: map[string]any{"nationalities": "US"}, status: 400, field: "nationalities"},
		{desc: "nationalities with a bad code", body: map[string]any{"nationalities": []string{"US", "1"}}, status: 400, field: "nationalities"},
		{desc: "personal_title over 50", body: map[string]any{"personal_title": strings.Repeat("t", 51)}, status: 400, field: "personal_title"},
		{desc: "place_of_birth over 255", body: map[string]any{"place_of_birth": strings.Repeat("p", 256)}, status: 400, field: "place_of_birth"},
		{desc: "eduperson_assurance with a space", body: map[string]any{"eduperson_assurance": []string{"a b"}}, status: 400, field: "eduperson_assurance"},
		{desc: "first_name over Waldur's 100", body: map[string]any{"first_name": strings.Repeat("f", 101)}, status: 400, field: "first_name"},
		{desc: "a field no schema names", body: map[string]any{"favourite_colour": "blue"}, status: 400, field: "favourite_colour"},
		{desc: "is_identity_manager by the user", body: map[string]any{"is_identity_manager": true}, status: 403},
		{desc: "managed_isds by the user", body: map[string]any{"managed_isds": []string{"isd:x"}}, status: 403},
		{desc: "slug by the user", body: map[string]any{"slug": "mine"}, status: 403},
	} {
		t.Run("case="+tc.desc+" is refused", func(t *testing.T) {
			r := env.Do(t, "PATCH", path, tc.body, auth(u)...)
			if r.Status != tc.status {
				t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.status)
			}
			if f, _ := r.JSON()["fields"].(map[string]any); tc.field != "" && f[tc.field] == nil {
				t.Errorf("fields should name %s: %s", tc.field, r.Body)
			}
		})
	}
	t.Run("case=staff set the staff-only fields", func(t *testing.T) {
		r := env.Do(t, "PATCH", path, map[string]any{"is_identity_manager": true, "managed_isds": []string{"isd:puhuri", "isd:fenix"}}, auth(staff)...)
		if r.Status != http.StatusOK || r.JSON()["is_identity_manager"] != true {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if b, _ := json.Marshal(r.JSON()["managed_isds"]); string(b) != `["isd:puhuri","isd:fenix"]` {
			t.Errorf("managed_isds = %s", b)
		}
	})
	t.Run("case=sign-up may not set staff-only fields", func(t *testing.T) {
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("wp-su"), "password": testenv.DefaultPassword, "is_identity_manager": true})
		if r.Status != http.StatusForbidden {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestSlugs(t *testing.T) {
	staff := env.NewStaff(t, "slug-staff", false)
	t.Run("case=a sign-up keeps the slug its username gives, and claims it", func(t *testing.T) {
		email := testenv.Email("slug.a")
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword})
		want := strings.NewReplacer("@", "-", ".", "-").Replace(strings.ToLower(email))
		if r.Status != http.StatusCreated || r.Str("slug") != want {
			t.Fatalf("got %d %s, want slug %q", r.Status, r.Body, want)
		}
		if attr(userItem(t, r.Str("uuid")), "slug") != want || claimHolder(t, "SLUG#"+want) != r.Str("uuid") {
			t.Fatalf("slug not kept or not claimed")
		}
		// Activation keeps the claim (it no longer expires with the account).
		env.Activate(t, email)
		if out := claimItem(t, "SLUG#"+want); attr(out, "ttl") != "" {
			t.Errorf("the slug claim still expires after activation: %v", out)
		}
	})
	t.Run("case=a username giving a slug someone holds gets a suffixed one", func(t *testing.T) {
		base := "slugdup" + strings.ReplaceAll(testenv.Email("x")[2:10], "-", "")
		first := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("s1"), "username": base + ".x", "password": testenv.DefaultPassword})
		second := env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("s2"), "username": base + "-x", "password": testenv.DefaultPassword})
		if first.Status != 201 || second.Status != 201 {
			t.Fatalf("sign-ups: %d %s / %d %s", first.Status, first.Body, second.Status, second.Body)
		}
		if first.Str("slug") != base+"-x" || !strings.HasPrefix(second.Str("slug"), base+"-x-") || len(second.Str("slug")) != len(base)+2+9 {
			t.Fatalf("slugs %q and %q", first.Str("slug"), second.Str("slug"))
		}
		checkWaldurUser(t, "suffixed slug", decodeAny(t, second))
	})
	t.Run("case=staff move a slug; a taken one is refused; delete releases it", func(t *testing.T) {
		u := env.NewUser(t, "slug-move")
		other := env.NewUser(t, "slug-other")
		old := env.Do(t, "GET", "/api/users/"+u.UUID, nil, auth(u)...).Str("slug")
		chosen := "Chosen_" + u.UUID[:8]
		r := env.Do(t, "PATCH", "/api/users/"+u.UUID+"/", map[string]any{"slug": chosen}, auth(staff)...)
		if r.Status != http.StatusOK || r.Str("slug") != chosen {
			t.Fatalf("move: %d %s", r.Status, r.Body)
		}
		if claimHolder(t, "SLUG#"+old) != "" || claimHolder(t, "SLUG#"+strings.ToLower(chosen)) != u.UUID {
			t.Fatalf("the claim did not move")
		}
		// The user may echo their slug back unchanged.
		if r := env.Do(t, "PATCH", "/api/users/"+u.UUID+"/", map[string]any{"slug": chosen, "first_name": "S"}, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("echo: %d %s", r.Status, r.Body)
		}
		for _, taken := range []string{chosen, strings.ToUpper(chosen)} {
			r = env.Do(t, "PATCH", "/api/users/"+other.UUID+"/", map[string]any{"slug": taken}, auth(staff)...)
			if f, _ := r.JSON()["fields"].(map[string]any); r.Status != http.StatusBadRequest || f["slug"] == nil {
				t.Fatalf("taken slug %q: %d %s", taken, r.Status, r.Body)
			}
		}
		r = env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("slug-admin"), "username": "slug-admin-" + u.UUID[:8], "slug": chosen}, auth(staff)...)
		if f, _ := r.JSON()["fields"].(map[string]any); r.Status != http.StatusBadRequest || f["slug"] == nil {
			t.Fatalf("staff create with a taken slug: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "PATCH", "/api/users/"+other.UUID+"/", map[string]any{"slug": "a.b"}, auth(staff)...); r.Status != http.StatusBadRequest {
			t.Fatalf("bad slug: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "DELETE", "/api/users/"+u.UUID+"/", nil, auth(u)...); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if claimHolder(t, "SLUG#"+strings.ToLower(chosen)) != "" {
			t.Fatalf("delete left the slug claimed")
		}
	})
	t.Run("case=a sign-up replacing an unverified account takes its slug over", func(t *testing.T) {
		email := testenv.Email("slug-replace")
		first := env.SignUp(t, email)
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword + "2"})
		if r.Status != http.StatusCreated || r.Str("uuid") == first {
			t.Fatalf("replacing sign-up: %d %s", r.Status, r.Body)
		}
		// The replaced account's slug was the same (both from the email): no suffix.
		slug := r.Str("slug")
		if slug != strings.NewReplacer("@", "-", ".", "-").Replace(strings.ToLower(email)) || claimHolder(t, "SLUG#"+slug) != r.Str("uuid") {
			t.Fatalf("slug %q held by %q", slug, claimHolder(t, "SLUG#"+slug))
		}
	})
	auditClaims(t)
}

// claimItem reads a claim item.
func claimItem(t *testing.T, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "CLAIM"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}
