package testenv

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// MaxRecordedBody is how much of a request body an Exchange keeps; a longer
// one is marked Truncated (tests send bodies of several MiB on purpose).
const MaxRecordedBody = 1 << 20

// Exchange is one request the server answered, and the answer, as they
// crossed the wire.
type Exchange struct {
	Method        string
	URL           *url.URL
	RequestHeader http.Header
	RequestBody   []byte
	Truncated     bool // RequestBody holds only the first MaxRecordedBody bytes

	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte
}

// Exchanges records what a server answers (Middleware); it is safe for
// concurrent use.
type Exchanges struct {
	mu  sync.Mutex
	all []Exchange
}

// All returns a copy of everything recorded so far.
func (x *Exchanges) All() []Exchange {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]Exchange(nil), x.all...)
}

// Middleware wraps h so that every request and its answer are recorded.
func (x *Exchanges) Middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body []byte
		truncated := false
		if req.Body != nil {
			head, _ := io.ReadAll(io.LimitReader(req.Body, MaxRecordedBody+1))
			if len(head) > MaxRecordedBody {
				truncated = true
				req.Body = readCloser{io.MultiReader(bytes.NewReader(head), req.Body), req.Body}
				head = head[:MaxRecordedBody]
			} else {
				req.Body = io.NopCloser(bytes.NewReader(head))
			}
			body = head
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		ex := Exchange{Method: req.Method, URL: cloneURL(req.URL), RequestHeader: req.Header.Clone(),
			RequestBody: body, Truncated: truncated}
		h.ServeHTTP(rec, req)
		ex.Status, ex.ResponseHeader, ex.ResponseBody = rec.status, w.Header().Clone(), rec.body.Bytes()
		x.mu.Lock()
		x.all = append(x.all, ex)
		x.mu.Unlock()
	})
}

type readCloser struct {
	io.Reader
	io.Closer
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}

// recorder passes an answer through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}
