// Command create-staff makes sure an active staff account exists in a
// stack's table: the way to create the first staff member of a deployed
// stack (`make create-staff STACK=<name> EMAIL=<address>`), and what
// ADMIN_EMAIL/ADMIN_PASSWORD do for `make run`. It is idempotent.
//
// Environment: TABLE_NAME (required), ADMIN_EMAIL (required), ADMIN_PASSWORD
// (read from standard input when unset, so it stays out of shell history),
// AWS_REGION, and DYNAMODB_ENDPOINT for a local table. AWS credentials come
// from the usual chain; they need dynamodb:GetItem, PutItem and UpdateItem
// on the table.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/config"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Getenv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "create-staff:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	email := strings.TrimSpace(getenv("ADMIN_EMAIL"))
	if getenv("TABLE_NAME") == "" || email == "" {
		return errors.New("set TABLE_NAME and ADMIN_EMAIL (and ADMIN_PASSWORD, or type it on standard input)")
	}
	password := getenv("ADMIN_PASSWORD")
	if password == "" {
		fmt.Fprint(stdout, "Password for "+email+": ")
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("no password given")
		}
		password = strings.TrimRight(line, "\r\n")
	}
	cfg, err := config.Load(func(k string) string {
		switch k {
		case "MAIL_FROM":
			return "create-staff@example.invalid" // no mail is sent
		case "TOKEN_KEY":
			return "create-staff-needs-no-token-key" // no token is issued
		case "TOKEN_KEY_SECRET_ARN":
			return ""
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{LogOutput: io.Discard})
	if err != nil {
		return err
	}
	u, err := a.Users.EnsureStaff(ctx, email, password, true, false)
	if err != nil {
		return err
	}
	slog.New(slog.NewJSONHandler(stdout, nil)).Info("staff account ready", "email", u.Email, "uuid", u.UUID, "username", u.Username)
	return nil
}
