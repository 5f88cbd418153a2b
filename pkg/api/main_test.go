package api_test

import (
	"context"
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
	env, err = testenv.Start(ctx, testenv.Options{Env: idp.Env()})
	cancel()
	if err != nil {
		idp.Close()
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	idp.Close()
	os.Exit(code)
}
