// Package app wires the service from its configuration: AWS clients, the
// token key, the logger. Every function's main and the local server build
// through it, so they run the same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/apikeys"
	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/groups"
	"github.com/example/accounts/pkg/images"
	"github.com/example/accounts/pkg/legacyauth"
	"github.com/example/accounts/pkg/mail"
	"github.com/example/accounts/pkg/metrics"
	"github.com/example/accounts/pkg/remote"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/streams"
	"github.com/example/accounts/pkg/users"
)

// Options lets tests and the local server replace parts.
type Options struct {
	// LogOutput receives the JSON log lines (default os.Stdout).
	LogOutput io.Writer
	// WrapDB wraps the DynamoDB client, to count requests or inject faults.
	WrapDB func(users.DB) users.DB
	// Mail replaces the SES sender.
	Mail mail.Sender
	// AWSOptions are applied to the AWS config.
	AWSOptions []func(*awsconfig.LoadOptions) error
	// DynamoAPIOptions are SDK middlewares for the DynamoDB client only
	// (e.g. ddbmetrics.Counter.Middleware).
	DynamoAPIOptions []func(*middleware.Stack) error
	// LegacyHTTP is the HTTP client of lazy migration's calls to the
	// legacy endpoint (tests trust their TLS server's certificate with it).
	LegacyHTTP *http.Client
	// WrapStreamDB wraps the stream handler's DynamoDB client (faults).
	WrapStreamDB func(streams.DB) streams.DB
}

// parts are what every function is built from.
type parts struct {
	log    *slog.Logger
	awsCfg aws.Config
	ddb    *dynamodb.Client
	db     users.DB
	sender mail.Sender
	sealer func(context.Context) (*secret.Sealer, error)
	// metrics writes the EMF lines (pkg/metrics) beside the logs.
	metrics *metrics.Recorder
}

func build(ctx context.Context, cfg config.Config, opts Options) (*parts, error) {
	out := opts.LogOutput
	if out == nil {
		out = os.Stdout
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))
	rec := metrics.New(out, cfg.MetricsNamespace)

	var loadOpts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" { // else the SDK's own chain (~/.aws/config) decides
		loadOpts = append(loadOpts, awsconfig.WithRegion(cfg.Region))
	}
	if (cfg.DynamoEndpoint != "" || cfg.SESEndpoint != "" || cfg.S3Endpoint != "" || cfg.Events.Endpoint != "") && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		// Local endpoints accept any credentials; do not go looking for real ones.
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	loadOpts = append(loadOpts, opts.AWSOptions...)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("app: aws config: %w", err)
	}

	ddb := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.DynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoEndpoint)
			// DynamoDB Local's CRC32 header does not always match its body.
			o.DisableValidateResponseChecksum = true
		}
		o.APIOptions = append(o.APIOptions, opts.DynamoAPIOptions...)
	})
	var db users.DB = ddb
	if opts.WrapDB != nil {
		db = opts.WrapDB(db)
	}
	sender := opts.Mail
	if sender == nil {
		sender = &mail.SES{From: cfg.MailFrom, ConfigurationSet: cfg.Events.ConfigurationSet, Client: ses.NewFromConfig(awsCfg, func(o *ses.Options) {
			if cfg.SESEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.SESEndpoint)
			}
		})}
	}
	// Every send is counted (MailsSent, MailsFailed), whoever sends.
	return &parts{log: log, awsCfg: awsCfg, ddb: ddb, db: db, sender: metrics.Sender{Sender: sender, Metrics: rec},
		sealer: tokenSealer(cfg, awsCfg), metrics: rec}, nil
}

// New builds the API from cfg.
func New(ctx context.Context, cfg config.Config, opts Options) (*api.API, error) {
	p, err := build(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	svc := users.New(p.db, cfg, p.sealer, p.log)
	if cfg.Migration.URL != "" {
		tok := remote.StaticToken(cfg.Migration.Token)
		if cfg.Migration.Token == "" {
			tok = remote.SecretToken(secretsmanager.NewFromConfig(p.awsCfg), cfg.Migration.TokenSecretARN)
		}
		svc.SetLegacy(legacyauth.New(cfg.Migration, tok, opts.LegacyHTTP))
	}
	svc.Metrics = p.metrics
	keys := apikeys.New(p.db, cfg.TableName, svc, p.log)
	svc.SetKeys(keys)
	grp := groups.New(p.db, cfg.TableName, svc, p.log)
	svc.SetVisibility(grp) // GET /api/users: the members of the caller's scopes
	return &api.API{Users: svc, Groups: grp, Keys: keys, Log: p.log,
		Remote: remoteSource(cfg, p.awsCfg), Images: imageStore(cfg, p.awsCfg)}, nil
}

// NewStream builds the handler of the table's stream (StreamFunction).
func NewStream(ctx context.Context, cfg config.Config, opts Options) (*streams.Handler, error) {
	p, err := build(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	h := &streams.Handler{DB: p.ddb, Table: cfg.TableName, Mail: p.sender, Log: p.log,
		Groups: groups.New(p.ddb, cfg.TableName, nil, p.log),
		Bus:    cfg.Events.Bus, Source: cfg.Events.Source,
		Open: func(ctx context.Context, sealed, aad string) (string, error) {
			sl, err := p.sealer(ctx)
			if err != nil {
				return "", err
			}
			return sl.Open(sealed, aad)
		}}
	if opts.WrapStreamDB != nil {
		h.DB = opts.WrapStreamDB(p.ddb)
	}
	if cfg.WordLists {
		h.Words = &users.WordLists{DB: h.DB, Table: cfg.TableName, Shards: cfg.CountShards}
	}
	if cfg.Events.Bus != "" {
		h.Events = eventbridge.NewFromConfig(p.awsCfg, func(o *eventbridge.Options) {
			if cfg.Events.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Events.Endpoint)
			}
		})
	}
	if img := imageStore(cfg, p.awsCfg); img != nil {
		h.Images = img
	}
	if cfg.Events.DeadLetterURL != "" {
		h.Dead = &streams.SQSDeadLetters{URL: cfg.Events.DeadLetterURL, Client: sqs.NewFromConfig(p.awsCfg, func(o *sqs.Options) {
			if cfg.Events.SQSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Events.SQSEndpoint)
			}
		})}
	}
	return h, nil
}

// NewFeedback builds the handler of SES's feedback (MailFeedbackFunction).
func NewFeedback(ctx context.Context, cfg config.Config, opts Options) (*streams.Feedback, error) {
	p, err := build(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	return &streams.Feedback{DB: p.ddb, Table: cfg.TableName, Log: p.log}, nil
}

// imageStore is the S3 store of uploaded images, or nil when no bucket is
// configured.
func imageStore(cfg config.Config, awsCfg aws.Config) *images.Store {
	if cfg.ImagesBucket == "" {
		return nil
	}
	return &images.Store{Bucket: cfg.ImagesBucket, Client: s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	})}
}

// remoteSource is the remote identity source, or nil when none is
// configured; its secret is read from Secrets Manager on first use.
func remoteSource(cfg config.Config, awsCfg aws.Config) api.IdentitySource {
	if cfg.Remote.URL == "" {
		return nil
	}
	tok := remote.StaticToken(cfg.Remote.Token)
	if cfg.Remote.Token == "" {
		tok = remote.SecretToken(secretsmanager.NewFromConfig(awsCfg), cfg.Remote.TokenSecretARN)
	}
	return remote.New(cfg.Remote, tok, nil)
}

// tokenSealer returns a loader of the token sealer: from TOKEN_KEY, or from
// the Secrets Manager secret, read once per cold start and only by the
// functions that seal or open tokens.
func tokenSealer(cfg config.Config, awsCfg aws.Config) func(context.Context) (*secret.Sealer, error) {
	if cfg.TokenKey != "" {
		s, err := secret.NewSealer([]byte(cfg.TokenKey))
		return func(context.Context) (*secret.Sealer, error) { return s, err }
	}
	var (
		mu     sync.Mutex
		sealer *secret.Sealer
	)
	return func(ctx context.Context) (*secret.Sealer, error) {
		mu.Lock()
		defer mu.Unlock()
		if sealer != nil {
			return sealer, nil
		}
		out, err := secretsmanager.NewFromConfig(awsCfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(cfg.TokenKeySecretARN)})
		if err != nil {
			return nil, fmt.Errorf("app: reading the token key: %w", err)
		}
		if out.SecretString == nil {
			return nil, errors.New("app: the token key secret has no string value")
		}
		s, err := secret.NewSealer([]byte(*out.SecretString))
		if err != nil {
			return nil, err
		}
		sealer = s
		return s, nil
	}
}

// FromEnv builds the API from the process environment, for a function's
// main. A missing setting ends the cold start with a clear JSON log line.
func FromEnv() *api.API {
	return fromEnv(New)
}

// StreamFromEnv builds the stream handler from the environment.
func StreamFromEnv() *streams.Handler { return fromEnv(NewStream) }

// FeedbackFromEnv builds the SES feedback handler from the environment.
func FeedbackFromEnv() *streams.Feedback { return fromEnv(NewFeedback) }

func fromEnv[T any](f func(context.Context, config.Config, Options) (*T, error)) *T {
	cfg, err := config.Load(os.Getenv)
	if err == nil {
		var t *T
		if t, err = f(context.Background(), cfg, Options{}); err == nil {
			return t
		}
	}
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("cold start failed", "cause", err.Error())
	os.Exit(1)
	return nil
}
