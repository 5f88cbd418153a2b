package users

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SeedListed stores active accounts in bulk for scale tests, exactly as
// create stores an account made active (AdminCreate): the user's item with
// its list index keys (marshalUser), its email and username claims
// (claimItem), and the list counts (countDeltas, countUpdate, on the shard
// shardFor picks for each user, of the default number of shards), only
// written with BatchWriteItem and summed per list shard instead of one
// transaction each.
func SeedListed(ctx context.Context, db *dynamodb.Client, table string, us []*User) error {
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
		for _, it := range []map[string]types.AttributeValue{item, claimItem(emailKey(u.Email), u.UUID, 0), claimItem(usernameKey(u.Username), u.UUID, 0)} {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		for id, bs := range countDeltas(nil, u) {
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
	for k, bs := range deltas {
		// In chunks: an update expression holds at most 4 KB.
		for chunk := range slices.Chunk(slices.Sorted(maps.Keys(bs)), 100) {
			part := map[string]int64{}
			for _, b := range chunk {
				part[b] = bs[b]
			}
			u := countUpdate(table, k.list, k.shard, part)
			if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: u.Key,
				UpdateExpression: u.UpdateExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
				ExpressionAttributeValues: u.ExpressionAttributeValues}); err != nil {
				return err
			}
		}
	}
	return nil
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
