package streams

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"gopkg.in/yaml.v3"

	"github.com/example/accounts/pkg/localstack"
)

// filterPatterns reads StreamFunction's FilterCriteria from template.yaml.
func filterPatterns(t *testing.T) []map[string]any {
	t.Helper()
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Properties struct {
				Events map[string]struct {
					Type       string `yaml:"Type"`
					Properties struct {
						FilterCriteria struct {
							Filters []struct {
								Pattern string `yaml:"Pattern"`
							} `yaml:"Filters"`
						} `yaml:"FilterCriteria"`
					} `yaml:"Properties"`
				} `yaml:"Events"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range doc.Resources["StreamFunction"].Properties.Events {
		if ev.Type != "DynamoDB" {
			continue
		}
		for _, f := range ev.Properties.FilterCriteria.Filters {
			var p map[string]any
			if err := json.Unmarshal([]byte(f.Pattern), &p); err != nil {
				t.Fatalf("pattern %q: %v", f.Pattern, err)
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("StreamFunction has no FilterCriteria")
	}
	return out
}

// matches is Lambda's event filtering for the part of its syntax the
// template uses: nested fields, and a list of exact strings or
// {"prefix": …} matchers, any of which matches.
func matches(pattern map[string]any, doc map[string]any) bool {
	for k, want := range pattern {
		got, ok := doc[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case map[string]any:
			sub, ok := got.(map[string]any)
			if !ok || !matches(w, sub) {
				return false
			}
		case []any:
			s, _ := got.(string)
			hit := false
			for _, m := range w {
				switch m := m.(type) {
				case string:
					hit = hit || s == m
				case map[string]any:
					if p, ok := m["prefix"].(string); ok {
						hit = hit || strings.HasPrefix(s, p)
					}
				}
			}
			if !hit {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// TestFilterCriteriaAreAccepts: the event source mapping's filter and
// Accepts (the local poller's) let the same records through.
func TestFilterCriteriaAreAccepts(t *testing.T) {
	patterns := filterPatterns(t)
	keys := [][2]string{
		{"USER#7f3c1b2a", "USER"}, {"USER#7f3c1b2a", "MAIL#20261201T000000Z#x"}, {"USER#00000000-0000-0000-0000-000000000000", "MAIL#x"},
		{"EMAIL#ada@example.com", "CLAIM"}, {"USERNAME#ada", "CLAIM"}, {"SLUG#ada", "CLAIM"}, {"RATE#login#1.2.3.4#0", "RATE"},
		{"USERLIST#all", "COUNT"}, {"EVENTS#abc", "PUBLISHED"}, {"USER#x", "OTHER"},
		{"SCOPE#a1", "#SCOPE"}, {"SCOPE#a1", "M#u1"}, {"SCOPE#a1", "N#u1#g1"}, {"SCOPE#a1", "~G#g1"}, {"SCOPES#group", "g1"}, {"GRANTS#u1", "GRANTS"}, {"USER#7f3c1b2a", "APIKEY#07"},
	}
	checked := 0
	for _, k := range keys {
		for _, name := range []string{"INSERT", "MODIFY", "REMOVE"} {
			rec := events.DynamoDBEventRecord{EventName: name, Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{
				"pk": events.NewStringAttribute(k[0]), "sk": events.NewStringAttribute(k[1])}}}
			raw, _ := json.Marshal(rec)
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			filtered := false
			for _, p := range patterns {
				filtered = filtered || matches(p, doc)
			}
			if filtered != Accepts(rec) {
				t.Errorf("%s %v: the template's filter says %v, Accepts %v", name, k, filtered, Accepts(rec))
			}
			checked++
		}
	}
	if !Accepts(events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{Keys: map[string]events.DynamoDBAttributeValue{
		"pk": events.NewStringAttribute("USER#u"), "sk": events.NewStringAttribute("USER")}}}) {
		t.Error("a user's record is not accepted")
	}
	t.Logf("%d records checked against %d patterns", checked, len(patterns))
}
