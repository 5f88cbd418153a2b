package stack_test

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/stack"
)

// translated is template.yaml through the SAM translator, as CloudFormation
// deploys it. The tests skip only when no translator is installed (CI has
// one: cfn-lint brings samtranslator).
func translated(t *testing.T) *stack.Template {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tpl, err := stack.Translate(ctx)
	if errors.Is(err, stack.ErrNoTranslator) {
		t.Skipf("%v; `pip install cfn-lint` brings it", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// lambdaFunctions are the translated functions, each the function of the
// SAM resource of the same logical id.
func lambdaFunctions(t *testing.T, tr, raw *stack.Template) []string {
	t.Helper()
	fns := tr.OfType("AWS::Lambda::Function")
	if want := raw.OfType("AWS::Serverless::Function"); !reflect.DeepEqual(fns, want) {
		t.Fatalf("translated functions %v, template functions %v", fns, want)
	}
	return fns
}

var arnRef = regexp.MustCompile(`\$\{(\w+)\.Arn\}`)

// translatedRoutes reads the HTTP API's OpenAPI body: route key -> the
// function its integration invokes.
func translatedRoutes(t *testing.T, tr *stack.Template) map[string]string {
	t.Helper()
	apis := tr.OfType("AWS::ApiGatewayV2::Api")
	if len(apis) != 1 {
		t.Fatalf("want one HTTP API, got %v", apis)
	}
	body, ok := tr.Resources[apis[0]].Properties["Body"].(map[string]any)
	if !ok {
		t.Fatal("the HTTP API has no OpenAPI body")
	}
	routes := map[string]string{}
	for p, ops := range body["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			integ, ok := op.(map[string]any)["x-amazon-apigateway-integration"].(map[string]any)
			if !ok {
				t.Errorf("%s %s has no integration", method, p)
				continue
			}
			uri := fmt.Sprint(integ["uri"].(map[string]any)["Fn::Sub"])
			m := arnRef.FindStringSubmatch(uri)
			if m == nil || integ["type"] != "aws_proxy" || integ["payloadFormatVersion"] != "2.0" {
				t.Errorf("%s %s: integration %v is not a 2.0 proxy to a function", method, p, integ)
				continue
			}
			key := strings.ToUpper(method) + " " + p
			if method == "x-amazon-apigateway-any-method" {
				key = "ANY " + p
			}
			routes[key] = m[1]
		}
	}
	return routes
}

// Every route of the deployed API invokes the function whose handler
// (app.Handlers, pkg/api's Handlers() and the pages) the local stack and the
// tests serve it with, and API Gateway may invoke it there.
func TestTranslatedRoutesReachTheirHandlers(t *testing.T) {
	tr := translated(t)
	p, err := stack.Path()
	if err != nil {
		t.Fatal(err)
	}
	local, err := localstack.ParseTemplate(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range local.Routes {
		want[r.Key()] = r.FunctionID
	}
	got := translatedRoutes(t, tr)
	if !reflect.DeepEqual(got, want) {
		for k, fn := range got {
			if want[k] != fn {
				t.Errorf("deployed route %s invokes %s; served locally by %q", k, fn, want[k])
			}
		}
		for k, fn := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("route %s (%s) is served locally but not deployed", k, fn)
			}
		}
	}
	handlers := app.Handlers(&api.API{})
	served := map[string]bool{}
	for k, fn := range got {
		served[fn] = true
		if _, ok := handlers[fn]; !ok {
			t.Errorf("route %s invokes %s, which has no handler in app.Handlers", k, fn)
		}
		if !permitted(tr, fn, k) {
			t.Errorf("route %s: no AWS::Lambda::Permission lets API Gateway invoke %s for it", k, fn)
		}
	}
	for fn := range handlers {
		if !served[fn] {
			t.Errorf("app.Handlers has %s, which no deployed route invokes", fn)
		}
	}
	if len(got) < 20 {
		t.Errorf("only %d routes deployed", len(got))
	}
}

// permitted reports whether a Lambda permission lets the HTTP API invoke fn
// for route key ("POST /api/users/{uuid}/token").
func permitted(tr *stack.Template, fn, key string) bool {
	method, p, _ := strings.Cut(key, " ")
	sample := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(p, "x")
	for _, id := range tr.OfType("AWS::Lambda::Permission") {
		props := tr.Resources[id].Properties
		if !reflect.DeepEqual(props["FunctionName"], map[string]any{"Ref": fn}) || props["Principal"] != "apigateway.amazonaws.com" {
			continue
		}
		sub, ok := props["SourceArn"].(map[string]any)["Fn::Sub"].([]any)
		if !ok || len(sub) == 0 {
			continue
		}
		_, tail, ok := strings.Cut(fmt.Sprint(sub[0]), "${__Stage__}/")
		if !ok {
			continue
		}
		if m, _ := path.Match(tail, method+sample); m || globMatch(tail, method+sample) {
			return true
		}
	}
	return false
}

// globMatch matches as IAM does: * is any run of characters, / included.
func globMatch(pattern, s string) bool {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// Every deployed function is the arm64 provided.al2023 bootstrap binary,
// traced (with the X-Ray permission tracing needs), logging JSON to its
// log group.
func TestTranslatedFunctionsRuntime(t *testing.T) {
	tr := translated(t)
	raw := load(t)
	for _, fn := range lambdaFunctions(t, tr, raw) {
		p := tr.Resources[fn].Properties
		if !reflect.DeepEqual(p["Architectures"], []any{"arm64"}) {
			t.Errorf("%s: Architectures %v", fn, p["Architectures"])
		}
		if p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" {
			t.Errorf("%s: Runtime %v, Handler %v", fn, p["Runtime"], p["Handler"])
		}
		if !reflect.DeepEqual(p["TracingConfig"], map[string]any{"Mode": "Active"}) {
			t.Errorf("%s: TracingConfig %v", fn, p["TracingConfig"])
		}
		if lc, _ := p["LoggingConfig"].(map[string]any); lc["LogFormat"] != "JSON" {
			t.Errorf("%s: LoggingConfig %v", fn, p["LoggingConfig"])
		}
		managed := fmt.Sprint(tr.ManagedPolicies(fn))
		for _, want := range []string{"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"} {
			if !strings.Contains(managed, want) {
				t.Errorf("%s's role lacks %s (has %s)", fn, want, managed)
			}
		}
	}
}

// Settings a deployed function's environment need not carry: Lambda sets
// AWS_REGION; DEFAULT_TOKEN_LIFETIME, COUNT_SHARDS and LIST_SCAN_LIMIT are
// not stack settings (the code's defaults); REMOTE_USERINFO_TOKEN and
// MIGRATION_TOKEN are the local stack's, a deployed one reads the secret
// the *_TOKEN_SECRET_ARN names.
var notFromTheStack = []string{"AWS_REGION", "DEFAULT_TOKEN_LIFETIME", "COUNT_SHARDS", "LIST_SCAN_LIMIT", "REMOTE_USERINFO_TOKEN", "MIGRATION_TOKEN"}

// scoped are settings (by name or name prefix) that only some functions
// use, and which: a function not listed must not carry them, a listed one
// must. A new setting that only some functions need goes here.
var scoped = map[string][]string{
	"REMOTE_":    {"PullRemoteUserFunction"},         // only pull_remote_user calls the identity source
	"MIGRATION_": {"LoginFunction", "PagesFunction"}, // lazy migration: the JSON login and the pages' login
}

// localOnly are the local stack's endpoints (every *_ENDPOINT) and key: a
// deployed function need not carry them (sam local start-api overrides only
// declared ones, so the template declares some as ”), and must not set
// them: they would point it at nothing or replace the secret.
func localOnly(v string) bool { return strings.HasSuffix(v, "_ENDPOINT") || v == "TOKEN_KEY" }

// Each deployed function's environment covers every setting its
// configuration (config.Load, which every function runs at cold start)
// reads, the local-only ones are empty, and the table, secret and bucket
// are the stack's own.
func TestTranslatedEnvironmentsCoverTheConfig(t *testing.T) {
	tr := translated(t)
	raw := load(t)
	vars := config.Variables()
	if !slices.Contains(vars, "TABLE_NAME") || !slices.Contains(vars, "REMOTE_USERINFO_URL") {
		t.Fatalf("config.Variables() = %v", vars)
	}
	for _, fn := range lambdaFunctions(t, tr, raw) {
		env, _ := tr.Resources[fn].Properties["Environment"].(map[string]any)
		have, _ := env["Variables"].(map[string]any)
		for _, v := range vars {
			if slices.Contains(notFromTheStack, v) {
				continue
			}
			if localOnly(v) {
				if x, ok := have[v]; ok && x != "" {
					t.Errorf("%s: %s = %v, want it empty or unset on AWS", fn, v, x)
				}
				continue
			}
			need := true
			for prefix, fns := range scoped {
				if strings.HasPrefix(v, prefix) { // a name is its own prefix
					need = slices.Contains(fns, fn)
					if _, ok := have[v]; ok && !need {
						t.Errorf("%s has %s, which only %v use", fn, v, fns)
					}
				}
			}
			if _, ok := have[v]; need && !ok {
				t.Errorf("%s's environment lacks %s, which its configuration reads", fn, v)
			}
		}
		for v, want := range map[string]any{
			"TABLE_NAME":           map[string]any{"Ref": "UsersTable"},
			"TOKEN_KEY_SECRET_ARN": map[string]any{"Ref": "TokenKeySecret"},
			"IMAGES_BUCKET":        map[string]any{"Ref": "ImagesBucket"},
			"METRICS_NAMESPACE":    map[string]any{"Ref": "AWS::StackName"},
		} {
			if !reflect.DeepEqual(have[v], want) {
				t.Errorf("%s: %s = %v, want %v", fn, v, have[v], want)
			}
		}
	}
}

// eventMapping are the event types read from a stream or queue through an
// AWS::Lambda::EventSourceMapping.
var eventMapping = map[string]bool{"DynamoDB": true, "Kinesis": true, "SQS": true}

// Every function a trigger invokes gets what the trigger needs deployed: an
// event source mapping (with a batch failure report, bisection, bounded
// retries and an on-failure destination for a stream), an SNS subscription
// and its permission, a schedule's rule or schedule.
func TestTranslatedTriggers(t *testing.T) {
	tr := translated(t)
	raw := load(t)
	for _, fn := range lambdaFunctions(t, tr, raw) {
		events, _ := raw.Resources[fn].Properties["Events"].(map[string]any)
		if len(events) == 0 {
			t.Errorf("%s has no events: nothing invokes it", fn)
		}
		names := make([]string, 0, len(events))
		for name := range events {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			ev := events[name].(map[string]any)
			typ := fmt.Sprint(ev["Type"])
			props, _ := ev["Properties"].(map[string]any)
			switch {
			case typ == "HttpApi":
				// TestTranslatedRoutesReachTheirHandlers
			case eventMapping[typ]:
				checkMapping(t, tr, raw, fn, name, typ, props)
			case typ == "SNS":
				if !hasResource(tr, "AWS::SNS::Subscription", func(p map[string]any) bool {
					return reflect.DeepEqual(p["Endpoint"], map[string]any{"Fn::GetAtt": []any{fn, "Arn"}}) && p["Protocol"] == "lambda"
				}) {
					t.Errorf("%s.%s: no SNS subscription of the function", fn, name)
				}
				if !hasResource(tr, "AWS::Lambda::Permission", func(p map[string]any) bool {
					return reflect.DeepEqual(p["FunctionName"], map[string]any{"Ref": fn}) && p["Principal"] == "sns.amazonaws.com"
				}) {
					t.Errorf("%s.%s: SNS may not invoke the function", fn, name)
				}
			case typ == "Schedule" || typ == "EventBridgeRule" || typ == "CloudWatchEvent":
				if !hasResource(tr, "AWS::Events::Rule", func(p map[string]any) bool {
					return strings.Contains(fmt.Sprint(p["Targets"]), "["+fn+" Arn]")
				}) {
					t.Errorf("%s.%s: no EventBridge rule targets the function", fn, name)
				}
			case typ == "ScheduleV2":
				if !hasResource(tr, "AWS::Scheduler::Schedule", func(p map[string]any) bool {
					return strings.Contains(fmt.Sprint(p["Target"]), "["+fn+" Arn]")
				}) {
					t.Errorf("%s.%s: no schedule targets the function", fn, name)
				}
			default:
				t.Errorf("%s.%s: event type %s is not checked here; teach TestTranslatedTriggers what it deploys", fn, name, typ)
			}
		}
	}
}

func hasResource(tr *stack.Template, typ string, ok func(map[string]any) bool) bool {
	for _, id := range tr.OfType(typ) {
		if ok(tr.Resources[id].Properties) {
			return true
		}
	}
	return false
}

func checkMapping(t *testing.T, tr, raw *stack.Template, fn, name, typ string, ev map[string]any) {
	t.Helper()
	var m map[string]any
	for _, id := range tr.OfType("AWS::Lambda::EventSourceMapping") {
		p := tr.Resources[id].Properties
		if reflect.DeepEqual(p["FunctionName"], map[string]any{"Ref": fn}) && reflect.DeepEqual(p["EventSourceArn"], firstOf(ev, "Stream", "Queue")) {
			m = p
		}
	}
	if m == nil {
		t.Errorf("%s.%s: no event source mapping from %v", fn, name, firstOf(ev, "Stream", "Queue"))
		return
	}
	if typ == "SQS" {
		return
	}
	if !slices.Contains(list(m["FunctionResponseTypes"]), any("ReportBatchItemFailures")) {
		t.Errorf("%s.%s: FunctionResponseTypes %v lacks ReportBatchItemFailures", fn, name, m["FunctionResponseTypes"])
	}
	if m["BisectBatchOnFunctionError"] != true {
		t.Errorf("%s.%s: BisectBatchOnFunctionError %v", fn, name, m["BisectBatchOnFunctionError"])
	}
	for _, k := range []string{"BatchSize", "MaximumBatchingWindowInSeconds", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "StartingPosition"} {
		if m[k] == nil {
			t.Errorf("%s.%s: %s is not set", fn, name, k)
		}
	}
	dest, _ := m["DestinationConfig"].(map[string]any)
	if of, _ := dest["OnFailure"].(map[string]any); of["Destination"] == nil {
		t.Errorf("%s.%s: no on-failure destination (dead-letter queue)", fn, name)
	}
	// The table the stream is read from has one with both images.
	if ga, ok := firstOf(ev, "Stream").(map[string]any)["Fn::GetAtt"].([]any); ok && typ == "DynamoDB" {
		spec, _ := raw.Resources[fmt.Sprint(ga[0])].Properties["StreamSpecification"].(map[string]any)
		if spec["StreamViewType"] != "NEW_AND_OLD_IMAGES" {
			t.Errorf("%s.%s: table %v has stream %v, want NEW_AND_OLD_IMAGES", fn, name, ga[0], spec)
		}
	}
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}

func list(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		return l
	default:
		return []any{v}
	}
}

// The deployed roles grant what the template's Policies say, and only
// that beyond what SAM itself adds for a trigger (the stream's read
// permissions, the destination's send): so pkg/testenv's CheckIAMPolicies,
// which compares what each function's code made the tests call with the
// deployed role, and the template agree.
func TestTranslatedPoliciesAreTheTemplates(t *testing.T) {
	tr := translated(t)
	raw := load(t)
	key := func(s stack.Statement) string {
		a := slices.Clone(s.Actions)
		sort.Strings(a)
		return fmt.Sprint(s.Effect, a, s.Resources)
	}
	for _, fn := range lambdaFunctions(t, tr, raw) {
		own, err := raw.FunctionStatements(fn)
		if err != nil {
			t.Fatal(err)
		}
		deployed, err := tr.FunctionStatements(fn)
		if err != nil {
			t.Fatal(err)
		}
		left := map[string]int{}
		for _, s := range deployed {
			left[key(s)]++
		}
		for _, s := range own {
			if left[key(s)] == 0 {
				t.Errorf("%s: the deployed role lacks %v", fn, s)
			}
			left[key(s)]--
		}
		for _, s := range deployed {
			if left[key(s)] <= 0 {
				continue
			}
			left[key(s)]--
			for _, a := range s.Actions {
				if a != "sqs:SendMessage" && a != "sns:Publish" {
					t.Errorf("%s: SAM added %s, which the template does not grant", fn, a)
				}
			}
		}
		for _, arn := range tr.ManagedPolicies(fn) {
			s := fmt.Sprint(arn)
			if !strings.Contains(s, "AWSLambdaBasicExecutionRole") && !strings.Contains(s, "AWSXrayWriteOnlyAccess") &&
				!strings.Contains(s, "AWSLambdaDynamoDBExecutionRole") && !strings.Contains(s, "AWSLambdaSQSQueueExecutionRole") {
				t.Errorf("%s: managed policy %s", fn, s)
			}
		}
	}
}
