package api_test

import (
	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/testenv"
)

// checkIAMPolicies checks the policies of the functions pkg/api serves
// against what this suite made them do (testenv.CheckIAMPolicies); the
// pages' function is checked by pkg/pages' suite.
func checkIAMPolicies(e *testenv.Env) []string {
	ours := (&api.API{}).Handlers()
	// The trigger functions run in this suite too (stream_test.go).
	triggers := map[string]bool{"StreamFunction": true, "MailFeedbackFunction": true}
	return testenv.CheckIAMPolicies(e, func(id string) bool { _, ok := ours[id]; return ok || triggers[id] })
}
