package localstack

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is what the local stack needs from a SAM / CloudFormation
// template: its DynamoDB tables and its HttpApi routes.
type Template struct {
	// Path is the file the template was read from.
	Path string
	// Tables are the AWS::DynamoDB::Table resources, in template order.
	Tables []Table
	// Routes are the HttpApi events of the AWS::Serverless::Function
	// resources, in template order.
	Routes []Route
}

// Table is an AWS::DynamoDB::Table resource.
type Table struct {
	// LogicalID is the resource's logical id in the template.
	LogicalID string
	// TableName is the literal TableName property; empty when it is absent
	// or an intrinsic such as !Sub (the caller then names the table).
	TableName string
	// KeySchema is the table's primary key: HASH, then RANGE if any.
	KeySchema []KeyElement
	// AttributeDefinitions types the key attributes of the table and its
	// indexes.
	AttributeDefinitions []AttributeDefinition
	// GlobalSecondaryIndexes are the table's GSIs, in template order.
	GlobalSecondaryIndexes []SecondaryIndex
	// LocalSecondaryIndexes are the table's LSIs, in template order.
	LocalSecondaryIndexes []SecondaryIndex
	// TimeToLive is the TimeToLiveSpecification; nil when there is none.
	TimeToLive *TimeToLive
	// StreamViewType is the StreamSpecification's view type; empty when
	// the table has no stream.
	StreamViewType string

	// problem is why the table cannot be built locally (an intrinsic where a
	// literal is needed); reported by CreateTableInput, not ParseTemplate, so
	// that one odd resource does not hide the rest of the template.
	problem error
}

// KeyElement is one entry of a KeySchema.
type KeyElement struct {
	// AttributeName is the key attribute.
	AttributeName string
	// KeyType is HASH (partition key) or RANGE (sort key).
	KeyType string
}

// AttributeDefinition is one entry of AttributeDefinitions.
type AttributeDefinition struct {
	// AttributeName is the attribute.
	AttributeName string
	// AttributeType is S, N or B.
	AttributeType string
}

// SecondaryIndex is a global or local secondary index.
type SecondaryIndex struct {
	// IndexName names the index.
	IndexName string
	// KeySchema is the index's key.
	KeySchema []KeyElement
	// Projection says which attributes the index copies.
	Projection Projection
}

// Projection is an index's Projection.
type Projection struct {
	// ProjectionType is ALL, KEYS_ONLY or INCLUDE; empty means KEYS_ONLY,
	// as in CloudFormation.
	ProjectionType string
	// NonKeyAttributes are the attributes INCLUDE copies.
	NonKeyAttributes []string
}

// TimeToLive is a table's TimeToLiveSpecification.
type TimeToLive struct {
	// AttributeName holds the expiry, in epoch seconds.
	AttributeName string
	// Enabled is whether TTL is on.
	Enabled bool
}

// Route is an HttpApi event of a function: the function FunctionID serves
// Method Path. Method is upper case, "ANY" for any method; Path is as
// written in the template, with {param} and {param+} segments; an event
// without a Path is the catch-all route, with Path "$default".
type Route struct {
	// Method is the HTTP method, or ANY.
	Method string
	// Path is the route path, or DefaultRoute.
	Path string
	// FunctionID is the logical id of the AWS::Serverless::Function.
	FunctionID string
}

// DefaultRoute is the Path of a catch-all route.
const DefaultRoute = "$default"

// Key is the route key API Gateway puts into the event, such as
// "GET /things/{id}", or "$default" for the catch-all route.
func (r Route) Key() string {
	if r.Path == DefaultRoute {
		return DefaultRoute
	}
	return r.Method + " " + r.Path
}

// Table returns the table with the given logical id.
func (t *Template) Table(logicalID string) (*Table, bool) {
	for i := range t.Tables {
		if t.Tables[i].LogicalID == logicalID {
			return &t.Tables[i], true
		}
	}
	return nil, false
}

// ParseTemplate reads a SAM / CloudFormation template (YAML or JSON). Short
// form intrinsics (!Ref, !Sub, !GetAtt, !If …) are accepted anywhere; they
// are only an error where a literal is needed to build a table or a route.
func ParseTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("localstack: parse %s: %w", path, err)
	}
	t := &Template{Path: path}
	root := deref(&doc)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("localstack: %s: the template is not a mapping", path)
	}
	resources := get(root, "Resources")
	if resources == nil {
		return t, nil
	}
	if resources.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("localstack: %s: Resources is not a mapping", path)
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id := resources.Content[i].Value
		res := deref(resources.Content[i+1])
		if res == nil || res.Kind != yaml.MappingNode {
			continue
		}
		typ, _ := scalar(get(res, "Type"))
		props := get(res, "Properties")
		switch typ {
		case "AWS::DynamoDB::Table":
			t.Tables = append(t.Tables, parseTable(id, props))
		case "AWS::Serverless::Function":
			routes, err := parseRoutes(id, props)
			if err != nil {
				return nil, fmt.Errorf("localstack: %s: %w", path, err)
			}
			t.Routes = append(t.Routes, routes...)
		}
	}
	return t, nil
}

func parseTable(id string, props *yaml.Node) Table {
	tb := Table{LogicalID: id}
	var p parser
	if props == nil || props.Kind != yaml.MappingNode {
		tb.problem = fmt.Errorf("table %s has no Properties mapping", id)
		return tb
	}
	if n := get(props, "TableName"); n != nil {
		tb.TableName, _ = scalar(n) // an intrinsic leaves it empty
	}
	tb.KeySchema = p.keySchema(get(props, "KeySchema"), "KeySchema")
	for i, n := range p.list(get(props, "AttributeDefinitions"), "AttributeDefinitions") {
		where := fmt.Sprintf("AttributeDefinitions[%d]", i)
		tb.AttributeDefinitions = append(tb.AttributeDefinitions, AttributeDefinition{
			AttributeName: p.str(n, "AttributeName", where),
			AttributeType: p.str(n, "AttributeType", where),
		})
	}
	tb.GlobalSecondaryIndexes = p.indexes(get(props, "GlobalSecondaryIndexes"), "GlobalSecondaryIndexes")
	tb.LocalSecondaryIndexes = p.indexes(get(props, "LocalSecondaryIndexes"), "LocalSecondaryIndexes")
	if n := get(props, "TimeToLiveSpecification"); n != nil {
		const where = "TimeToLiveSpecification"
		if p.mapping(n, where) {
			ttl := &TimeToLive{AttributeName: p.optStr(n, "AttributeName", where)}
			if e := get(n, "Enabled"); e != nil {
				s := p.scalarAt(e, where+".Enabled")
				b, err := strconv.ParseBool(s)
				if err != nil && p.err == nil {
					p.err = fmt.Errorf("%s.Enabled: %q is not a boolean", where, s)
				}
				ttl.Enabled = b
			}
			tb.TimeToLive = ttl
		}
	}
	if n := get(props, "StreamSpecification"); n != nil {
		const where = "StreamSpecification"
		if p.mapping(n, where) {
			tb.StreamViewType = p.str(n, "StreamViewType", where)
		}
	}
	if len(tb.KeySchema) == 0 && p.err == nil {
		p.err = fmt.Errorf("KeySchema is missing")
	}
	if p.err != nil {
		tb.problem = fmt.Errorf("table %s: %w", id, p.err)
	}
	return tb
}

func parseRoutes(fnID string, props *yaml.Node) ([]Route, error) {
	events := get(props, "Events")
	if events == nil || events.Kind != yaml.MappingNode {
		return nil, nil
	}
	var routes []Route
	for i := 0; i+1 < len(events.Content); i += 2 {
		name := events.Content[i].Value
		ev := deref(events.Content[i+1])
		if ev == nil || ev.Kind != yaml.MappingNode {
			continue
		}
		if typ, _ := scalar(get(ev, "Type")); typ != "HttpApi" {
			continue
		}
		where := fmt.Sprintf("function %s event %s", fnID, name)
		r := Route{Method: "ANY", Path: DefaultRoute, FunctionID: fnID}
		ep := get(ev, "Properties")
		if n := get(ep, "Method"); n != nil {
			m, err := scalar(n)
			if err != nil {
				return nil, fmt.Errorf("%s: Method: %w", where, err)
			}
			r.Method = strings.ToUpper(m)
			if r.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
				r.Method = "ANY"
			}
		}
		if n := get(ep, "Path"); n != nil {
			path, err := scalar(n)
			if err != nil {
				return nil, fmt.Errorf("%s: Path: %w", where, err)
			}
			if !strings.HasPrefix(path, "/") {
				return nil, fmt.Errorf("%s: Path %q does not start with /", where, path)
			}
			r.Path = path
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// parser collects the first error met while reading a table, so that the
// reading code stays linear.
type parser struct{ err error }

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf(format, args...)
	}
}

func (p *parser) mapping(n *yaml.Node, where string) bool {
	if n = deref(n); n == nil || n.Kind != yaml.MappingNode || isIntrinsic(n) {
		p.fail("%s: want a literal mapping, got %s", where, describe(n))
		return false
	}
	return true
}

func (p *parser) list(n *yaml.Node, where string) []*yaml.Node {
	if n = deref(n); n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode || isIntrinsic(n) {
		p.fail("%s: want a literal list, got %s", where, describe(n))
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, deref(c))
	}
	return out
}

func (p *parser) scalarAt(n *yaml.Node, where string) string {
	s, err := scalar(n)
	if err != nil {
		p.fail("%s: %w", where, err)
	}
	return s
}

func (p *parser) str(m *yaml.Node, key, where string) string {
	if !p.mapping(m, where) {
		return ""
	}
	n := get(m, key)
	if n == nil {
		p.fail("%s.%s is missing", where, key)
		return ""
	}
	return p.scalarAt(n, where+"."+key)
}

func (p *parser) optStr(m *yaml.Node, key, where string) string {
	n := get(m, key)
	if n == nil {
		return ""
	}
	return p.scalarAt(n, where+"."+key)
}

func (p *parser) keySchema(n *yaml.Node, where string) []KeyElement {
	var out []KeyElement
	for i, e := range p.list(n, where) {
		w := fmt.Sprintf("%s[%d]", where, i)
		out = append(out, KeyElement{
			AttributeName: p.str(e, "AttributeName", w),
			KeyType:       p.str(e, "KeyType", w),
		})
	}
	return out
}

func (p *parser) indexes(n *yaml.Node, where string) []SecondaryIndex {
	var out []SecondaryIndex
	for i, e := range p.list(n, where) {
		w := fmt.Sprintf("%s[%d]", where, i)
		ix := SecondaryIndex{
			IndexName: p.str(e, "IndexName", w),
			KeySchema: p.keySchema(get(e, "KeySchema"), w+".KeySchema"),
		}
		if pr := get(e, "Projection"); pr != nil && p.mapping(pr, w+".Projection") {
			ix.Projection.ProjectionType = p.optStr(pr, "ProjectionType", w+".Projection")
			for j, a := range p.list(get(pr, "NonKeyAttributes"), w+".Projection.NonKeyAttributes") {
				ix.Projection.NonKeyAttributes = append(ix.Projection.NonKeyAttributes,
					p.scalarAt(a, fmt.Sprintf("%s.Projection.NonKeyAttributes[%d]", w, j)))
			}
		}
		out = append(out, ix)
	}
	return out
}

// deref follows documents and aliases to the node that holds the value.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			n = n.Content[0]
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// isIntrinsic reports whether n is a CloudFormation intrinsic: a short-form
// tag (!Ref, !Sub …) or a one-key mapping {Ref: …} / {Fn::…: …}.
func isIntrinsic(n *yaml.Node) bool {
	n = deref(n)
	if n == nil {
		return false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// scalar returns n's literal value, or an error naming the intrinsic.
func scalar(n *yaml.Node) (string, error) {
	n = deref(n)
	if n == nil {
		return "", fmt.Errorf("missing value")
	}
	if n.Kind != yaml.ScalarNode || isIntrinsic(n) {
		return "", fmt.Errorf("want a literal value, got %s", describe(n))
	}
	return n.Value, nil
}

func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil:
		return "nothing"
	case strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!"):
		return "the intrinsic " + n.Tag
	case isIntrinsic(n):
		return "the intrinsic " + n.Content[0].Value
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("the scalar %q", n.Value)
	}
}
