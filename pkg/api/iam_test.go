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
	var out []string
	for _, p := range testenv.CheckIAMPolicies(e, func(id string) bool { _, ok := ours[id]; return ok || triggers[id] }) {
		if elsewhere[p] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// elsewhere are grants this suite cannot exercise because they serve an
// option it runs without, each tested by the suite that turns it on.
var elsewhere = map[string]bool{
	// Lazy migration (MigrationUrl, off here) creates the user at login:
	// pkg/legacyauth's suite runs with it on and checks the Login route's
	// actions are granted.
	"LoginFunction is granted dynamodb:PutItem, which no test made it use": true,
}
