// Command local runs the whole service on this machine (`make run`):
// DynamoDB Local and the local SES from tools/, the table made from
// template.yaml's own definition, and every route of template.yaml served on
// http://127.0.0.1:$PORT by the same handlers the Lambda binaries run.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/streams"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Stdout); err != nil {
		log.Error("local stack stopped", "cause", err.Error())
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func port(k, def string) (int, error) {
	p, err := strconv.Atoi(envOr(k, def))
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("%s must be a port number", k)
	}
	return p, nil
}

// run serves until ctx ends; what to open is printed to out.
func run(ctx context.Context, log *slog.Logger, out io.Writer) error {
	root, err := localstack.Root()
	if err != nil {
		return err
	}
	apiPort, err := port("PORT", "3000")
	if err != nil {
		return err
	}
	dataDir := envOr("LOCAL_DATA_DIR", filepath.Join(root, ".local"))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}

	dynamoEndpoint := os.Getenv("DYNAMODB_ENDPOINT")
	sesEndpoint := os.Getenv("SES_ENDPOINT")
	if dynamoEndpoint == "" || sesEndpoint == "" {
		if err := localstack.EnsureTools(ctx, root); err != nil {
			return err
		}
	}
	if dynamoEndpoint == "" {
		p, err := port("DYNAMODB_PORT", "8000")
		if err != nil {
			return err
		}
		proc, err := localstack.StartDynamoDB(ctx, localstack.DynamoOptions{Port: p, DataDir: filepath.Join(dataDir, "dynamodb"), Root: root})
		if err != nil {
			return err
		}
		defer proc.Stop()
		dynamoEndpoint = proc.Endpoint()
	}
	if sesEndpoint == "" {
		p, err := port("SES_PORT", "8005")
		if err != nil {
			return err
		}
		proc, err := localstack.StartSES(ctx, localstack.SESOptions{Port: p, Root: root})
		if err != nil {
			return err
		}
		defer proc.Stop()
		sesEndpoint = proc.Endpoint()
	}

	// Uploaded images go to an in-process S3 (in memory: they do not
	// outlive the run), unless S3_ENDPOINT names one already running.
	s3Endpoint := os.Getenv("S3_ENDPOINT")
	bucket := envOr("IMAGES_BUCKET", "images")
	if s3Endpoint == "" {
		p, err := port("S3_PORT", "8006")
		if err != nil {
			return err
		}
		srv, err := localstack.StartS3("127.0.0.1:"+strconv.Itoa(p), bucket)
		if err != nil {
			return err
		}
		defer srv.Stop()
		s3Endpoint = srv.Endpoint()
	}

	// Account events go to a local EventBridge that keeps and shows them.
	evPort, err := port("EVENTS_PORT", "8007")
	if err != nil {
		return err
	}
	bus, err := localstack.StartEventBus("127.0.0.1:" + strconv.Itoa(evPort))
	if err != nil {
		return err
	}
	defer bus.Stop()

	key, err := tokenKey(filepath.Join(dataDir, "token.key"))
	if err != nil {
		return err
	}
	defaults := map[string]string{
		"TABLE_NAME":        "users",
		"MAIL_FROM":         "no-reply@example.com",
		"TOKEN_KEY":         key,
		"AWS_REGION":        "us-east-1",
		"DYNAMODB_ENDPOINT": dynamoEndpoint,
		"SES_ENDPOINT":      sesEndpoint,
		"S3_ENDPOINT":       s3Endpoint,
		"IMAGES_BUCKET":     bucket,
		// Links in mail and the user's url point here, whatever Host a
		// request carries.
		"PUBLIC_URL":           "http://127.0.0.1:" + strconv.Itoa(apiPort),
		"EVENT_BUS_NAME":       "local-accounts",
		"EVENT_SOURCE":         "accounts-local",
		"EVENTBRIDGE_ENDPOINT": bus.Endpoint(),
	}
	cfg, err := config.Load(func(k string) string {
		if k == "DYNAMODB_ENDPOINT" || k == "SES_ENDPOINT" || k == "S3_ENDPOINT" || k == "IMAGES_BUCKET" || k == "EVENTBRIDGE_ENDPOINT" {
			return defaults[k]
		}
		return envOr(k, defaults[k])
	})
	if err != nil {
		return err
	}

	tpl, err := localstack.ParseTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		return err
	}
	db := dynamodb.New(dynamodb.Options{
		Region: cfg.Region, BaseEndpoint: aws.String(dynamoEndpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	if err := localstack.EnsureTable(ctx, db, tpl, "UsersTable", cfg.TableName); err != nil {
		return fmt.Errorf("%w (the data in %s was made by another version of template.yaml: delete that folder to start afresh)", err, filepath.Join(dataDir, "dynamodb"))
	}
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	// The stream function over DynamoDB Local's stream, as the event
	// source mapping runs it on AWS: mail, events, the deletion cascade.
	sh, err := app.NewStream(ctx, cfg, app.Options{})
	if err != nil {
		return err
	}
	dlq := &localstack.Queue{}
	sh.Dead = dlq
	arn, err := localstack.StreamARN(ctx, db, cfg.TableName, "NEW_AND_OLD_IMAGES")
	if err != nil {
		return err
	}
	poller := &localstack.StreamPoller{Client: localstack.StreamsClient(dynamoEndpoint, cfg.Region), StreamARN: arn,
		Handler: sh.Handle, Convert: streams.FromSDK, Filter: streams.Accepts, DLQ: dlq, Log: log}
	poller.Start(ctx)
	defer poller.Stop()
	if email := os.Getenv("ADMIN_EMAIL"); email != "" {
		u, err := a.Users.EnsureStaff(ctx, email, os.Getenv("ADMIN_PASSWORD"), true, false)
		if err != nil {
			return fmt.Errorf("ADMIN_EMAIL/ADMIN_PASSWORD: %w", err)
		}
		log.Info("staff account ready", "email", u.Email, "uuid", u.UUID)
	}
	h, err := localstack.NewServer(tpl.Routes, app.Handlers(a), localstack.ServerOptions{Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "API:    http://%s\nPages:  http://%s/account/login (sign up at /account/signup)\nInbox:  %s (JSON at %s/store)\nEvents: %s (JSON at %s/events)\nDynamoDB Local: %s (its stream runs the stream function)\nStop with Ctrl-C.\n",
		ln.Addr(), ln.Addr(), sesEndpoint, sesEndpoint, bus.Endpoint(), bus.Endpoint(), dynamoEndpoint)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// tokenKey reads the local token key, making it on first run.
func tokenKey(path string) (string, error) {
	if v := os.Getenv("TOKEN_KEY"); v != "" {
		return v, nil
	}
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	s := hex.EncodeToString(k)
	return s, os.WriteFile(path, []byte(s), 0o600)
}
