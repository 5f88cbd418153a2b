package localstack

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an in-process S3-compatible server (gofakes3, in memory) that the
// service's own S3 client reaches path-style at Endpoint, as the deployed
// stack's bucket.
type S3 struct {
	srv *httptest.Server
}

// StartS3 starts the S3 server with the named buckets, on addr when given
// ("127.0.0.1:0" picks a free port).
func StartS3(addr string, buckets ...string) (*S3, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, fmt.Errorf("localstack: s3 bucket %s: %w", b, err)
		}
	}
	srv := httptest.NewUnstartedServer(gofakes3.New(backend).Server())
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("localstack: s3 listen: %w", err)
		}
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Config.ReadHeaderTimeout = 10e9
	srv.Start()
	return &S3{srv: srv}, nil
}

// Endpoint is the server's base URL.
func (s *S3) Endpoint() string { return s.srv.URL }

// Handler is the server's handler (for tests that look inside).
func (s *S3) Handler() http.Handler { return s.srv.Config.Handler }

// Stop stops the server.
func (s *S3) Stop() { s.srv.Close() }
