package mail_test

import (
	"context"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ses"

	"github.com/example/accounts/pkg/localstack"
	ourmail "github.com/example/accounts/pkg/mail"
)

func TestSource(t *testing.T) {
	for _, c := range []struct{ from, want string }{
		{"no-reply@example.com", "no-reply@example.com"},
		{"Acme ID <no-reply@example.com>", `"Acme ID" <no-reply@example.com>`},
		{"Acme Inc. <no-reply@example.com>", `"Acme Inc." <no-reply@example.com>`},
		{"O'Brien, Ltd <a@b.example>", `"O'Brien, Ltd" <a@b.example>`},
		{"Société Générale <no-reply@sg.example>", "=?utf-8?q?Soci=C3=A9t=C3=A9_G=C3=A9n=C3=A9rale?= <no-reply@sg.example>"},
	} {
		if got := ourmail.Source(c.from); got != c.want {
			t.Errorf("Source(%q) = %q, want %q", c.from, got, c.want)
		}
	}
}

// A sender configured as "Name <address>" (SenderEmail) reaches SES as a
// Source that a mail reader shows as that name and address: sent through
// the local SES and read back from its store.
func TestSenderWithDisplayNameThroughSES(t *testing.T) {
	root, err := localstack.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := localstack.EnsureTools(ctx, root); err != nil {
		t.Fatal(err)
	}
	p, err := localstack.StartSES(ctx, localstack.SESOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop() }()
	client := ses.New(ses.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	inbox := localstack.Inbox{Endpoint: p.Endpoint()}
	for i, c := range []struct{ from, name, addr string }{
		{"no-reply@example.com", "", "no-reply@example.com"},
		{"Acme Inc. <no-reply@example.com>", "Acme Inc.", "no-reply@example.com"},
		{"Société Générale <no-reply@sg.example>", "Société Générale", "no-reply@sg.example"},
	} {
		to := "person" + string(rune('a'+i)) + "@example.com"
		s := &ourmail.SES{Client: client, From: c.from}
		if err := s.Send(ctx, ourmail.Message{To: to, Subject: "Hello", Text: "text", HTML: "<p>html</p>"}); err != nil {
			t.Fatalf("%s: %v", c.from, err)
		}
		m, err := inbox.WaitFor(ctx, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := mail.ParseAddress(m.From)
		if err != nil {
			t.Fatalf("the mail's From %q does not parse: %v", m.From, err)
		}
		if got.Name != c.name || got.Address != c.addr {
			t.Errorf("From %q reads as name %q address %q, want %q %q", m.From, got.Name, got.Address, c.name, c.addr)
		}
		if strings.ContainsAny(m.From, "éè") {
			t.Errorf("From %q is not ASCII (SES needs encoded words)", m.From)
		}
	}
}
