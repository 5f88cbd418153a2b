package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/testenv"
)

func TestCreateStaff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	email := testenv.Email("boss")
	vars := map[string]string{
		"TABLE_NAME": env.Config.TableName, "ADMIN_EMAIL": email, "AWS_REGION": "us-east-1",
		"DYNAMODB_ENDPOINT": env.Dynamo.Endpoint(),
	}
	getenv := func(k string) string { return vars[k] }

	t.Run("case=the password is read from standard input and the account is staff", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(ctx, getenv, strings.NewReader(testenv.DefaultPassword+"\n"), &out); err != nil {
			t.Fatal(err)
		}
		tok := env.Login(t, email, testenv.DefaultPassword)
		me := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok).JSON()
		if me["is_staff"] != true || me["status"] != "ENABLED" {
			t.Fatalf("not an active staff account: %v", me)
		}
		if strings.Contains(out.String(), testenv.DefaultPassword) {
			t.Error("the password was echoed")
		}
	})
	t.Run("case=running it again with a new password is idempotent and re-keys", func(t *testing.T) {
		vars["ADMIN_PASSWORD"] = "a-Second-password-42"
		if err := run(ctx, getenv, strings.NewReader(""), &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		env.Login(t, email, "a-Second-password-42")
	})
	t.Run("case=missing settings are refused", func(t *testing.T) {
		if err := run(ctx, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}); err == nil {
			t.Fatal("no error without TABLE_NAME and ADMIN_EMAIL")
		}
	})
}
