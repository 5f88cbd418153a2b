// Package stack reads template.yaml as CloudFormation sees it: the template
// itself with its short-form intrinsics in long form (Load), and the plain
// CloudFormation the SAM translator turns it into (Translate, through
// tools/cfn/sam-translate.py). Its tests check both against the code.
package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/example/accounts/pkg/localstack"
)

// Template is a CloudFormation template as JSON would decode it.
type Template struct {
	Parameters map[string]map[string]any `json:"Parameters"`
	Conditions map[string]any            `json:"Conditions"`
	Globals    map[string]any            `json:"Globals"`
	Resources  map[string]Resource       `json:"Resources"`
	Outputs    map[string]any            `json:"Outputs"`
}

// Resource is one entry of Resources.
type Resource struct {
	Type       string         `json:"Type"`
	Condition  string         `json:"Condition,omitempty"`
	DependsOn  any            `json:"DependsOn,omitempty"`
	Properties map[string]any `json:"Properties"`
	Metadata   map[string]any `json:"Metadata,omitempty"`
}

// OfType returns the logical ids of the resources of type typ, sorted.
func (t *Template) OfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Path is the template file of the module.
func Path() (string, error) {
	root, err := localstack.Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "template.yaml"), nil
}

// Load reads the template at path, turning !Ref, !Sub, !GetAtt and the
// other short forms into their long form ({"Ref": …}, {"Fn::Sub": …}).
func Load(path string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, err := longForm(&doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var t Template
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// longForm converts a YAML node to JSON values, short-form intrinsics to
// long form.
func longForm(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return longForm(n.Content[0])
	case yaml.AliasNode:
		return longForm(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := longForm(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			val, err := longForm(c)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(n.Tag, "!!") && n.Tag != "" && n.Tag != "!" {
			v = n.Value // a tagged scalar is a string argument
		}
	}
	tag := n.Tag
	if !strings.HasPrefix(tag, "!") || strings.HasPrefix(tag, "!!") {
		return v, nil
	}
	name := strings.TrimPrefix(tag, "!")
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, _ := strings.Cut(s, ".")
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

// ErrNoTranslator is returned by Translate when python3, samtranslator or
// cfn-lint is not installed.
var ErrNoTranslator = errors.New("stack: no SAM translator (python3 with samtranslator and cfn-lint) is installed")

var translated struct {
	once sync.Once
	t    *Template
	err  error
}

// Translate returns template.yaml transformed by the SAM translator into
// plain CloudFormation, as CloudFormation's AWS::Serverless transform does
// on deploy: the functions, their roles, permissions and event source
// mappings, the HTTP API's OpenAPI body. It runs once per process.
func Translate(ctx context.Context) (*Template, error) {
	translated.once.Do(func() {
		translated.t, translated.err = translate(ctx)
	})
	return translated.t, translated.err
}

func translate(ctx context.Context) (*Template, error) {
	root, err := localstack.Root()
	if err != nil {
		return nil, err
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, ErrNoTranslator
	}
	cmd := exec.CommandContext(ctx, python, filepath.Join(root, "tools", "cfn", "sam-translate.py"), filepath.Join(root, "template.yaml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			return nil, fmt.Errorf("%w (%s)", ErrNoTranslator, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("stack: the SAM translator refused template.yaml: %v\n%s", err, stderr.String())
	}
	var t Template
	if err := json.Unmarshal(stdout.Bytes(), &t); err != nil {
		return nil, fmt.Errorf("stack: the SAM translator's output: %w", err)
	}
	return &t, nil
}
