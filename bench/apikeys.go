package main

import (
	"fmt"
)

// The API key operations (pkg/apikeys): a key's creation, and GET
// /api/users/me authenticated with it, the first time (which records
// last_used_at: the one write a key's use makes, at most once a minute)
// and again within the minute (the read alone: one BatchGetItem of the
// user and the key).
const (
	apiKeyCreate    = "API key: create"
	apiKeyFirstRead = "API key: GET /api/users/me (first use, records last_used_at)"
	apiKeyRead      = "API key: GET /api/users/me"
)

func apiKeySpecs() []opSpec {
	me := func(a *account) request {
		return request{method: "GET", path: "/api/users/me", authorization: "Api-Key " + a.apiKey, want: 200}
	}
	return []opSpec{
		{name: apiKeyCreate, route: "POST /api/users/{uuid}/apikeys", function: "CreateApiKeyFunction",
			req: func(a *account) request {
				return request{method: "POST", path: "/api/users/" + a.id + "/apikeys", token: a.token, body: map[string]any{"name": "bench"}, want: 201}
			},
			after: func(a *account, c call) error {
				if a.apiKey = field(c.body, "key"); a.apiKey == "" {
					return fmt.Errorf("the create answered no key: %s", c.body)
				}
				return nil
			}},
		{name: apiKeyFirstRead, route: "GET /api/users/me", function: "MeFunction", req: me},
		{name: apiKeyRead, route: "GET /api/users/me", function: "MeFunction", req: me},
	}
}

// withAPIKeys puts the API key operations after the token-authenticated
// GET /api/users/me (the account's token is current there).
func withAPIKeys(specs []opSpec) []opSpec {
	for i, s := range specs {
		if s.name == "GET /api/users/me" {
			out := append([]opSpec{}, specs[:i+1]...)
			out = append(out, apiKeySpecs()...)
			return append(out, specs[i+1:]...)
		}
	}
	return append(specs, apiKeySpecs()...)
}
