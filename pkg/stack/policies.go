package stack

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Statement is one Allow or Deny statement of an IAM policy.
type Statement struct {
	Effect    string
	Actions   []string
	Resources []any
}

// OnIndex reports whether a resource of s is a table index (…/index/…).
func (s Statement) OnIndex() bool {
	for _, r := range s.Resources {
		if b, _ := json.Marshal(r); strings.Contains(string(b), "/index/") {
			return true
		}
	}
	return false
}

// FunctionStatements returns the statements of function id's own policies:
// in a SAM template the inline Policies of its AWS::Serverless::Function, in
// a translated one those of the AWS::IAM::Role its AWS::Lambda::Function
// runs as (with what SAM adds, such as a stream's destination). A statement
// under !If counts as granted (either branch may deploy).
func (t *Template) FunctionStatements(id string) ([]Statement, error) {
	fn, ok := t.Resources[id]
	if !ok {
		return nil, fmt.Errorf("stack: no resource %s", id)
	}
	var docs []any
	switch fn.Type {
	case "AWS::Serverless::Function":
		for _, p := range list(fn.Properties["Policies"]) {
			if m, ok := p.(map[string]any); ok {
				if _, ok := m["Statement"]; ok {
					docs = append(docs, m)
					continue
				}
			}
			return nil, fmt.Errorf("stack: %s has a policy that is not an inline document (%v): the checks cannot read it", id, p)
		}
	case "AWS::Lambda::Function":
		role, ok := fn.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)
		if !ok || len(role) != 2 {
			return nil, fmt.Errorf("stack: %s's Role is not a role of the template", id)
		}
		r, ok := t.Resources[fmt.Sprint(role[0])]
		if !ok {
			return nil, fmt.Errorf("stack: %s's role %v is not in the template", id, role[0])
		}
		for _, p := range list(r.Properties["Policies"]) {
			docs = append(docs, p.(map[string]any)["PolicyDocument"])
		}
	default:
		return nil, fmt.Errorf("stack: %s is a %s, not a function", id, fn.Type)
	}
	var out []Statement
	for _, d := range docs {
		for _, st := range list(d.(map[string]any)["Statement"]) {
			st = unIf(st)
			m, ok := st.(map[string]any)
			if !ok {
				continue // !Ref AWS::NoValue
			}
			s := Statement{Effect: fmt.Sprint(m["Effect"]), Resources: list(m["Resource"])}
			for _, a := range list(m["Action"]) {
				s.Actions = append(s.Actions, fmt.Sprint(a))
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// ManagedPolicies returns the managed policy ARNs of a translated
// function's role.
func (t *Template) ManagedPolicies(id string) []any {
	role, ok := t.Resources[id].Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)
	if !ok || len(role) != 2 {
		return nil
	}
	return list(t.Resources[fmt.Sprint(role[0])].Properties["ManagedPolicyArns"])
}

// unIf is the true branch of an Fn::If, or v.
func unIf(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if args, ok := m["Fn::If"].([]any); ok && len(args) == 3 {
			return unIf(args[1])
		}
	}
	return v
}

// list is v as a list: itself, one element, or none.
func list(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		return l
	default:
		return []any{v}
	}
}
