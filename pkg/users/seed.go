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

// SeedListed stores active accounts in bulk for scale tests and the
// benchmark (not for the service's own use), exactly as
// create stores an account made active (AdminCreate): the user's item with
// its list index keys (marshalUser), its email and username claims
// (claimItem), its index entries (indexEntries) and the list counts
// (countDeltas, countUpdate), only written
// with BatchWriteItem and summed per list instead of one transaction each.
func SeedListed(ctx context.Context, db *dynamodb.Client, table string, us []*User) error {
	st := store{table: table}
	var reqs []types.WriteRequest
	deltas := map[string]map[string]int64{}
	for _, u := range us {
		if !listed(u) {
			return fmt.Errorf("seed: %s is not an active account", u.Username)
		}
		item, err := st.marshalUser(u)
		if err != nil {
			return err
		}
		items := append([]map[string]types.AttributeValue{item, claimItem(emailKey(u.Email), u.UUID, 0), claimItem(usernameKey(u.Username), u.UUID, 0)},
			indexEntries(u)...)
		for _, it := range items {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		for id, bs := range countDeltas(nil, u) {
			if deltas[id] == nil {
				deltas[id] = map[string]int64{}
			}
			for b, d := range bs {
				deltas[id][b] += d
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
	// The count items, eight lists at a time.
	ids := make(chan string)
	uerrs := make(chan error, 8)
	var uwg sync.WaitGroup
	for range 8 {
		uwg.Add(1)
		go func() {
			defer uwg.Done()
			for id := range ids {
				// In chunks: an update expression holds at most 4 KB.
				for chunk := range slices.Chunk(slices.Sorted(maps.Keys(deltas[id])), 100) {
					part := map[string]int64{}
					for _, b := range chunk {
						part[b] = deltas[id][b]
					}
					u := countUpdate(table, id, part)
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
	for _, id := range slices.Sorted(maps.Keys(deltas)) {
		select {
		case ids <- id:
		case err := <-uerrs:
			close(ids)
			uwg.Wait()
			return err
		}
	}
	close(ids)
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
