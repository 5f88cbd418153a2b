package users

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/table"
)

// SeedListed stores active accounts in bulk for scale tests and the
// benchmark (not for the service's own use), exactly as
// create stores an account made active (AdminCreate): the user's item with
// its list index keys (marshalUser), its email and username claims
// (claimItem), its index entries (indexEntries) and the list counts
// (countDeltas, countUpdate, on the shard shardFor picks for each user, of
// the default number of shards), only written with BatchWriteItem and
// summed per list shard instead of one transaction each (a count item the
// table has not yet is put whole, so nothing else may write counts while
// it seeds); and the word
// lists the stream keeps for the accounts the service writes (wordlists.go).
func SeedListed(ctx context.Context, db *dynamodb.Client, table string, us []*User) error {
	return SeedListedWith(ctx, db, table, us, SeedOptions{})
}

// SeedOptions are SeedListedWith's choices.
type SeedOptions struct {
	// NoWordLists leaves the word lists out (a scale test of the other
	// lists: they are a few dozen items per user). The users' items still
	// tell the stream to leave them, so the table stays without them and
	// single-value searches of up to 12 letters find none of these users.
	NoWordLists bool
}

// SeedListedWith is SeedListed with options.
func SeedListedWith(ctx context.Context, db *dynamodb.Client, table string, us []*User, opts SeedOptions) error {
	st := store{table: table}
	var reqs []types.WriteRequest
	type shardOf struct {
		list  string
		shard int
	}
	deltas := map[shardOf]map[string]int64{}
	for _, u := range us {
		if !listed(u) {
			return fmt.Errorf("seed: %s is not an active account", u.Username)
		}
		item, err := st.marshalUser(u)
		if err != nil {
			return err
		}
		// Its word lists too, which the stream keeps for users the service
		// writes (wordlists.go): the item says so, and the stream leaves them.
		item[MarkWordListsWritten] = str("1")
		var words []map[string]types.AttributeValue
		var wordDeltas map[string]map[string]int64
		if !opts.NoWordLists {
			words, wordDeltas = wordSeedItems(u)
		}
		items := append([]map[string]types.AttributeValue{item, claimItem(emailKey(u.Email), u.UUID, 0), claimItem(usernameKey(u.Username), u.UUID, 0)},
			indexEntries(u)...)
		items = append(items, words...)
		for _, it := range items {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		all := countDeltas(nil, u)
		maps.Copy(all, wordDeltas)
		for id, bs := range all {
			k := shardOf{id, shardFor(bucketOf(u.Username), st.shards())}
			if deltas[k] == nil {
				deltas[k] = map[string]int64{}
			}
			for b, d := range bs {
				deltas[k][b] += d
			}
		}
	}
	if err := writeBatches(ctx, db, table, reqs); err != nil {
		return err
	}
	// The count shards: those the table has not yet are put whole, in
	// batches (a seeded table has thousands, most of them the word lists'
	// of one user); the others get their deltas added, eight at a time.
	// Nothing else writes counts meanwhile: the seeding's own users are the
	// only ones it counts (see SeedListed).
	keys := slices.Collect(maps.Keys(deltas))
	exists, err := existing(ctx, db, table, keys, func(k shardOf) map[string]types.AttributeValue {
		return key(countPrefix+k.list, countShardSK(k.shard))
	})
	if err != nil {
		return err
	}
	var puts []types.WriteRequest
	var adds []shardOf
	for _, k := range keys {
		if exists[k] {
			adds = append(adds, k)
			continue
		}
		puts = append(puts, types.WriteRequest{PutRequest: &types.PutRequest{
			Item: countItem(k.list, k.shard, deltas[k], !strings.HasPrefix(k.list, wordListID))}})
	}
	if err := writeBatches(ctx, db, table, puts); err != nil {
		return err
	}
	work := make(chan shardOf)
	uerrs := make(chan error, 8)
	var uwg sync.WaitGroup
	for range 8 {
		uwg.Add(1)
		go func() {
			defer uwg.Done()
			for k := range work {
				// In chunks: an update expression holds at most 4 KB.
				for chunk := range slices.Chunk(slices.Sorted(maps.Keys(deltas[k])), 100) {
					part := map[string]int64{}
					for _, b := range chunk {
						part[b] = deltas[k][b]
					}
					u := addUpdate(table, k.list, k.shard, part, !strings.HasPrefix(k.list, wordListID))
					if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: u.Key,
						UpdateExpression: u.UpdateExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
						ExpressionAttributeValues: u.ExpressionAttributeValues}); err != nil {
						uerrs <- err
						return
					}
				}
			}
		}()
	}
	for _, k := range adds {
		select {
		case work <- k:
		case err := <-uerrs:
			close(work)
			uwg.Wait()
			return err
		}
	}
	close(work)
	uwg.Wait()
	close(uerrs)
	return errors.Join(slices.Collect(chanValues(uerrs))...)
}

// writeBatches writes reqs with BatchWriteItem, 25 a request, eight
// requests at a time, until none is left unprocessed.
func writeBatches(ctx context.Context, db *dynamodb.Client, table string, reqs []types.WriteRequest) error {
	batches := make(chan []types.WriteRequest)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				for len(b) > 0 {
					out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: b}})
					if err != nil {
						errs <- err
						return
					}
					b = out.UnprocessedItems[table]
				}
			}
		}()
	}
	for i := 0; i < len(reqs); i += 25 {
		select {
		case batches <- reqs[i:min(i+25, len(reqs))]:
		case err := <-errs:
			close(batches)
			wg.Wait()
			return err
		}
	}
	close(batches)
	wg.Wait()
	close(errs)
	return errors.Join(slices.Collect(chanValues(errs))...)
}

// existing reports which of keys' items (keyOf) the table holds, read
// strongly consistent, 100 a BatchGetItem.
func existing[K comparable](ctx context.Context, db *dynamodb.Client, tableName string, keys []K, keyOf func(K) map[string]types.AttributeValue) (map[K]bool, error) {
	out := map[K]bool{}
	byKey := map[string]K{}
	for chunk := range slices.Chunk(keys, 100) {
		var ks []map[string]types.AttributeValue
		for _, k := range chunk {
			item := keyOf(k)
			byKey[table.String(item, "pk")+"\x00"+table.String(item, "sk")] = k
			ks = append(ks, item)
		}
		req := map[string]types.KeysAndAttributes{tableName: {Keys: ks, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk, sk")}}
		for len(req) > 0 {
			got, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, err
			}
			for _, item := range got.Responses[tableName] {
				out[byKey[table.String(item, "pk")+"\x00"+table.String(item, "sk")]] = true
			}
			req = got.UnprocessedKeys
		}
	}
	return out, nil
}

func chanValues(c chan error) func(func(error) bool) {
	return func(yield func(error) bool) {
		for e := range c {
			if !yield(e) {
				return
			}
		}
	}
}
