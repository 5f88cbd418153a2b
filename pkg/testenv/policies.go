package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/example/accounts/pkg/localstack"
)

// grantedDynamoActions reads template.yaml and returns, per endpoint name
// (the function's logical id without "Function"), the DynamoDB actions its
// policy grants: "dynamodb:X" on the table, "dynamodb:X (index)" on its
// indexes.
func GrantedDynamoActions() (map[string]map[string]bool, error) {
	root, err := localstack.Root()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	get := func(n *yaml.Node, key string) *yaml.Node {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	list := func(n *yaml.Node) []*yaml.Node {
		if n == nil {
			return nil
		}
		if n.Kind == yaml.SequenceNode {
			return n.Content
		}
		return []*yaml.Node{n}
	}
	out := map[string]map[string]bool{}
	res := get(doc.Content[0], "Resources")
	for i := 0; i+1 < len(res.Content); i += 2 {
		id, r := res.Content[i].Value, res.Content[i+1]
		if get(r, "Type") == nil || get(r, "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		granted := map[string]bool{}
		for _, pol := range list(get(get(r, "Properties"), "Policies")) {
			for _, st := range list(get(pol, "Statement")) {
				suffix := ""
				for _, rn := range list(get(st, "Resource")) {
					if strings.Contains(rn.Value, "/index/") {
						suffix = IndexSuffix
					}
				}
				for _, a := range list(get(st, "Action")) {
					if strings.HasPrefix(a.Value, "dynamodb:") {
						granted[a.Value+suffix] = true
					}
				}
			}
		}
		out[strings.TrimSuffix(id, "Function")] = granted
	}
	return out, nil
}

// CheckIAMPolicies compares, after a whole suite has run, the DynamoDB
// actions each endpoint used with what its function's policy grants: a used
// action that is not granted would fail in AWS; a granted action that no
// test used is more privilege than the function needs (or an untested path).
// covers names the functions (logical ids) the suite exercises: each
// package's suite answers for its own functions.
func CheckIAMPolicies(e *Env, covers func(functionID string) bool) []string {
	granted, err := GrantedDynamoActions()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, route := range e.Actions.Routes() {
		g, ok := granted[route]
		if ok && !covers(route+"Function") {
			continue
		}
		if !ok {
			if route != "(outside a request)" {
				problems = append(problems, fmt.Sprintf("%s made DynamoDB requests but has no function in template.yaml", route))
			}
			continue
		}
		for _, act := range e.Actions.Used(route) {
			if !g[act] {
				problems = append(problems, fmt.Sprintf("%sFunction uses %s, which its policy does not grant", route, act))
			}
		}
	}
	for route, g := range granted {
		if !covers(route + "Function") {
			continue
		}
		used := map[string]bool{}
		for _, act := range e.Actions.Used(route) {
			used[act] = true
		}
		for act := range g {
			if !used[act] {
				problems = append(problems, fmt.Sprintf("%sFunction is granted %s, which no test made it use", route, act))
			}
		}
	}
	sort.Strings(problems)
	return problems
}
