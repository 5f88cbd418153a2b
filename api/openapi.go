// Package openapi holds the service's OpenAPI 3.1 description,
// api/openapi.yaml, the one source of truth for its routes, answers and the
// generated client (pkg/client); GET /api/schema serves it.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// YAML is api/openapi.yaml as written.
//
//go:embed openapi.yaml
var YAML []byte

// JSON is the same description as JSON (YAML anchors and merges resolved).
func JSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(YAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return json.Marshal(doc)
}
