package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Events configures the event side (pkg/streams): where account events go
// and how mail is tagged for SES's feedback.
type Events struct {
	// Bus is the EventBridge bus account events go to (EVENT_BUS_NAME: a
	// name or ARN); empty publishes none.
	Bus string
	// Source is the events' source (EVENT_SOURCE, the stack's name).
	Source string
	// Endpoint is the EventBridge endpoint (EVENTBRIDGE_ENDPOINT): the
	// local stack's recorder; empty on AWS.
	Endpoint string
	// ConfigurationSet is the SES configuration set every mail is sent
	// with (SES_CONFIGURATION_SET), whose event destination reports bounces
	// and complaints; empty sends without one.
	ConfigurationSet string
	// DeadLetterURL is the SQS queue the stream function sends the mails
	// it gives up on to (STREAM_DLQ_URL); empty keeps only the log line.
	DeadLetterURL string
	// SQSEndpoint is the SQS endpoint (SQS_ENDPOINT), for tests.
	SQSEndpoint string
}

// EventSourcePattern is what EventBridge accepts as a source here: the
// stack's name (CloudFormation's stack-name rule, 1–128 characters).
var EventSourcePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.-]{0,127}$`)

func loadEvents(getenv func(string) string) (Events, error) {
	e := Events{
		Bus:              strings.TrimSpace(getenv("EVENT_BUS_NAME")),
		Source:           strings.TrimSpace(getenv("EVENT_SOURCE")),
		Endpoint:         strings.TrimSpace(getenv("EVENTBRIDGE_ENDPOINT")),
		ConfigurationSet: strings.TrimSpace(getenv("SES_CONFIGURATION_SET")),
		DeadLetterURL:    strings.TrimSpace(getenv("STREAM_DLQ_URL")),
		SQSEndpoint:      strings.TrimSpace(getenv("SQS_ENDPOINT")),
	}
	if e.Bus != "" && e.Source == "" {
		return e, fmt.Errorf("config: EVENT_SOURCE is required with EVENT_BUS_NAME")
	}
	if e.Source != "" && !EventSourcePattern.MatchString(e.Source) {
		return e, fmt.Errorf("config: EVENT_SOURCE %q must be a stack name (letters, digits, '.', '-', starting with a letter)", e.Source)
	}
	return e, nil
}
