package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// StreamHandler is a stream function's handler, as Lambda calls it.
type StreamHandler func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error)

// Converter turns a stream record's images into Lambda's form
// (streams.FromSDK); it is passed in so this package needs no service code.
type Converter func(map[string]ddbtypes.AttributeValue) map[string]events.DynamoDBAttributeValue

// StreamPoller runs a stream handler over a DynamoDB Local table's stream
// the way Lambda's event source mapping runs StreamFunction: each shard in
// order, parents before children, batches of up to BatchSize records; a
// batch whose handler reports a failed record is retried from that record,
// one that errors is bisected, and after MaxRetries retries what is left
// of the batch goes to the dead-letter list (the SQS on-failure
// destination on AWS) and the shard moves on.
type StreamPoller struct {
	Client    *dynamodbstreams.Client
	StreamARN string
	Handler   StreamHandler
	Convert   Converter
	// BatchSize (default 100) and MaxRetries (default 3) are the event
	// source mapping's; Backoff (default 200 ms) the first retry's wait,
	// doubled each time; Poll (default 50 ms) the wait of an idle shard.
	BatchSize  int
	MaxRetries int
	Backoff    time.Duration
	Poll       time.Duration
	// Filter, when set, keeps only the records it accepts, as the event
	// source mapping's FilterCriteria do.
	Filter func(events.DynamoDBEventRecord) bool
	// DLQ receives a DeadLetter for each batch whose retries ran out (the
	// on-failure destination); nil keeps none.
	DLQ *Queue
	Log *slog.Logger

	mu       sync.Mutex
	idle     time.Time // start of the last pass that found no records
	shards   map[string]*shardState
	stopped  chan struct{}
	cancel   context.CancelFunc
	handled  int
	attempts int
	busy     time.Duration
	seen     []events.DynamoDBEventRecord
}

// Busy is the time spent in the handler so far.
func (p *StreamPoller) Busy() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy
}

// Delivered are the records handed to the handler so far (after the
// filter), for tests that deliver one again.
func (p *StreamPoller) Delivered() []events.DynamoDBEventRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]events.DynamoDBEventRecord(nil), p.seen...)
}

// DeadLetter is what the on-failure destination receives for a batch whose
// retries ran out: where it was, not its records (as on AWS).
type DeadLetter struct {
	ShardID             string    `json:"shard_id"`
	StartSequenceNumber string    `json:"start_sequence_number"`
	EndSequenceNumber   string    `json:"end_sequence_number"`
	BatchSize           int       `json:"batch_size"`
	Condition           string    `json:"condition"` // RetryAttemptsExhausted
	At                  time.Time `json:"at"`
}

type shardState struct {
	id, parent string
	iterator   *string
	closed     bool
	pending    []events.DynamoDBEventRecord // read, not yet handled
}

// Start runs the poller until Stop.
func (p *StreamPoller) Start(ctx context.Context) {
	if p.BatchSize <= 0 {
		p.BatchSize = 100
	}
	if p.MaxRetries <= 0 {
		p.MaxRetries = 3
	}
	if p.Backoff <= 0 {
		p.Backoff = 200 * time.Millisecond
	}
	if p.Poll <= 0 {
		p.Poll = 50 * time.Millisecond
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.stopped = make(chan struct{})
	p.shards = map[string]*shardState{}
	go func() {
		defer close(p.stopped)
		for ctx.Err() == nil {
			start := time.Now()
			n, err := p.pass(ctx)
			if err != nil && ctx.Err() == nil {
				p.Log.Warn("localstack: stream poll failed", "cause", err.Error())
			}
			if n == 0 && err == nil {
				p.mu.Lock()
				p.idle = start
				p.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(p.Poll):
				}
			}
		}
	}()
}

// Stop ends the poller.
func (p *StreamPoller) Stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.stopped
	}
}

// Drain waits until every record written before the call has been handled
// (a whole pass over the shards that started after it found nothing).
func (p *StreamPoller) Drain(ctx context.Context) error {
	t0 := time.Now()
	for {
		p.mu.Lock()
		idle := p.idle
		p.mu.Unlock()
		if idle.After(t0) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localstack: stream not drained: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Queue is an in-memory SQS queue: the local dead-letter queue, which the
// poller (for batches) and the stream handler (for mails) write to.
type Queue struct {
	mu   sync.Mutex
	msgs []string
}

// Send implements streams.DeadLetters.
func (q *Queue) Send(_ context.Context, body string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, body)
	return nil
}

// Messages returns every message sent so far.
func (q *Queue) Messages() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.msgs...)
}

// Stats are the records handled and the handler invocations made.
func (p *StreamPoller) Stats() (records, invocations int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handled, p.attempts
}

// pass reads and handles what every open shard has; it returns the number
// of records seen.
func (p *StreamPoller) pass(ctx context.Context) (int, error) {
	if err := p.refreshShards(ctx); err != nil {
		return 0, err
	}
	seen := 0
	for _, sh := range p.ordered() {
		if sh.closed && len(sh.pending) == 0 {
			continue
		}
		if parent, ok := p.shards[sh.parent]; ok && (!parent.closed || len(parent.pending) > 0) {
			continue // parents first, as Lambda does
		}
		if sh.iterator == nil && !sh.closed {
			it, err := p.Client.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(p.StreamARN),
				ShardId: aws.String(sh.id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				return seen, err
			}
			sh.iterator = it.ShardIterator
		}
		if !sh.closed && len(sh.pending) < p.BatchSize {
			out, err := p.Client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: sh.iterator, Limit: aws.Int32(int32(p.BatchSize))})
			if err != nil {
				var expired *types.ExpiredIteratorException
				var trimmed *types.TrimmedDataAccessException
				switch {
				case errors.As(err, &expired):
					sh.iterator = nil // a fresh one from the shard's start (what is handled is idempotent)
					continue
				case errors.As(err, &trimmed):
					// The records the iterator pointed at are gone (the stream
					// trimmed them): go on from the oldest left, as Lambda does.
					p.Log.Warn("localstack: stream records trimmed before they were read", "shard", sh.id)
					sh.iterator = nil
					continue
				}
				return seen, err
			}
			for _, r := range out.Records {
				sh.pending = append(sh.pending, p.lambdaRecord(r))
			}
			sh.iterator = out.NextShardIterator
			if sh.iterator == nil {
				sh.closed = true
			}
		}
		seen += len(sh.pending)
		for len(sh.pending) > 0 && ctx.Err() == nil {
			n := min(len(sh.pending), p.BatchSize)
			p.deliver(ctx, sh.id, sh.pending[:n])
			sh.pending = sh.pending[n:]
		}
	}
	return seen, nil
}

func (p *StreamPoller) refreshShards(ctx context.Context) error {
	var start *string
	for {
		out, err := p.Client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.StreamARN), ExclusiveStartShardId: start})
		if err != nil {
			return err
		}
		for _, s := range out.StreamDescription.Shards {
			id := aws.ToString(s.ShardId)
			if _, ok := p.shards[id]; !ok {
				p.shards[id] = &shardState{id: id, parent: aws.ToString(s.ParentShardId)}
			}
		}
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return nil
		}
	}
}

// ordered lists the shards parents first.
func (p *StreamPoller) ordered() []*shardState {
	var out []*shardState
	done := map[string]bool{}
	for len(out) < len(p.shards) {
		progress := false
		for id, sh := range p.shards {
			if done[id] {
				continue
			}
			if _, hasParent := p.shards[sh.parent]; hasParent && !done[sh.parent] {
				continue
			}
			done[id] = true
			out = append(out, sh)
			progress = true
		}
		if !progress {
			break
		}
	}
	return out
}

// deliver hands batch to the handler with the mapping's retry rules.
func (p *StreamPoller) deliver(ctx context.Context, shard string, batch []events.DynamoDBEventRecord) {
	if p.Filter != nil {
		var kept []events.DynamoDBEventRecord
		for _, r := range batch {
			if p.Filter(r) {
				kept = append(kept, r)
			}
		}
		batch = kept
	}
	p.mu.Lock()
	p.seen = append(p.seen, batch...)
	p.mu.Unlock()
	for retry := 0; len(batch) > 0; retry++ {
		p.mu.Lock()
		p.attempts++
		p.mu.Unlock()
		began := time.Now()
		resp, err := p.Handler(ctx, events.DynamoDBEvent{Records: batch})
		p.mu.Lock()
		p.busy += time.Since(began)
		p.mu.Unlock()
		failedAt := -1
		switch {
		case err != nil:
			failedAt = 0
			if len(batch) > 1 { // bisect on error: each half on its own
				half := len(batch) / 2
				p.deliver(ctx, shard, batch[:half])
				p.deliver(ctx, shard, batch[half:])
				return
			}
		case len(resp.BatchItemFailures) > 0:
			failedAt = len(batch) // an unknown identifier fails the whole batch, as on AWS
			for _, f := range resp.BatchItemFailures {
				for i, r := range batch {
					if r.Change.SequenceNumber == f.ItemIdentifier && i < failedAt {
						failedAt = i
					}
				}
			}
			if failedAt == len(batch) {
				failedAt = 0
			}
		}
		if failedAt < 0 {
			p.mu.Lock()
			p.handled += len(batch)
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		p.handled += failedAt
		p.mu.Unlock()
		if failedAt > 0 {
			// The checkpoint moved on: what is left is retried as a batch
			// of its own, with the full count of retries. (AWS documents
			// the checkpoint, not how it counts retries across one; the
			// stream handler does not rely on either: streams.MaxMailAttempts.)
			retry = -1
		}
		batch = batch[failedAt:]
		if retry == p.MaxRetries {
			// (retry is -1 right after a checkpoint: never here then)
			dl := DeadLetter{ShardID: shard, StartSequenceNumber: batch[0].Change.SequenceNumber,
				EndSequenceNumber: batch[len(batch)-1].Change.SequenceNumber, BatchSize: len(batch),
				Condition: "RetryAttemptsExhausted", At: time.Now().UTC()}
			p.Log.Warn("localstack: stream batch to the dead-letter queue", "shard", shard, "records", len(batch))
			if p.DLQ != nil {
				b, _ := json.Marshal(dl)
				_ = p.DLQ.Send(ctx, string(b))
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(p.Backoff << max(retry, 0)):
		}
	}
}

// lambdaRecord is r as Lambda's event source mapping delivers it.
func (p *StreamPoller) lambdaRecord(r types.Record) events.DynamoDBEventRecord {
	out := events.DynamoDBEventRecord{
		EventID: aws.ToString(r.EventID), EventName: string(r.EventName), EventVersion: aws.ToString(r.EventVersion),
		EventSource: "aws:dynamodb", AWSRegion: aws.ToString(r.AwsRegion), EventSourceArn: p.StreamARN,
	}
	if r.UserIdentity != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(r.UserIdentity.Type), PrincipalID: aws.ToString(r.UserIdentity.PrincipalId)}
	}
	if d := r.Dynamodb; d != nil {
		out.Change = events.DynamoDBStreamRecord{
			Keys: p.Convert(fromStreams(d.Keys)), NewImage: p.Convert(fromStreams(d.NewImage)), OldImage: p.Convert(fromStreams(d.OldImage)),
			SequenceNumber: aws.ToString(d.SequenceNumber), StreamViewType: string(d.StreamViewType),
		}
		if d.SizeBytes != nil {
			out.Change.SizeBytes = *d.SizeBytes
		}
		if d.ApproximateCreationDateTime != nil {
			out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
	}
	return out
}

// fromStreams converts the streams API's attribute values to DynamoDB's
// (the SDK's converter; a value it cannot convert, which DynamoDB never
// sends, drops the image rather than the poller).
func fromStreams(m map[string]types.AttributeValue) map[string]ddbtypes.AttributeValue {
	out, err := attributevalue.FromDynamoDBStreamsMap(m)
	if err != nil {
		return nil
	}
	return out
}

// StreamARN returns the ARN of table's stream, turning the stream on (with
// viewType) when a table made before it had none.
func StreamARN(ctx context.Context, db *dynamodb.Client, table, viewType string) (string, error) {
	for attempt := 0; attempt < 50; attempt++ {
		desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return "", err
		}
		if s := desc.Table.StreamSpecification; desc.Table.LatestStreamArn != nil && s != nil && aws.ToBool(s.StreamEnabled) {
			return *desc.Table.LatestStreamArn, nil
		}
		if attempt == 0 {
			_, err = db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(table),
				StreamSpecification: &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewType(viewType)}})
			if err != nil {
				return "", fmt.Errorf("localstack: enabling the stream of %s: %w", table, err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("localstack: table %s has no stream", table)
}

// StreamsClient is a DynamoDB Streams client for DynamoDB Local at endpoint.
func StreamsClient(endpoint, region string) *dynamodbstreams.Client {
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region: region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}
