package stack_test

import (
	"reflect"
	"testing"

	"github.com/example/accounts/pkg/stack"
)

func load(t *testing.T) *stack.Template {
	t.Helper()
	path, err := stack.Path()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := stack.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func ref(id string) map[string]any { return map[string]any{"Ref": id} }

// notifies is the AlarmActions/OKActions every alarm carries: the topic
// when AlarmTopicArn is set, none otherwise.
var notifies = map[string]any{"Fn::If": []any{"HasAlarmTopic", []any{ref("AlarmTopicArn")}, ref("AWS::NoValue")}}

// checkAlarm checks that resource id is an alarm on namespace/metric with
// the given dimensions (nil: none), notifying the topic.
func checkAlarm(t *testing.T, tpl *stack.Template, id string, namespace any, metric string, dims map[string]any) {
	t.Helper()
	a, ok := tpl.Resources[id]
	if !ok || a.Type != "AWS::CloudWatch::Alarm" {
		t.Errorf("no alarm %s (on %s %s)", id, namespace, metric)
		return
	}
	p := a.Properties
	if !reflect.DeepEqual(p["Namespace"], namespace) || p["MetricName"] != metric {
		t.Errorf("%s watches %v %v, want %v %s", id, p["Namespace"], p["MetricName"], namespace, metric)
	}
	got := map[string]any{}
	if l, ok := p["Dimensions"].([]any); ok {
		for _, d := range l {
			d := d.(map[string]any)
			got[d["Name"].(string)] = d["Value"]
		}
	}
	if dims == nil {
		dims = map[string]any{}
	}
	if !reflect.DeepEqual(got, dims) {
		t.Errorf("%s: dimensions %v, want %v", id, got, dims)
	}
}

// Every function of the template, those added later included, has its log
// group /aws/lambda/<function> with the retention of LogRetentionInDays,
// and an alarm on its errors and one on its throttles.
func TestEveryFunctionHasItsLogGroupAndAlarms(t *testing.T) {
	tpl := load(t)
	fns := tpl.OfType("AWS::Serverless::Function")
	if len(fns) == 0 {
		t.Fatal("no functions in template.yaml")
	}
	for _, fn := range fns {
		lg, ok := tpl.Resources[fn+"LogGroup"]
		if !ok || lg.Type != "AWS::Logs::LogGroup" {
			t.Errorf("%s has no log group %sLogGroup (AWS::Logs::LogGroup)", fn, fn)
		} else {
			if want := map[string]any{"Fn::Sub": "/aws/lambda/${" + fn + "}"}; !reflect.DeepEqual(lg.Properties["LogGroupName"], want) {
				t.Errorf("%sLogGroup: LogGroupName %v, want %v", fn, lg.Properties["LogGroupName"], want)
			}
			if !reflect.DeepEqual(lg.Properties["RetentionInDays"], ref("LogRetentionInDays")) {
				t.Errorf("%sLogGroup: RetentionInDays %v, want !Ref LogRetentionInDays", fn, lg.Properties["RetentionInDays"])
			}
		}
		checkAlarm(t, tpl, fn+"ErrorsAlarm", "AWS/Lambda", "Errors", map[string]any{"FunctionName": ref(fn)})
		checkAlarm(t, tpl, fn+"ThrottlesAlarm", "AWS/Lambda", "Throttles", map[string]any{"FunctionName": ref(fn)})
	}
	// The API's access log too.
	if r := tpl.Resources["HttpApiAccessLogs"]; !reflect.DeepEqual(r.Properties["RetentionInDays"], ref("LogRetentionInDays")) {
		t.Errorf("HttpApiAccessLogs: RetentionInDays %v", r.Properties["RetentionInDays"])
	}
}

// The stack-wide alarms exist, and those on the stream and its dead-letter
// queue as soon as the template has them.
func TestStackAlarms(t *testing.T) {
	tpl := load(t)
	checkAlarm(t, tpl, "SesBounceRateAlarm", "AWS/SES", "Reputation.BounceRate", nil)
	checkAlarm(t, tpl, "SesComplaintRateAlarm", "AWS/SES", "Reputation.ComplaintRate", nil)
	// pkg/metrics' namespace, METRICS_NAMESPACE, is the stack's name.
	checkAlarm(t, tpl, "MailsFailedAlarm", ref("AWS::StackName"), "MailsFailed", nil)
	vars := tpl.Globals["Function"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
	if !reflect.DeepEqual(vars["METRICS_NAMESPACE"], ref("AWS::StackName")) {
		t.Errorf("Globals: METRICS_NAMESPACE %v, want the stack's name", vars["METRICS_NAMESPACE"])
	}
	api, ok := tpl.Resources["Api5xxRateAlarm"]
	if !ok {
		t.Fatal("no Api5xxRateAlarm")
	}
	var names []any
	for _, m := range api.Properties["Metrics"].([]any) {
		if ms, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
			metric := ms["Metric"].(map[string]any)
			names = append(names, metric["MetricName"])
			if metric["Namespace"] != "AWS/ApiGateway" || !reflect.DeepEqual(metric["Dimensions"], []any{map[string]any{"Name": "ApiId", "Value": ref("HttpApi")}}) {
				t.Errorf("Api5xxRateAlarm: metric %v", metric)
			}
		}
	}
	if !reflect.DeepEqual(names, []any{"5xx", "Count"}) {
		t.Errorf("Api5xxRateAlarm divides %v, want 5xx by Count", names)
	}
	if _, ok := tpl.Resources["StreamFunction"]; ok {
		checkAlarm(t, tpl, "StreamIteratorAgeAlarm", "AWS/Lambda", "IteratorAge", map[string]any{"FunctionName": ref("StreamFunction")})
	} else {
		t.Log("no StreamFunction yet: its IteratorAge alarm is not required")
	}
	if _, ok := tpl.Resources["StreamDeadLetterQueue"]; ok {
		checkAlarm(t, tpl, "StreamDeadLetterQueueAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible",
			map[string]any{"QueueName": map[string]any{"Fn::GetAtt": []any{"StreamDeadLetterQueue", "QueueName"}}})
	} else {
		t.Log("no StreamDeadLetterQueue yet: its alarm is not required")
	}
}

// Every alarm notifies the topic when AlarmTopicArn is set, both ways.
func TestEveryAlarmNotifiesTheTopic(t *testing.T) {
	tpl := load(t)
	alarms := tpl.OfType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("no alarms")
	}
	for _, id := range alarms {
		p := tpl.Resources[id].Properties
		for _, k := range []string{"AlarmActions", "OKActions"} {
			if !reflect.DeepEqual(p[k], notifies) {
				t.Errorf("%s: %s %v, want the topic when AlarmTopicArn is set", id, k, p[k])
			}
		}
		if p["TreatMissingData"] != "notBreaching" {
			t.Errorf("%s: TreatMissingData %v: a quiet stack is not in alarm", id, p["TreatMissingData"])
		}
	}
	if _, ok := tpl.Conditions["HasAlarmTopic"]; !ok {
		t.Error("no HasAlarmTopic condition")
	}
}
