package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/metrics"
)

func TestCountWritesOneEMFLine(t *testing.T) {
	var out bytes.Buffer
	r := metrics.New(&out, "my-stack")
	at := time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return at }
	r.Count(context.Background(), metrics.SignUps, 2)

	line := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	if bytes.Count(out.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want one line, got %q", out.String())
	}
	values, err := validateEMF(line)
	if err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if values[metrics.SignUps] != 2 || len(values) != 1 {
		t.Errorf("values %v", values)
	}
	var got struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Msg   string `json:"msg"`
		Level string `json:"level"`
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	d := got.AWS.CloudWatchMetrics
	if got.AWS.Timestamp != at.UnixMilli() || len(d) != 1 || d[0].Namespace != "my-stack" ||
		len(d[0].Dimensions) != 1 || len(d[0].Dimensions[0]) != 0 ||
		len(d[0].Metrics) != 1 || d[0].Metrics[0].Name != "SignUps" || d[0].Metrics[0].Unit != "Count" {
		t.Errorf("_aws block %+v", got.AWS)
	}
	if got.Msg != "metric" || got.Level != "INFO" {
		t.Errorf("log fields msg=%q level=%q", got.Msg, got.Level)
	}
}

func TestDefaultsAndNoOps(t *testing.T) {
	var out bytes.Buffer
	if ns := metrics.New(&out, "").Namespace(); ns != metrics.DefaultNamespace {
		t.Errorf("namespace %q", ns)
	}
	metrics.New(&out, "x").Count(context.Background(), metrics.Logins, 0)
	var nilRec *metrics.Recorder
	nilRec.Count(context.Background(), metrics.Logins, 1) // must not panic
	if out.Len() != 0 {
		t.Errorf("a zero count or a nil recorder wrote %q", out.String())
	}
}

func TestSenderCountsSentAndFailed(t *testing.T) {
	var out bytes.Buffer
	rec := &mail.Recorder{}
	s := metrics.Sender{Sender: rec, Metrics: metrics.New(&out, "ns")}
	ctx := context.Background()
	if err := s.Send(ctx, mail.Message{To: "a@b.example"}); err != nil {
		t.Fatal(err)
	}
	rec.Err = errors.New("MessageRejected: Email address is not verified")
	if err := s.Send(ctx, mail.Message{To: "a@b.example"}); err == nil {
		t.Fatal("the failure did not come through")
	}
	sums, bad := emfLines(out.String())
	if len(bad) > 0 {
		t.Fatal(bad)
	}
	if sums[metrics.MailsSent] != 1 || sums[metrics.MailsFailed] != 1 || len(rec.Sent) != 1 {
		t.Errorf("sums %v, sent %d", sums, len(rec.Sent))
	}
}

func TestValidatorRefusesMalformedLines(t *testing.T) {
	for _, line := range []string{
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764594000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]}}`,
		`{"_aws":{"Timestamp":1764594000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764594000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A","Unit":"Things"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764594000000,"CloudWatchMetrics":[{"Namespace":"","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":1}`,
		`{"_aws":{"Timestamp":1764594000000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"A"}]}]},"A":"1"}`,
	} {
		if _, err := validateEMF([]byte(line)); err == nil {
			t.Errorf("accepted %s", line)
		}
	}
}
