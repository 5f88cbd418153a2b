package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Inbox reads the mails kept by the SES fake started with StartSES.
type Inbox struct {
	// Endpoint is the SES fake's base URL, as from Process.Endpoint.
	Endpoint string
}

// Mail is one mail the SES fake kept.
type Mail struct {
	// MessageID is the id SendEmail returned (ses-NNNNNNNNN).
	MessageID string
	// From is the Source as sent, display name included.
	From string
	// To, Cc and Bcc are the destinations as sent.
	To, Cc, Bcc []string
	// ReplyTo are the ReplyToAddresses.
	ReplyTo []string
	// Subject is the subject line.
	Subject string
	// Text is the text body; empty when none was sent.
	Text string
	// HTML is the HTML body; empty when none was sent.
	HTML string
	// At is when the fake received it (whole seconds).
	At time.Time
}

// storeMail is the shape of one entry of GET /store (dist/store.d.ts).
type storeMail struct {
	MessageID   string   `json:"messageId"`
	From        string   `json:"from"`
	ReplyTo     []string `json:"replyTo"`
	Destination struct {
		To  []string `json:"to"`
		Cc  []string `json:"cc"`
		Bcc []string `json:"bcc"`
	} `json:"destination"`
	Subject string `json:"subject"`
	Body    struct {
		Text string `json:"text"`
		HTML string `json:"html"`
	} `json:"body"`
	At int64 `json:"at"` // epoch seconds
}

// Messages returns every mail kept, oldest first.
func (in Inbox) Messages(ctx context.Context) ([]Mail, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(in.Endpoint, "/")+"/store", nil)
	if err != nil {
		return nil, fmt.Errorf("localstack: inbox: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("localstack: inbox: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("localstack: inbox: GET /store: %s: %s", resp.Status, b)
	}
	var store struct {
		Emails []storeMail `json:"emails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&store); err != nil {
		return nil, fmt.Errorf("localstack: inbox: decode /store: %w", err)
	}
	mails := make([]Mail, 0, len(store.Emails))
	for _, e := range store.Emails {
		mails = append(mails, Mail{
			MessageID: e.MessageID,
			From:      e.From,
			To:        e.Destination.To,
			Cc:        e.Destination.Cc,
			Bcc:       e.Destination.Bcc,
			ReplyTo:   e.ReplyTo,
			Subject:   e.Subject,
			Text:      e.Body.Text,
			HTML:      e.Body.HTML,
			At:        time.Unix(e.At, 0),
		})
	}
	return mails, nil
}

// Clear forgets every mail (and template) the fake kept.
func (in Inbox) Clear(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(in.Endpoint, "/")+"/clear-store", nil)
	if err != nil {
		return fmt.Errorf("localstack: inbox: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("localstack: inbox: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("localstack: inbox: POST /clear-store: %s", resp.Status)
	}
	return nil
}

// WaitFor polls until a mail to the address to (To, Cc or Bcc; compared
// without regard to case) for which match returns true has arrived, and
// returns the newest such mail. A nil match takes any mail to that address.
// ctx bounds the wait.
func (in Inbox) WaitFor(ctx context.Context, to string, match func(Mail) bool) (Mail, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var seen int
	for {
		mails, err := in.Messages(ctx)
		if err != nil && ctx.Err() == nil {
			return Mail{}, err
		}
		seen = len(mails)
		for _, m := range slices.Backward(mails) {
			if m.sentTo(to) && (match == nil || match(m)) {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return Mail{}, fmt.Errorf("localstack: inbox: no matching mail to %s among %d kept: %w", to, seen, ctx.Err())
		case <-tick.C:
		}
	}
}

func (m Mail) sentTo(addr string) bool {
	addr = strings.ToLower(strings.TrimSpace(addr))
	for _, list := range [][]string{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			if strings.ToLower(bareAddress(a)) == addr || strings.ToLower(strings.TrimSpace(a)) == addr {
				return true
			}
		}
	}
	return false
}

// bareAddress turns "Name <a@b>" into "a@b".
func bareAddress(a string) string {
	if i := strings.LastIndexByte(a, '<'); i >= 0 {
		if j := strings.IndexByte(a[i:], '>'); j > 0 {
			return strings.TrimSpace(a[i+1 : i+j])
		}
	}
	return strings.TrimSpace(a)
}
