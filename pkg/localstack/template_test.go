package localstack

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestParseTemplate(t *testing.T) {
	tpl, err := ParseTemplate("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(tpl.Tables) != 1 {
		t.Fatalf("got %d tables, want 1", len(tpl.Tables))
	}
	got, ok := tpl.Table("ThingsTable")
	if !ok {
		t.Fatal("no ThingsTable")
	}
	want := Table{
		LogicalID: "ThingsTable",
		TableName: "", // !Sub
		KeySchema: []KeyElement{{"pk", "HASH"}, {"sk", "RANGE"}},
		AttributeDefinitions: []AttributeDefinition{
			{"pk", "S"}, {"sk", "S"}, {"gsi1pk", "S"}, {"gsi1sk", "N"},
		},
		GlobalSecondaryIndexes: []SecondaryIndex{{
			IndexName:  "gsi1",
			KeySchema:  []KeyElement{{"gsi1pk", "HASH"}, {"gsi1sk", "RANGE"}},
			Projection: Projection{ProjectionType: "INCLUDE", NonKeyAttributes: []string{"name", "email"}},
		}},
		TimeToLive: &TimeToLive{AttributeName: "expires_at", Enabled: true},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("table:\n got %+v\nwant %+v", *got, want)
	}

	wantRoutes := []Route{
		{Method: "GET", Path: "/things", FunctionID: "ThingsFunction"},
		{Method: "GET", Path: "/things/{id}", FunctionID: "ThingsFunction"},
		{Method: "PUT", Path: "/things/{id}", FunctionID: "ThingsFunction"},
		{Method: "GET", Path: "/things/special", FunctionID: "SpecialFunction"},
		{Method: "ANY", Path: "/special/{proxy+}", FunctionID: "SpecialFunction"},
	}
	if !reflect.DeepEqual(tpl.Routes, wantRoutes) {
		t.Errorf("routes:\n got %+v\nwant %+v", tpl.Routes, wantRoutes)
	}
}

func TestCreateTableInput(t *testing.T) {
	tpl, err := ParseTemplate("testdata/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := tpl.CreateTableInput("ThingsTable", "things-test")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.TableName) != "things-test" || in.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("name %q billing %q", aws.ToString(in.TableName), in.BillingMode)
	}
	if got := keyString(in.KeySchema); got != "[pk:HASH sk:RANGE]" {
		t.Errorf("key schema %s", got)
	}
	if len(in.AttributeDefinitions) != 4 || in.AttributeDefinitions[3].AttributeType != types.ScalarAttributeTypeN {
		t.Errorf("attribute definitions %+v", in.AttributeDefinitions)
	}
	if len(in.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("GSIs %+v", in.GlobalSecondaryIndexes)
	}
	gsi := in.GlobalSecondaryIndexes[0]
	if aws.ToString(gsi.IndexName) != "gsi1" || keyString(gsi.KeySchema) != "[gsi1pk:HASH gsi1sk:RANGE]" ||
		gsi.Projection.ProjectionType != types.ProjectionTypeInclude ||
		!reflect.DeepEqual(gsi.Projection.NonKeyAttributes, []string{"name", "email"}) || gsi.ProvisionedThroughput != nil {
		t.Errorf("GSI %+v", gsi)
	}

	if _, err := tpl.CreateTableInput("Nope", "x"); err == nil {
		t.Error("CreateTableInput of an unknown table: no error")
	}
	if _, err := tpl.CreateTableInput("ThingsFunction", "x"); err == nil {
		t.Error("CreateTableInput of a function: no error")
	}
}

func writeTemplate(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseTemplateEdges(t *testing.T) {
	tests := []struct {
		desc  string
		input string
		want  struct {
			parseErr  string // substring; empty = no error
			tableErr  string // from CreateTableInput("T", "t"); empty = no error
			tableName string
			routes    []Route
		}
	}{
		{
			desc: "intrinsic in a key schema is reported by CreateTableInput only",
			input: `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: plain-name
      AttributeDefinitions: [{AttributeName: !Ref KeyName, AttributeType: S}]
      KeySchema:
        - AttributeName: !Ref KeyName
          KeyType: HASH
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        E: {Type: HttpApi, Properties: {Method: POST, Path: /x}}
`,
			want: struct {
				parseErr  string
				tableErr  string
				tableName string
				routes    []Route
			}{tableErr: "intrinsic !Ref", tableName: "plain-name", routes: []Route{{"POST", "/x", "F"}}},
		},
		{
			desc: "long-form intrinsics and JSON-style flow mappings parse",
			input: `{"Resources": {"T": {"Type": "AWS::DynamoDB::Table", "Properties": {
  "TableName": {"Fn::Sub": "${AWS::StackName}-t"},
  "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
  "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
  "TimeToLiveSpecification": {"Fn::If": ["C", {"AttributeName": "ttl", "Enabled": true}, {"Ref": "AWS::NoValue"}]}}}}}`,
			want: struct {
				parseErr  string
				tableErr  string
				tableName string
				routes    []Route
			}{tableErr: "intrinsic Fn::If"},
		},
		{
			desc: "an HttpApi event without Method and Path is the $default route",
			input: `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Catch: {Type: HttpApi}
        Q: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
`,
			want: struct {
				parseErr  string
				tableErr  string
				tableName string
				routes    []Route
			}{routes: []Route{{"ANY", "$default", "F"}}},
		},
		{
			desc: "an intrinsic route path is an error",
			input: `
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        E: {Type: HttpApi, Properties: {Method: GET, Path: !Sub "/${Stage}/x"}}
`,
			want: struct {
				parseErr  string
				tableErr  string
				tableName string
				routes    []Route
			}{parseErr: "Path: want a literal value, got the intrinsic !Sub"},
		},
		{
			desc:  "not YAML",
			input: "Resources: [\n",
			want: struct {
				parseErr  string
				tableErr  string
				tableName string
				routes    []Route
			}{parseErr: "parse"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tpl, err := ParseTemplate(writeTemplate(t, tc.input))
			if tc.want.parseErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want.parseErr) {
					t.Fatalf("ParseTemplate error = %v, want one containing %q", err, tc.want.parseErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tpl.Routes, tc.want.routes) {
				t.Errorf("routes = %+v, want %+v", tpl.Routes, tc.want.routes)
			}
			tb, ok := tpl.Table("T")
			if !ok {
				return
			}
			if tb.TableName != tc.want.tableName {
				t.Errorf("TableName = %q, want %q", tb.TableName, tc.want.tableName)
			}
			_, err = tpl.CreateTableInput("T", "t")
			switch {
			case tc.want.tableErr == "" && err != nil:
				t.Errorf("CreateTableInput: %v", err)
			case tc.want.tableErr != "" && (err == nil || !strings.Contains(err.Error(), tc.want.tableErr)):
				t.Errorf("CreateTableInput error = %v, want one containing %q", err, tc.want.tableErr)
			}
		})
	}
}
