package main

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ses"
	"github.com/aws/smithy-go/middleware"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/localstack"
	"github.com/example/accounts/pkg/testenv"
)

// stack is the service running in process on DynamoDB Local and the local
// SES (pkg/testenv), with the AWS calls and each handler call timed.
type stack struct {
	env   *testenv.Env
	tpl   *localstack.Template
	calls *awsCalls
	// streamCalls are the stream function's DynamoDB calls (its model off
	// unless a part prices them).
	streamCalls *awsCalls
	server      *httptest.Server
	client      *http.Client

	mu   sync.Mutex
	last handlerCall // the latest handler call, read after each request
}

// rateLimits keep the per-IP limits on, as in production, so that their
// counters cost what they cost there, with counts no benchmark reaches
// (testenv turns them off: every request comes from 127.0.0.1).
var rateLimits = map[string]string{
	"IP_RATE_LIMIT":     "1",
	"RATE_LIMIT_SIGNUP": "1000000/1h",
	"RATE_LIMIT_LOGIN":  "1000000/5m",
	"RATE_LIMIT_RESEND": "1000000/1h",
	"RATE_LIMIT_RESET":  "1000000/1h",

	"RATE_LIMIT_CHANGE_EMAIL":      "1000000/1h",
	"RATE_LIMIT_CHANGE_EMAIL_USER": "1000000/1h",
	"RATE_LIMIT_MAIL_ADDRESS":      "1000000/1h",
}

// startStack starts testenv with timing middlewares on the AWS clients, and
// serves the template's routes with the same router testenv uses
// (localstack.NewServer) over handlers wrapped in a timer.
func startStack(ctx context.Context, root string) (*stack, error) {
	return startStackWith(ctx, root, nil)
}

// startStackWith is startStack with more configuration variables; its
// stream function's DynamoDB calls are priced apart (stack.streamCalls, the
// model off until a part turns it on).
func startStackWith(ctx context.Context, root string, vars map[string]string) (*stack, error) {
	calls, streamCalls := &awsCalls{}, &awsCalls{}
	env, err := testenv.Start(ctx, testenv.Options{Env: withVars(rateLimits, vars), App: app.Options{
		DynamoAPIOptions: []func(*middleware.Stack) error{calls.dynamoMiddleware, keyMiddleware},
		AWSOptions:       []func(*awsconfig.LoadOptions) error{awsconfig.WithAPIOptions([]func(*middleware.Stack) error{calls.sesMiddleware})},
	}, StreamDynamoAPIOptions: []func(*middleware.Stack) error{streamCalls.dynamoMiddleware}})
	if err != nil {
		return nil, err
	}
	st := &stack{env: env, calls: calls, streamCalls: streamCalls, client: &http.Client{Timeout: 60 * time.Second}}
	if st.tpl, err = localstack.ParseTemplate(filepath.Join(root, "template.yaml")); err != nil {
		env.Close()
		return nil, err
	}
	if calls.model, err = newTxModel(env.DB, st.tpl, "UsersTable", env.Config.TableName); err != nil {
		env.Close()
		return nil, err
	}
	streamCalls.model = calls.model
	calls.modelOn.Store(true)
	handlers := map[string]httpapi.LambdaHandler{}
	for id, h := range app.Handlers(env.API) {
		handlers[id] = st.timed(h)
	}
	h, err := localstack.NewServer(st.tpl.Routes, handlers, localstack.ServerOptions{})
	if err != nil {
		env.Close()
		return nil, err
	}
	st.server = httptest.NewServer(h)
	return st, nil
}

// withVars is base with vars added (vars win).
func withVars(base, vars map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, vars)
	return out
}

func (st *stack) close() {
	if st.server != nil {
		st.server.Close()
	}
	st.env.Close()
}

// handlerCall is one call of a handler in process: its duration, and the
// time its AWS calls took meanwhile.
type handlerCall struct {
	handler  time.Duration
	ddbWire  time.Duration // DynamoDB round trips on the wire
	ddbSDK   time.Duration // DynamoDB SDK calls, marshalling and signing included
	sesWire  time.Duration
	sesSends int64
}

// timed wraps a handler to record a handlerCall. Requests are made one at a
// time, so the AWS time accumulated during the call is the handler's own.
func (st *stack) timed(h httpapi.LambdaHandler) httpapi.LambdaHandler {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		before := st.calls.snapshot()
		t := time.Now()
		out, err := h(ctx, ev)
		d := time.Since(t)
		after := st.calls.snapshot()
		st.mu.Lock()
		st.last = handlerCall{
			handler:  d - (after.overhead - before.overhead),
			ddbWire:  after.ddbWire - before.ddbWire,
			ddbSDK:   after.ddbSDK - before.ddbSDK,
			sesWire:  after.sesWire - before.sesWire,
			sesSends: after.sesSends - before.sesSends,
		}
		st.mu.Unlock()
		return out, err
	}
}

func (st *stack) lastCall() handlerCall {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.last
}

// awsCalls accumulates the time spent in AWS calls and the DynamoDB
// request units they consume as DynamoDB on demand bills them: reads and
// single-item writes as DynamoDB Local reports them, transactions priced by
// txModel.
type awsCalls struct {
	ddbWire, ddbSDK, sesWire, sesSends atomic.Int64
	queryItems                         atomic.Int64 // items read by Queries
	// overhead is time the bench itself spent inside a handler (reading
	// items to price a transaction), to subtract from its timings.
	overhead atomic.Int64

	model   *txModel
	modelOn atomic.Bool

	mu       sync.Mutex
	rru, wru float64
	modelErr error
}

type callTotals struct {
	ddbWire, ddbSDK, sesWire, overhead time.Duration
	sesSends                           int64
	rru, wru                           float64
	queryItems                         int64
}

func (c *awsCalls) snapshot() callTotals {
	c.mu.Lock()
	rru, wru := c.rru, c.wru
	c.mu.Unlock()
	return callTotals{
		ddbWire: time.Duration(c.ddbWire.Load()), ddbSDK: time.Duration(c.ddbSDK.Load()),
		sesWire: time.Duration(c.sesWire.Load()), overhead: time.Duration(c.overhead.Load()),
		sesSends: c.sesSends.Load(), rru: rru, wru: wru, queryItems: c.queryItems.Load(),
	}
}

func (c *awsCalls) addUnits(rru, wru float64) {
	c.mu.Lock()
	c.rru += rru
	c.wru += wru
	c.mu.Unlock()
}

// dynamoMiddleware times each DynamoDB call twice: the whole SDK call (at
// the outer edge of the Initialize step) and the round trip alone (at the
// inner edge of the Deserialize step, around the HTTP transport; once per
// attempt). It also tallies the request units (see awsCalls).
func (c *awsCalls) dynamoMiddleware(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bench.DynamoCall",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			tx, _ := in.Parameters.(*dynamodb.TransactWriteItemsInput)
			var acts []txAction
			var before map[string]map[string]types.AttributeValue
			priced := false
			if tx != nil && c.modelOn.Load() {
				c.timeOverhead(func() {
					var err error
					if acts, err = c.model.actions(tx); err == nil {
						before, err = c.model.images(ctx, acts, func(txAction) bool { return true })
					}
					priced = c.noteModelErr(err)
				})
			}
			t := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			c.ddbSDK.Add(int64(time.Since(t)))
			if err != nil {
				return out, md, err
			}
			if q, ok := out.Result.(*dynamodb.QueryOutput); ok {
				c.queryItems.Add(int64(q.ScannedCount))
			}
			if priced {
				c.timeOverhead(func() {
					after, err := c.model.images(ctx, acts, func(a txAction) bool { return a.kind == "Put" || a.kind == "Update" })
					if c.noteModelErr(err) {
						c.addUnits(c.model.units(acts, before, after))
					} else {
						priced = false
					}
				})
			}
			if !priced {
				units, write := capacity(out.Result)
				if write {
					c.addUnits(0, units)
				} else {
					c.addUnits(units, 0)
				}
			}
			return out, md, err
		}), middleware.Before); err != nil {
		return err
	}
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("bench.DynamoWire",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			t := time.Now()
			out, md, err := next.HandleDeserialize(ctx, in)
			c.ddbWire.Add(int64(time.Since(t)))
			return out, md, err
		}), middleware.After)
}

// noteModelErr keeps the first error of the transaction model and reports
// whether there was none.
func (c *awsCalls) noteModelErr(err error) bool {
	if err == nil {
		return true
	}
	c.mu.Lock()
	if c.modelErr == nil {
		c.modelErr = err
	}
	c.mu.Unlock()
	return false
}

type sesCallKey struct{}

// sesMiddleware counts SES sends and times their round trips. It is added
// to every client made from the service's AWS config, so it picks out the
// SES send calls by their input type.
func (c *awsCalls) sesMiddleware(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("bench.SESCall",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			switch in.Parameters.(type) {
			case *ses.SendEmailInput, *ses.SendRawEmailInput, *ses.SendTemplatedEmailInput:
				ctx = context.WithValue(ctx, sesCallKey{}, true)
				out, md, err := next.HandleInitialize(ctx, in)
				if err == nil {
					c.sesSends.Add(1)
				}
				return out, md, err
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before); err != nil {
		return err
	}
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("bench.SESWire",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			if ctx.Value(sesCallKey{}) == nil {
				return next.HandleDeserialize(ctx, in)
			}
			t := time.Now()
			out, md, err := next.HandleDeserialize(ctx, in)
			c.sesWire.Add(int64(time.Since(t)))
			return out, md, err
		}), middleware.After)
}

// capacity returns the capacity units a DynamoDB answer reports, and
// whether they are write units (on demand: WRU) or read units (RRU).
func capacity(result any) (float64, bool) {
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		return one(out.ConsumedCapacity), false
	case *dynamodb.QueryOutput:
		return one(out.ConsumedCapacity), false
	case *dynamodb.ScanOutput:
		return one(out.ConsumedCapacity), false
	case *dynamodb.BatchGetItemOutput:
		return sum(out.ConsumedCapacity), false
	case *dynamodb.TransactGetItemsOutput:
		return sum(out.ConsumedCapacity), false
	case *dynamodb.PutItemOutput:
		return one(out.ConsumedCapacity), true
	case *dynamodb.UpdateItemOutput:
		return one(out.ConsumedCapacity), true
	case *dynamodb.DeleteItemOutput:
		return one(out.ConsumedCapacity), true
	case *dynamodb.BatchWriteItemOutput:
		return sum(out.ConsumedCapacity), true
	case *dynamodb.TransactWriteItemsOutput:
		return sum(out.ConsumedCapacity), true
	}
	return 0, false
}

func one(c *types.ConsumedCapacity) float64 {
	if c == nil || c.CapacityUnits == nil {
		return 0
	}
	return *c.CapacityUnits
}

func sum(cs []types.ConsumedCapacity) float64 {
	t := 0.0
	for i := range cs {
		t += one(&cs[i])
	}
	return t
}
