// Package mail sends the service's emails: activation, password reset and
// email-change codes, and notices. SES in production and locally (through
// the local SES endpoint); a recorder in unit tests.
package mail

import (
	"context"
	netmail "net/mail"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	"github.com/aws/aws-sdk-go-v2/service/ses/types"
)

// Message is one email with a text and an HTML part.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Sender sends one message.
type Sender interface {
	// Send delivers m or returns why it could not.
	Send(ctx context.Context, m Message) error
}

// SESAPI is the part of the SES client Sender uses.
type SESAPI interface {
	SendEmail(ctx context.Context, in *ses.SendEmailInput, opts ...func(*ses.Options)) (*ses.SendEmailOutput, error)
}

// SES sends through Amazon SES's SendEmail.
type SES struct {
	Client SESAPI
	// From is the sender as configured (MAIL_FROM): an address, or
	// "Name <address>"; Send puts it in RFC 5322 form (Source).
	From string
	// ConfigurationSet tags every send, so SES reports its bounces and
	// complaints (empty: none).
	ConfigurationSet string
}

var _ Sender = (*SES)(nil)

// Send implements Sender.
func (s *SES) Send(ctx context.Context, m Message) error {
	utf8 := aws.String("UTF-8")
	var set *string
	if s.ConfigurationSet != "" {
		set = aws.String(s.ConfigurationSet)
	}
	_, err := s.Client.SendEmail(ctx, &ses.SendEmailInput{
		Source:               aws.String(Source(s.From)),
		ConfigurationSetName: set,
		Destination:          &types.Destination{ToAddresses: []string{m.To}},
		Message: &types.Message{
			Subject: &types.Content{Data: aws.String(m.Subject), Charset: utf8},
			Body: &types.Body{
				Text: &types.Content{Data: aws.String(m.Text), Charset: utf8},
				Html: &types.Content{Data: aws.String(m.HTML), Charset: utf8},
			},
		},
	})
	return err
}

// Source is the SES Source of a sender given as "address" or "Name
// <address>" (the forms config.MailFromPattern takes): the address alone,
// or the name quoted as RFC 5322 needs ("Acme Inc." <a@b>) and, when it is
// not ASCII, MIME encoded-word encoded, as SES requires.
func Source(from string) string {
	name, addr, ok := strings.Cut(from, " <")
	if !ok || !strings.HasSuffix(addr, ">") {
		return from
	}
	return (&netmail.Address{Name: name, Address: strings.TrimSuffix(addr, ">")}).String()
}

// Recorder keeps messages in memory, for unit tests; Err, when set, is
// returned instead of recording, to inject a failure.
type Recorder struct {
	mu   sync.Mutex
	Sent []Message
	Err  error
}

var _ Sender = (*Recorder)(nil)

// Send implements Sender.
func (r *Recorder) Send(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Err != nil {
		return r.Err
	}
	r.Sent = append(r.Sent, m)
	return nil
}
