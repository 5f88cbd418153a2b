package metrics_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/metrics"
	"github.com/example/accounts/pkg/testenv"
)

// A sign-up, its activation, a login, failed logins up to a lockout and the
// activation mail (sent by the stream function) each leave their EMF line in
// the functions' log output, through the real handlers on DynamoDB Local
// and the local SES.
func TestTheHandlersEmitTheirMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{Env: map[string]string{"METRICS_NAMESPACE": "metrics-test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	email := testenv.Email("metrics")
	e.SignUp(t, email)
	e.Activate(t, email)
	e.Login(t, email, testenv.DefaultPassword)
	for i := range 5 {
		r := e.Do(t, "POST", "/api/auth/login", map[string]any{"login": email, "password": "wrong-password-123"})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := e.Do(t, "POST", "/api/auth/login", map[string]any{"login": testenv.Email("nobody"), "password": "wrong-password-123"})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("unknown login: %d %s", r.Status, r.Body)
	}

	// The API's lines and the stream function's (which sends the mail);
	// the mail's line follows its delivery to the inbox by a moment.
	var logs string
	var sums map[string]float64
	var bad []error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		logs = e.Logs.String() + e.StreamLogs.String()
		if sums, bad = emfLines(logs); sums[metrics.MailsSent] >= 1 || time.Now().After(deadline) {
			break
		}
	}
	for _, err := range bad {
		t.Error(err)
	}
	want := map[string]float64{
		metrics.SignUps: 1, metrics.Activations: 1, metrics.Logins: 1,
		metrics.LoginsFailed: 6, metrics.Lockouts: 1, metrics.MailsSent: 1,
	}
	for name, n := range want {
		if sums[name] != n {
			t.Errorf("%s = %v, want %v (all: %v)", name, sums[name], n, sums)
		}
	}
	if !strings.Contains(logs, `"Namespace":"metrics-test"`) {
		t.Error("the lines do not carry METRICS_NAMESPACE")
	}
	if sums[metrics.MailsFailed] != 0 {
		t.Errorf("MailsFailed = %v", sums[metrics.MailsFailed])
	}
}
