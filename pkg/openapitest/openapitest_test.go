package openapitest

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	openapi "github.com/example/accounts/api"
	"github.com/example/accounts/pkg/localstack"
)

func TestDescriptionIsValidOpenAPI31(t *testing.T) {
	doc, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("api/openapi.yaml says openapi %s, want 3.1", doc.OpenAPI)
	}
}

// TestDescriptionNamesTheTemplateRoutes: the description and template.yaml
// name the same routes (method and path; a trailing slash is no difference,
// as on an HTTP API, nor a parameter's name: the template's greedy
// /account/{proxy+} is the description's /account/{page}).
func TestDescriptionNamesTheTemplateRoutes(t *testing.T) {
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	described := RouteKeys(doc)
	for i, d := range described {
		described[i] = canonical(d)
	}
	var routed []string
	for _, r := range tpl.Routes {
		routed = append(routed, canonical(r.Method+" "+strings.TrimRight(r.Path, "/")))
	}
	slices.Sort(routed)
	routed = slices.Compact(routed)
	if len(routed) == 0 {
		t.Fatal("template.yaml has no routes; the parsing is broken")
	}
	for _, r := range routed {
		if !slices.Contains(described, r) {
			t.Errorf("template.yaml routes %s; api/openapi.yaml does not describe it", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(routed, d) {
			t.Errorf("api/openapi.yaml describes %s; template.yaml has no such route", d)
		}
	}
}

var param = regexp.MustCompile(`\{[^}]*\}`)

// canonical names every path parameter {}.
func canonical(route string) string { return param.ReplaceAllString(route, "{}") }

// TestJSONFormIsTheSameDescription: ?format=json answers the same
// description, anchors and merges resolved.
func TestJSONFormIsTheSameDescription(t *testing.T) {
	j, err := openapi.JSON()
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := openapi3.NewLoader().LoadFromData(j)
	if err != nil {
		t.Fatal(err)
	}
	if err := fromJSON.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	doc, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, b := RouteKeys(doc), RouteKeys(fromJSON)
	if !slices.Equal(a, b) || len(fromJSON.Components.Schemas["UserRequestMultipart"].Value.Properties) != len(doc.Components.Schemas["UserRequest"].Value.Properties) {
		t.Errorf("the JSON form differs: routes %v and %v", a, b)
	}
}
