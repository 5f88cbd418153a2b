package metrics_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// emfUnits are the Unit values the EMF specification allows.
var emfUnits = []string{"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
	"Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
	"Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
	"Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}

// validateEMF checks one log line against the embedded metric format
// specification: a single JSON object whose _aws member holds a Timestamp
// (epoch milliseconds) and CloudWatchMetrics, an array of directives, each
// with a Namespace (1 to 1024 characters), Dimensions (an array of dimension
// sets of at most 30 keys, each a string member of the root) and Metrics
// (at most 100, each a Name of 1 to 1024 characters that is a numeric
// member of the root, or an array of at most 100 numbers, and a Unit of
// the specification's list, if any). It returns the metrics' values.
func validateEMF(line []byte) (map[string]float64, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the object")
	}
	aws, ok := root["_aws"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no _aws object")
	}
	for k := range aws {
		if k != "Timestamp" && k != "CloudWatchMetrics" && k != "LogGroupName" && k != "LogStreamName" {
			return nil, fmt.Errorf("_aws has an unknown member %q", k)
		}
	}
	ts, ok := aws["Timestamp"].(json.Number)
	if !ok {
		return nil, fmt.Errorf("_aws.Timestamp is not a number")
	}
	if n, err := ts.Int64(); err != nil || n < 1e12 || n > 1e14 {
		return nil, fmt.Errorf("_aws.Timestamp %s is not epoch milliseconds", ts)
	}
	dirs, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(dirs) == 0 {
		return nil, fmt.Errorf("_aws.CloudWatchMetrics is not a non-empty array")
	}
	values := map[string]float64{}
	for _, d := range dirs {
		dir, ok := d.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a directive is not an object")
		}
		for k := range dir {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				return nil, fmt.Errorf("a directive has an unknown member %q", k)
			}
		}
		ns, ok := dir["Namespace"].(string)
		if !ok || ns == "" || len(ns) > 1024 || strings.HasPrefix(ns, "AWS/") {
			return nil, fmt.Errorf("Namespace %v", dir["Namespace"])
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok {
			return nil, fmt.Errorf("Dimensions is not an array")
		}
		for _, s := range sets {
			set, ok := s.([]any)
			if !ok || len(set) > 30 {
				return nil, fmt.Errorf("a dimension set is not an array of at most 30 keys")
			}
			for _, k := range set {
				name, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("a dimension key is not a string")
				}
				if _, ok := root[name].(string); !ok {
					return nil, fmt.Errorf("dimension %q is not a string member of the root", name)
				}
			}
		}
		ms, ok := dir["Metrics"].([]any)
		if !ok || len(ms) == 0 || len(ms) > 100 {
			return nil, fmt.Errorf("Metrics is not an array of 1 to 100 definitions")
		}
		for _, m := range ms {
			def, ok := m.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("a metric definition is not an object")
			}
			name, ok := def["Name"].(string)
			if !ok || name == "" || len(name) > 1024 {
				return nil, fmt.Errorf("metric Name %v", def["Name"])
			}
			if u, ok := def["Unit"]; ok && !slices.Contains(emfUnits, fmt.Sprint(u)) {
				return nil, fmt.Errorf("metric %s: Unit %v is not one of the specification's", name, u)
			}
			switch v := root[name].(type) {
			case json.Number:
				f, _ := v.Float64()
				values[name] = f
			case []any:
				if len(v) > 100 {
					return nil, fmt.Errorf("metric %s has over 100 values", name)
				}
				for _, x := range v {
					n, ok := x.(json.Number)
					if !ok {
						return nil, fmt.Errorf("metric %s: a value is not a number", name)
					}
					f, _ := n.Float64()
					values[name] += f
				}
			default:
				return nil, fmt.Errorf("metric %s is not a numeric member of the root", name)
			}
		}
	}
	return values, nil
}

// emfLines returns the EMF lines among logs, each validated, with their
// namespaces' metric values summed by name.
func emfLines(logs string) (sums map[string]float64, bad []error) {
	sums = map[string]float64{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"_aws"`) {
			continue
		}
		v, err := validateEMF([]byte(line))
		if err != nil {
			bad = append(bad, fmt.Errorf("%v: %s", err, line))
			continue
		}
		for k, n := range v {
			sums[k] += n
		}
	}
	return sums, bad
}
