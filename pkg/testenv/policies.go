package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/example/accounts/pkg/stack"
)

var noTranslatorNote sync.Once

// deployedTemplate is template.yaml as CloudFormation deploys it: through
// the SAM translator when it is installed (the roles SAM generates, with
// what it adds), else the template's own Policies (TestTranslated* in
// pkg/stack checks that the two grant the same).
func deployedTemplate() (*stack.Template, error) {
	t, err := stack.Translate(context.Background())
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, stack.ErrNoTranslator) {
		return nil, err
	}
	noTranslatorNote.Do(func() {
		fmt.Fprintln(os.Stderr, "testenv: no SAM translator; the IAM checks read template.yaml's own policies:", err)
	})
	path, err := stack.Path()
	if err != nil {
		return nil, err
	}
	return stack.Load(path)
}

// CheckedServices are the services whose actions CheckIAMPolicies compares.
// Secrets Manager is not one: the tests use TOKEN_KEY, where a deployed
// function reads the secret (pkg/stack's tests check its grant instead).
var CheckedServices = []string{"dynamodb:", "ses:", "s3:"}

func checked(action string) bool {
	for _, p := range CheckedServices {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}

// GrantedActions returns, per endpoint name (the function's logical id
// without "Function"), the actions of CheckedServices its role grants:
// "dynamodb:X" on the table, "dynamodb:X (index)" on its indexes,
// "ses:SendEmail", "s3:GetObject"...
func GrantedActions() (map[string]map[string]bool, error) {
	t, err := deployedTemplate()
	if err != nil {
		return nil, err
	}
	ids := t.OfType("AWS::Serverless::Function")
	if len(ids) == 0 {
		ids = t.OfType("AWS::Lambda::Function")
	}
	out := map[string]map[string]bool{}
	for _, id := range ids {
		sts, err := t.FunctionStatements(id)
		if err != nil {
			return nil, err
		}
		granted := map[string]bool{}
		for _, st := range sts {
			if st.Effect != "Allow" {
				continue
			}
			suffix := ""
			if st.OnIndex() {
				suffix = IndexSuffix
			}
			for _, a := range st.Actions {
				if strings.HasPrefix(a, "dynamodb:") {
					granted[a+suffix] = true
				} else if checked(a) {
					granted[a] = true
				}
			}
		}
		out[strings.TrimSuffix(id, "Function")] = granted
	}
	return out, nil
}

// CheckIAMPolicies compares, after a whole suite has run, the actions of
// CheckedServices each endpoint used with what its function's role grants
// (as deployed, through the SAM translator when installed): a used
// action that is not granted would fail in AWS; a granted action that no
// test used is more privilege than the function needs (or an untested path).
// covers names the functions (logical ids) the suite exercises: each
// package's suite answers for its own functions.
func CheckIAMPolicies(e *Env, covers func(functionID string) bool) []string {
	granted, err := GrantedActions()
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
				problems = append(problems, fmt.Sprintf("%s made AWS requests but has no function in template.yaml", route))
			}
			continue
		}
		for _, act := range e.Actions.Used(route) {
			if !g[act] && checked(act) {
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
