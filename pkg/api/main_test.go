package api_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

// env is the service under test, on DynamoDB Local and the local SES.
var env *testenv.Env

// productionParams are the service's argon2id parameters (TestMain makes
// the suite's hashes cheaper).
var productionParams argon2id.Params

// realHashing makes t's hashes with the service's parameters.
func realHashing(t *testing.T) {
	suite := secret.PasswordParams
	secret.PasswordParams = &productionParams
	t.Cleanup(func() { secret.PasswordParams = suite })
}

// argon2idPrefix is how a hash made now begins.
func argon2idPrefix() string {
	p := secret.PasswordParams
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", p.Memory, p.Iterations, p.Parallelism)
}

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
	// Cheap password hashes for the suite's thousands of sign-ups, logins
	// and activations: argon2id's cost is not what these tests are about,
	// and at OWASP's 19 MiB it was a good part of the suite's time. A hash
	// records its parameters, so each is checked with those it was made
	// with; realHashing puts the service's back for a test (the imported
	// hashes' upgrade checks the stored one), and pkg/secret tests them.
	productionParams = *secret.PasswordParams
	secret.PasswordParams = &argon2id.Params{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
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
