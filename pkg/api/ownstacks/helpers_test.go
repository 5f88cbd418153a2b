// Package ownstacks_test holds the API tests that start stacks of their
// own (the conflict double's bursts): apart from pkg/api's suite, which
// shares one stack, so that go test runs the two side by side.
package ownstacks_test

import "github.com/example/accounts/pkg/testenv"

type importAnswer = testenv.ImportAnswer

var attr = testenv.Attr
