package users

// Word lists: the lists that answer a word search (query, user_keyword,
// full_name, first_name, last_name) of any length up to maxPrefixRunes in
// username order, with an exact count, at any list size
// (docs/LISTING.md, "Word lists").
//
// A listed user has one entry per distinct prefix of its word starts (one
// to maxPrefixRunes runes; the query group's one- and two-letter prefixes
// are the in-transaction lists of index.go instead): an item
//
//	pk "SP#<prefix>"  sk "<username>\x1f<uuid>"  u <uuid>  g <groups>
//
// where groups are the letters of the search groups holding a word start
// with that prefix: q (query, user_keyword), n (full_name), f (first_name),
// l (last_name). The list "s:<prefix>" counts them, on the count shards
// every list uses (list.go), in buckets "<group letter><username bucket>":
// one entry adds 1 to the bucket of each of its groups.
//
// There are too many of them (a few dozen per user) for the transaction
// that writes the user, so the table's stream keeps them (StreamFunction,
// WordLists.Sync): each change of an entry goes in one transaction with its
// count's delta, conditional on the entry being as the change expects (absent
// before a put, holding the expected groups before a delete or a rewrite).
// A record delivered again finds its changes made, its conditions fail, and
// nothing is counted twice: an entry and its count change together or not
// at all, so at rest every count is exactly its entries, and the entries
// are exactly the users' word starts. A write is seen by the lists once the
// stream has handled it (typically within a second).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/table"
)

const (
	wordListPK = "SP#"
	wordListID = "s:"
	// maxPrefixRunes is the longest prefix a word list is kept for. A
	// longer search value is answered from the WordStart index by its
	// whole value (bounded by its matches, not the list's size).
	maxPrefixRunes = 12
	// wordPrefixMin: the query group's one- and two-letter prefixes are
	// the in-transaction lists (PrefixOne, PrefixTwo).
	wordPrefixMin = 3
	// MarkWordListsWritten on a new user's item says its word lists were
	// written with it (SeedListed), so the stream leaves them.
	MarkWordListsWritten = "spw"
)

// searchGroups are the word filters' groups and their letters.
var searchGroups = []struct {
	group  int
	letter byte
}{{groupQuery, 'q'}, {groupFull, 'n'}, {fieldFirst, 'f'}, {fieldLast, 'l'}}

func groupLetter(group int) byte {
	for _, g := range searchGroups {
		if g.group == group {
			return g.letter
		}
	}
	return 0
}

// wordList is the list of the users with a word start beginning with
// phrase (folded) in group's fields.
func wordList(group int, phrase string) userList {
	return userList{id: wordListID + phrase, attr: "pk", value: wordListPK + phrase, sortAttr: "sk",
		entries: true, word: groupLetter(group)}
}

// hasWordList reports whether a search of phrase in group is one word list.
func hasWordList(group int, phrase string) bool {
	n := utf8.RuneCountInString(phrase)
	return n <= maxPrefixRunes && (group != groupQuery || n >= wordPrefixMin)
}

// wordPrefixes are u's word list entries: each prefix and its groups'
// letters (in searchGroups order). None unless u is listed.
func wordPrefixes(u *User) map[string]string {
	if !listed(u) {
		return nil
	}
	t := searchTextOf(u)
	sets := map[string][]byte{}
	for _, g := range searchGroups {
		for _, s := range t.starts(g.group) {
			for end, runes := 0, 0; end < len(s) && runes < maxPrefixRunes; {
				_, size := utf8.DecodeRuneInString(s[end:])
				end += size
				runes++
				p := s[:end]
				// A search value is trimmed: it never ends in a space.
				if strings.HasSuffix(p, " ") || !hasWordList(g.group, p) {
					continue
				}
				if l := sets[p]; len(l) == 0 || l[len(l)-1] != g.letter {
					sets[p] = append(l, g.letter)
				}
			}
		}
	}
	out := make(map[string]string, len(sets))
	for p, l := range sets {
		out[p] = string(l)
	}
	return out
}

func wordEntryKey(prefix, username, uuid string) map[string]types.AttributeValue {
	return key(wordListPK+prefix, username+keySep+uuid)
}

// wordOp is one entry's change: its items and its count's deltas by bucket.
type wordOp struct {
	list   string
	items  []types.TransactWriteItem
	deltas map[string]int64
}

// wordOps are the changes that move the word lists from before to after
// (either may be nil or unlisted).
func wordOps(table string, before, after *User) []wordOp {
	old, next := wordPrefixes(before), wordPrefixes(after)
	var ops []wordOp
	for _, p := range slices.Sorted(maps.Keys(old)) {
		if _, ok := next[p]; !ok {
			ops = append(ops, wordChange(table, p, before, old[p], nil, ""))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(next)) {
		g, had := old[p]
		switch {
		case !had:
			ops = append(ops, wordChange(table, p, nil, "", after, next[p]))
		case g != next[p] || before.Username != after.Username || before.UUID != after.UUID:
			ops = append(ops, wordChange(table, p, before, g, after, next[p]))
		}
	}
	return ops
}

// wordChange moves one prefix's entry from (before, its groups) to (after,
// its groups), each side possibly absent.
func wordChange(table, prefix string, before *User, oldGroups string, after *User, newGroups string) wordOp {
	op := wordOp{list: wordListID + prefix, deltas: map[string]int64{}}
	same := before != nil && after != nil && before.Username == after.Username && before.UUID == after.UUID
	guard := func(groups string) (*string, map[string]string, map[string]types.AttributeValue) {
		return aws.String("#g = :old"), map[string]string{"#g": "g"}, map[string]types.AttributeValue{":old": str(groups)}
	}
	if before != nil {
		for i := range len(oldGroups) {
			op.deltas[string(oldGroups[i])+bucketOf(before.Username)]--
		}
		if !same {
			cond, names, vals := guard(oldGroups)
			op.items = append(op.items, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(table),
				Key: wordEntryKey(prefix, before.Username, before.UUID), ConditionExpression: cond,
				ExpressionAttributeNames: names, ExpressionAttributeValues: vals}})
		}
	}
	if after != nil {
		for i := range len(newGroups) {
			op.deltas[string(newGroups[i])+bucketOf(after.Username)]++
		}
		it := wordEntryKey(prefix, after.Username, after.UUID)
		it["u"], it["g"] = str(after.UUID), str(newGroups)
		put := &types.Put{TableName: aws.String(table), Item: it, ConditionExpression: aws.String("attribute_not_exists(pk)")}
		if same {
			put.ConditionExpression, put.ExpressionAttributeNames, put.ExpressionAttributeValues = guard(oldGroups)
		}
		op.items = append(op.items, types.TransactWriteItem{Put: put})
	}
	for b, d := range op.deltas {
		if d == 0 {
			delete(op.deltas, b)
		}
	}
	return op
}

// TxDB is what WordLists writes with.
type TxDB interface {
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// WordLists keeps the word lists from the stream's records of users.
type WordLists struct {
	DB    TxDB
	Table string
	// Shards is the count shards' number (config COUNT_SHARDS, as the API's).
	Shards int
}

// wordRounds bounds the rounds of one Sync (each either drops the changes
// found made, or waits out a conflict); past it the record fails and the
// stream delivers it again.
const wordRounds = 12

// Sync moves the word lists of one user from before to after (the record's
// old and new images).
func (w *WordLists) Sync(ctx context.Context, before, after *User) error {
	ops := wordOps(w.Table, before, after)
	shards := countShards(w.Shards)
	conflicted := false
	for round := 0; len(ops) > 0; round++ {
		if round == wordRounds {
			return fmt.Errorf("word lists: %d changes still conflicting after %d rounds", len(ops), round)
		}
		if conflicted {
			backoff := time.Duration(10<<min(round, 6)) * time.Millisecond
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff/2 + rand.N(backoff)):
			}
		}
		var retry []wordOp
		conflicted = false
		for _, chunk := range packWordOps(ops) {
			// One shard for the chunk's counts; another at random on a retry.
			shard := rand.N(shards)
			if round == 0 {
				shard = shardFor(bucketOf(userOfOps(before, after)), shards)
			}
			var items []types.TransactWriteItem
			var owner []int // op index of each item
			for i, op := range chunk {
				for _, it := range op.items {
					items = append(items, it)
					owner = append(owner, i)
				}
				if len(op.deltas) > 0 {
					items = append(items, types.TransactWriteItem{Update: bucketUpdate(w.Table, op.list, shard, op.deltas)})
					owner = append(owner, i)
				}
			}
			_, err := w.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
			if err == nil {
				continue
			}
			var tce *types.TransactionCanceledException
			if !errors.As(err, &tce) {
				return fmt.Errorf("word lists: %w", err)
			}
			made := map[int]bool{}
			for j, r := range tce.CancellationReasons {
				switch code := aws.ToString(r.Code); {
				case j < len(owner) && code == "ConditionalCheckFailed":
					made[owner[j]] = true // made by an earlier delivery of this record
				case code != "" && code != "None":
					conflicted = true
				}
			}
			if len(made) == 0 {
				conflicted = true
			}
			for i, op := range chunk {
				if !made[i] {
					retry = append(retry, op)
				}
			}
		}
		ops = retry
	}
	return nil
}

func userOfOps(before, after *User) string {
	if after != nil {
		return after.Username
	}
	if before != nil {
		return before.Username
	}
	return ""
}

// packWordOps groups ops into transactions of at most maxTransactItems.
func packWordOps(ops []wordOp) [][]wordOp {
	var out [][]wordOp
	var cur []wordOp
	n := 0
	for _, op := range ops {
		size := len(op.items)
		if len(op.deltas) > 0 {
			size++
		}
		if n+size > maxTransactItems && len(cur) > 0 {
			out, cur, n = append(out, cur), nil, 0
		}
		cur = append(cur, op)
		n += size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// bucketUpdate adds deltas to buckets of shard shard of list id's count
// (a word list's count is its buckets: an entry counts once per group).
func bucketUpdate(table, id string, shard int, deltas map[string]int64) *types.Update {
	return addUpdate(table, id, shard, deltas, false)
}

// byGroup is a word list's count for the group of letter g: its buckets
// of that group, by username.
func (c listCounts) byGroup(g byte) listCounts {
	var out listCounts
	for _, b := range c.buckets {
		if len(b.prefix) > 0 && b.prefix[0] == g {
			out.total += b.n
			out.buckets = append(out.buckets, bucketCount{b.prefix[1:], b.n})
		}
	}
	return out
}

// queryWordList reads word list l in username order from the first
// username at or after from, skipping skip entries of l's group and
// returning the next count.
func (st *store) queryWordList(ctx context.Context, l userList, from string, skip, count int64) ([]entry, error) {
	names := map[string]string{"#k": "pk"}
	vals := map[string]types.AttributeValue{":k": str(l.value)}
	cond := "#k = :k"
	if from != "" {
		names["#s"] = "sk"
		vals[":from"] = str(from)
		cond += " AND #s >= :from"
	}
	var filter *string
	if l.word != 'q' {
		// The query group holds every entry of a prefix of 3+ letters (its
		// fields include the others'); the name groups are some of them.
		names["#g"] = "g"
		vals[":g"] = str(string(l.word))
		filter = aws.String("contains(#g, :g)")
	}
	in := &dynamodb.QueryInput{TableName: aws.String(st.table), KeyConditionExpression: aws.String(cond),
		FilterExpression: filter, ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
	return queryPages(ctx, st.db, in, skip, count, filter != nil, 0, func(it map[string]types.AttributeValue) (entry, error) {
		e := entry{uuid: table.String(it, "u")}
		e.username, _, _ = strings.Cut(table.String(it, "sk"), keySep)
		return e, nil
	})
}

// wordSeedItems are a new listed user's word list entries and their count
// deltas (by list, then bucket), for SeedListed: the puts of the ops that
// bring u into the word lists.
func wordSeedItems(u *User) ([]map[string]types.AttributeValue, map[string]map[string]int64) {
	var items []map[string]types.AttributeValue
	deltas := map[string]map[string]int64{}
	for _, op := range wordOps("", nil, u) {
		for _, it := range op.items {
			items = append(items, it.Put.Item)
		}
		deltas[op.list] = op.deltas
	}
	return items, deltas
}
