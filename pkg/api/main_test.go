package api_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

// env is the service under test, on DynamoDB Local and the local SES.
var env *testenv.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	idp = newFakeIdP() // the remote identity source, in remote_test.go
	// The shared stack keeps no word lists: a listed user is ~40 of them,
	// written by the stream, and the suite's thousands of accounts would keep
	// DynamoDB Local busy for minutes. Searches answer the same from their
	// matches; TestWordListsFromTheStream runs a stack that keeps them.
	shared := idp.Env()
	shared["WORD_LISTS"] = "0"
	env, err = testenv.Start(ctx, testenv.Options{Env: shared, Record: true})
	cancel()
	if err != nil {
		idp.Close()
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 && len(os.Args) > 0 && runsWholeSuite() {
		// Least privilege, checked against what the whole suite made each
		// endpoint do: see checkIAMPolicies.
		if problems := checkIAMPolicies(env); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: IAM policies in template.yaml do not match what the functions do:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			code = 1
		}
	}
	if code == 0 {
		// Every request the suite made and every answer it got, against
		// api/openapi.yaml: see checkOpenAPI.
		if problems := checkOpenAPI(env); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: the service's requests and answers do not match api/openapi.yaml:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			code = 1
		}
	}
	env.Close()
	idp.Close()
	os.Exit(code)
}

// runsWholeSuite reports whether no -run filter narrows the tests, so that
// every route has been exercised.
func runsWholeSuite() bool {
	f := flag.Lookup("test.run")
	return f == nil || f.Value.String() == ""
}
