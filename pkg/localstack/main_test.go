package localstack

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// The emulators are started once per test binary, on first use, and stopped
// by TestMain.
var (
	toolsOnce sync.Once
	toolsErr  error

	dynamoOnce sync.Once
	dynamoProc *Process
	dynamoErr  error

	sesOnce sync.Once
	sesProc *Process
	sesErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range []*Process{dynamoProc, sesProc} {
		if p != nil {
			if err := p.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stop:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// needTools installs tools/node_modules on a fresh clone.
func needTools(t *testing.T) string {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	toolsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		toolsErr = EnsureTools(ctx, root)
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return root
}

func sharedDynamo(t *testing.T) *Process {
	t.Helper()
	root := needTools(t)
	dynamoOnce.Do(func() {
		dynamoProc, dynamoErr = StartDynamoDB(context.Background(), DynamoOptions{Root: root})
	})
	if dynamoErr != nil {
		t.Fatal(dynamoErr)
	}
	return dynamoProc
}

func sharedSES(t *testing.T) *Process {
	t.Helper()
	root := needTools(t)
	sesOnce.Do(func() {
		sesProc, sesErr = StartSES(context.Background(), SESOptions{Root: root})
	})
	if sesErr != nil {
		t.Fatal(sesErr)
	}
	return sesProc
}
