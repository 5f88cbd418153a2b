// Package client is a Go client of the service, generated from its OpenAPI
// description (api/openapi.yaml) by oapi-codegen; client.gen.go is generated,
// edit the description and run `go generate ./pkg/client` instead.
package client

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config cfg.yaml ../../api/openapi.yaml
