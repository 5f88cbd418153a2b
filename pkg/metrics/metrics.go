// Package metrics writes the service's CloudWatch metrics in the embedded
// metric format (EMF): one JSON log line per count, which CloudWatch Logs
// turns into a metric of the namespace (the stack's name on AWS), so no
// CloudWatch API call, client or permission is needed. Lines go through
// slog to the function's own output, so the local stack and the tests see
// them beside the other logs. docs/OPERATIONS.md lists the metrics and
// says why this is not a library.
package metrics

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/example/accounts/pkg/mail"
)

// The metrics the service emits, each a Count without dimensions (so an
// alarm names it by namespace and name alone).
const (
	SignUps      = "SignUps"      // self sign-ups that created an account
	Activations  = "Activations"  // accounts activated with their code
	Logins       = "Logins"       // successful logins (API, Waldur form, pages)
	LoginsFailed = "LoginsFailed" // wrong password or unknown login
	Lockouts     = "Lockouts"     // failed logins that locked the account
	MailsSent    = "MailsSent"    // mails SES accepted
	MailsFailed  = "MailsFailed"  // mail sends SES refused or that failed
)

// Names lists every metric, for documentation and tests.
var Names = []string{SignUps, Activations, Logins, LoginsFailed, Lockouts, MailsSent, MailsFailed}

// DefaultNamespace is the namespace when METRICS_NAMESPACE is empty (the
// local stack); on AWS the template sets it to the stack's name.
const DefaultNamespace = "UserAccounts"

// Recorder writes EMF lines. A nil *Recorder records nothing, so code
// built without one (unit tests) needs no guard.
type Recorder struct {
	log       *slog.Logger
	namespace string
	// Now is the clock of the lines' Timestamp.
	Now func() time.Time
}

// New returns a Recorder writing to out under namespace (DefaultNamespace
// when empty). Its lines are written whatever LOG_LEVEL says: a metric is
// not a debug message.
func New(out io.Writer, namespace string) *Recorder {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Recorder{log: slog.New(slog.NewJSONHandler(out, nil)), namespace: namespace, Now: time.Now}
}

// Namespace is the CloudWatch namespace the lines name.
func (r *Recorder) Namespace() string { return r.namespace }

// directive is EMF's MetricDirective; metric its MetricDefinition.
type directive struct {
	Namespace  string     `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []metric   `json:"Metrics"`
}

type metric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// metadata is EMF's _aws member.
type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// Count records n occurrences of the metric name: one line
//
//	{"time":…,"level":"INFO","msg":"metric","_aws":{"Timestamp":…,"CloudWatchMetrics":[{"Namespace":…,"Dimensions":[[]],"Metrics":[{"Name":"SignUps","Unit":"Count"}]}]},"SignUps":1}
func (r *Recorder) Count(ctx context.Context, name string, n int) {
	if r == nil || n <= 0 {
		return
	}
	aws := metadata{
		Timestamp: r.Now().UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  r.namespace,
			Dimensions: [][]string{{}},
			Metrics:    []metric{{Name: name, Unit: "Count"}},
		}},
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "metric", slog.Any("_aws", aws), slog.Int(name, n))
}

// Sender counts the mails its Sender sends: MailsSent for each SES
// accepted, MailsFailed for each send that failed (every attempt, so a
// retried mail that then goes out counts one of each).
type Sender struct {
	mail.Sender
	Metrics *Recorder
}

var _ mail.Sender = Sender{}

// Send implements mail.Sender.
func (s Sender) Send(ctx context.Context, m mail.Message) error {
	err := s.Sender.Send(ctx, m)
	if err != nil {
		s.Metrics.Count(ctx, MailsFailed, 1)
	} else {
		s.Metrics.Count(ctx, MailsSent, 1)
	}
	return err
}
