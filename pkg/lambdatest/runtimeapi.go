package lambdatest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// Runtime API headers (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).
const (
	headerRequestID          = "Lambda-Runtime-Aws-Request-Id"
	headerDeadlineMs         = "Lambda-Runtime-Deadline-Ms"
	headerInvokedFunctionArn = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID            = "Lambda-Runtime-Trace-Id"
	headerErrorType          = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody         = "Lambda-Runtime-Function-Error-Body"
	headerExtensionName      = "Lambda-Extension-Name"
	headerExtensionID        = "Lambda-Extension-Identifier"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	const runtime = "/2018-06-01/runtime"
	mux.HandleFunc("GET "+runtime+"/invocation/next", s.handleNext)
	mux.HandleFunc("POST "+runtime+"/invocation/{id}/response", s.handleResponse)
	mux.HandleFunc("POST "+runtime+"/invocation/{id}/error", s.handleInvocationError)
	mux.HandleFunc("POST "+runtime+"/init/error", s.handleInitError)
	const extension = "/2020-01-01/extension"
	mux.HandleFunc("POST "+extension+"/register", s.handleExtensionRegister)
	mux.HandleFunc("GET "+extension+"/event/next", s.handleExtensionNext)
	return mux
}

// handleNext blocks until an event is queued and hands it to the runtime.
func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	f := s.function()
	if f == nil {
		apiError(w, http.StatusForbidden, "Runtime.NoFunction", "no function is running on this server")
		return
	}
	f.markFirstPoll()

	// Asking for the next event ends the previous invocation.
	f.mu.Lock()
	prev := f.inflight
	f.inflight = nil
	f.mu.Unlock()
	if prev != nil {
		prev.finish(Result{RequestID: prev.id}, fmt.Errorf("lambdatest: runtime asked for the next event without answering %s", prev.id))
	}

	// Like Lambda, never answer a stopping function: the request ends when
	// the process (and so its connection) goes away.
	var inv *invocation
	select {
	case inv = <-f.queue:
	case <-r.Context().Done():
		return
	case <-f.exited:
		return
	case <-s.closed:
		return
	}

	now := time.Now()
	f.mu.Lock()
	inv.handedOff = now
	inv.deadline = now.Add(f.cfg.Timeout)
	f.inflight = inv
	f.mu.Unlock()
	close(inv.handed)

	h := w.Header()
	h.Set(headerRequestID, inv.id)
	h.Set(headerDeadlineMs, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set(headerInvokedFunctionArn, f.ARN())
	h.Set(headerTraceID, inv.traceID)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(inv.event)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.event)
}

// handleResponse records the answer to an invocation. A streamed response
// that failed midway carries its error in the Lambda-Runtime-Function-Error-*
// trailers.
func (s *Server) handleResponse(w http.ResponseWriter, r *http.Request) {
	f, inv := s.answering(w, r)
	if inv == nil {
		return
	}
	body, tooLarge, err := readPayload(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the response body: "+err.Error())
		inv.finish(Result{RequestID: inv.id}, fmt.Errorf("lambdatest: reading the response of %s: %w", inv.id, err))
		return
	}
	res := Result{RequestID: inv.id, ContentType: r.Header.Get("Content-Type")}
	f.complete(inv, &res)

	if tooLarge {
		msg := fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxPayloadBytes)
		res.Error = &ErrorPayload{Message: msg, Type: "Function.ResponseSizeTooLarge"}
		res.Payload, _ = json.Marshal(res.Error)
		inv.finish(res, nil)
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", msg)
		return
	}
	if typ := r.Trailer.Get(headerErrorType); typ != "" {
		raw, _ := base64.StdEncoding.DecodeString(r.Trailer.Get(trailerErrorBody))
		res.Payload = raw
		res.Error = parseErrorPayload(raw, typ)
	} else {
		res.Payload = body
	}
	inv.finish(res, nil)
	accepted(w)
}

// handleInvocationError records a handler error as the invocation's answer.
func (s *Server) handleInvocationError(w http.ResponseWriter, r *http.Request) {
	f, inv := s.answering(w, r)
	if inv == nil {
		return
	}
	body, _, err := readPayload(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the error body: "+err.Error())
		inv.finish(Result{RequestID: inv.id}, fmt.Errorf("lambdatest: reading the error of %s: %w", inv.id, err))
		return
	}
	res := Result{RequestID: inv.id, ContentType: r.Header.Get("Content-Type"), Payload: body}
	f.complete(inv, &res)
	res.Error = parseErrorPayload(body, r.Header.Get(headerErrorType))
	inv.finish(res, nil)
	accepted(w)
}

// handleInitError records a failed initialisation.
func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	f := s.function()
	if f == nil {
		apiError(w, http.StatusForbidden, "Runtime.NoFunction", "no function is running on this server")
		return
	}
	body, _, err := readPayload(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the error body: "+err.Error())
		return
	}
	f.failInit(*parseErrorPayload(body, r.Header.Get(headerErrorType)))
	accepted(w)
}

// handleExtensionRegister accepts an internal extension, which registers for
// no events: aws-lambda-go does this to have Lambda send SIGTERM at shutdown.
func (s *Server) handleExtensionRegister(w http.ResponseWriter, r *http.Request) {
	f := s.function()
	if f == nil {
		apiError(w, http.StatusForbidden, "Extension.NoFunction", "no function is running on this server")
		return
	}
	if r.Header.Get(headerExtensionName) == "" {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "missing "+headerExtensionName+" header")
		return
	}
	var req struct {
		Events []string `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "decoding the registration: "+err.Error())
		return
	}
	if len(req.Events) > 0 {
		apiError(w, http.StatusBadRequest, "Extension.UnsupportedEvents", "lambdatest supports extensions that register for no events")
		return
	}
	f.mu.Lock()
	f.extRegistered = true
	f.mu.Unlock()
	w.Header().Set(headerExtensionID, newRequestID())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"functionName":    f.cfg.Name,
		"functionVersion": "$LATEST",
		"handler":         filepath.Base(f.cfg.Binary),
	})
}

// handleExtensionNext blocks: an extension registered for no events never
// receives one.
func (s *Server) handleExtensionNext(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(headerExtensionID) == "" {
		apiError(w, http.StatusForbidden, "Extension.MissingExtensionIdentifier", "missing "+headerExtensionID+" header")
		return
	}
	f := s.function()
	if f == nil {
		apiError(w, http.StatusForbidden, "Extension.NoFunction", "no function is running on this server")
		return
	}
	select {
	case <-r.Context().Done():
	case <-f.exited:
	case <-s.closed:
	}
}

// answering finds the in-flight invocation a /response or /error request
// is for, answering the request itself when there is none.
func (s *Server) answering(w http.ResponseWriter, r *http.Request) (*Function, *invocation) {
	f := s.function()
	if f == nil {
		apiError(w, http.StatusForbidden, "Runtime.NoFunction", "no function is running on this server")
		return nil, nil
	}
	id := r.PathValue("id")
	f.mu.Lock()
	inv := f.inflight
	f.mu.Unlock()
	if inv == nil || inv.id != id {
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in progress with request ID "+id)
		return nil, nil
	}
	return f, inv
}

// complete ends inv as the in-flight invocation and sets res.Duration.
func (f *Function) complete(inv *invocation, res *Result) {
	now := time.Now()
	f.mu.Lock()
	if f.inflight == inv {
		f.inflight = nil
	}
	res.Duration = now.Sub(inv.handedOff)
	f.mu.Unlock()
}

// readPayload reads a request body up to MaxPayloadBytes; tooLarge reports
// that there was more (the rest is drained so that trailers can be read).
func readPayload(r *http.Request) (body []byte, tooLarge bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r.Body, MaxPayloadBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(body) > MaxPayloadBytes {
		_, err = io.Copy(io.Discard, r.Body)
		return nil, true, err
	}
	return body, false, nil
}

// parseErrorPayload reads an error document; anything that is not one
// becomes the message of an error of type typ (or "Unknown").
func parseErrorPayload(body []byte, typ string) *ErrorPayload {
	var p ErrorPayload
	if err := json.Unmarshal(body, &p); err != nil || (p.Message == "" && p.Type == "") {
		p = ErrorPayload{Message: string(body)}
	}
	if p.Type == "" {
		p.Type = typ
	}
	if p.Type == "" {
		p.Type = "Unknown"
	}
	return &p
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`+"\n")
}

func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorPayload{Message: msg, Type: typ})
}
