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
)

// SeedListed stores active accounts in bulk for scale tests and the
// benchmark (not for the service's own use), exactly as
// create stores an account made active (AdminCreate): the user's item with
// its list index keys (marshalUser), its email and username claims
// (claimItem), its index entries (indexEntries) and the list counts
// (countDeltas, countUpdate, on the shard shardFor picks for each user, of
// the default number of shards), only written with BatchWriteItem and
// summed per list shard instead of one transaction each; and the word
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
	if err := errors.Join(slices.Collect(chanValues(errs))...); err != nil {
		return err
	}
	// The count shards, eight at a time.
	keys := make(chan shardOf)
	uerrs := make(chan error, 8)
	var uwg sync.WaitGroup
	for range 8 {
		uwg.Add(1)
		go func() {
			defer uwg.Done()
			for k := range keys {
				// In chunks: an update expression holds at most 4 KB.
				for chunk := range slices.Chunk(slices.Sorted(maps.Keys(deltas[k])), 100) {
					part := map[string]int64{}
					for _, b := range chunk {
						part[b] = deltas[k][b]
					}
					u := countUpdate(table, k.list, k.shard, part)
					if strings.HasPrefix(k.list, wordListID) {
						u = bucketUpdate(table, k.list, k.shard, part)
					}
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
	for k := range deltas {
		select {
		case keys <- k:
		case err := <-uerrs:
			close(keys)
			uwg.Wait()
			return err
		}
	}
	close(keys)
	uwg.Wait()
	close(uerrs)
	return errors.Join(slices.Collect(chanValues(uerrs))...)
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
