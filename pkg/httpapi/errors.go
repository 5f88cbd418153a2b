// Package httpapi owns the HTTP plumbing shared by every endpoint: decoding
// API Gateway HTTP API (payload 2.0) events, the contract's error envelope,
// request ids and structured request logs, and the one check of a link the
// service stores and shows (WebURLProblem).
package httpapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is the one error type a handler returns to shape an answer. It is
// turned into the contract's envelope in exactly one place (Wrap); Cause is
// logged, never sent.
type Error struct {
	Status     int
	Code       string
	Message    string
	Fields     map[string][]string
	RetryAfter int // seconds; sets Retry-After when > 0
	Cause      error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// WithCause keeps an internal cause for the log.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Cause = err
	return &c
}

// DuplicateMessage is the seed-mandated sentence for a taken email or username.
const DuplicateMessage = "Someone already has that email/username. Could you try another?"

// BadRequest is a 400 with a sentence.
func BadRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
}

// Invalid is a 400 naming the fields at fault.
func Invalid(fields map[string][]string) *Error {
	msg := "Some fields are invalid."
	if len(fields) == 1 {
		for f, p := range fields {
			if len(p) > 0 {
				msg = fmt.Sprintf("%s: %s", f, p[0])
			}
		}
	}
	return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg, Fields: fields}
}

// Unauthorized is a 401; it always carries WWW-Authenticate.
func Unauthorized(msg string) *Error {
	if msg == "" {
		msg = "Request refused or access is not allowed."
	}
	return &Error{Status: http.StatusUnauthorized, Code: "unauthorized_access", Message: msg}
}

// Forbidden is a 403.
func Forbidden(msg string) *Error {
	if msg == "" {
		msg = "You do not have permission to perform this action."
	}
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: msg}
}

// NotFound is a 404.
func NotFound(msg string) *Error {
	if msg == "" {
		msg = "Not found."
	}
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: msg}
}

// PreconditionFailed is a 412 for a stale If-Match.
func PreconditionFailed() *Error {
	return &Error{Status: http.StatusPreconditionFailed, Code: "precondition_failed",
		Message: "The resource changed since you read it; fetch it again and retry."}
}

// Conflict is a 409: the request contradicts the resource's state, and
// repeating it will not help.
func Conflict(msg string) *Error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: msg}
}

// TooLarge is a 413.
func TooLarge(limit int) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
		Message: fmt.Sprintf("The request body is larger than %d bytes.", limit)}
}

// UnsupportedMediaType is a 415.
func UnsupportedMediaType() *Error {
	return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: "Send the body as JSON with Content-Type: application/json."}
}

// TooManyRequests is a 429 with Retry-After.
func TooManyRequests(msg string, retryAfter int) *Error {
	if retryAfter < 1 {
		retryAfter = 1
	}
	return &Error{Status: http.StatusTooManyRequests, Code: "too_many_requests", Message: msg, RetryAfter: retryAfter}
}

// Unavailable is a 503 with Retry-After, for a dependency that is throttling or down.
func Unavailable(cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "service_unavailable",
		Message: "The service is busy; please retry shortly.", RetryAfter: 2, Cause: cause}
}

// BadGateway is a 502 for an upstream (remote identity source) that failed.
func BadGateway(msg string, cause error) *Error {
	return &Error{Status: http.StatusBadGateway, Code: "bad_gateway", Message: msg, Cause: cause}
}

// Internal is a 500; its message is fixed so nothing internal leaks.
func Internal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error",
		Message: "Something went wrong on our side; it has been logged.", Cause: cause}
}

// AsError finds an *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
