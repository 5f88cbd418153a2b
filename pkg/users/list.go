package users

// Listing users (GET /api/users) in at most two DynamoDB requests for the
// common cases, with an exact X-Result-Count, at any page depth.
//
// Who is listed: every account except an unactivated (UNVERIFIED) one.
// Those expire by TTL, which would make any count drift; so they are kept
// out of the list indexes and the counts, and appear once activated.
//
// Indexes: four GSIs with the username as sort key and ALL projected, so a
// page is one Query and needs no BatchGetItem. Their partition keys are kept
// on the user item only while it is listed (sparse indexes):
//
//	ListByUsername     lst      = "U"                  every listed user
//	StatusByUsername   status   = ENABLED | DISABLED   is_active=true | false
//	StaffByUsername    lstaff   = "1" | "0"            is_staff
//	SupportByUsername  lsupport = "1" | "0"            is_support
//
// (status is the user's own attribute: is_active is true exactly when the
// status is ENABLED; the UNVERIFIED partition of that index is never read.)
//
// Counts: each list's count is spread over shards, items pk USERLIST#<list>,
// sk COUNT (shard 0) and COUNT#1 … COUNT#<n-1>, each holding a part of the
// list's total n and, per bucket, of the number of its users whose username
// starts with the bucket (the first bucketLen bytes, attributes
// "b:<prefix>"). A list's count is the sum over its shards (a shard's part
// may be negative), so a write may add its deltas to any shard: writes are
// spread over them and do not meet on one item (on DynamoDB concurrent
// transactions on one item cancel each other). Every write that changes who
// is listed, their status, flags or username updates one shard of each list
// it moves in the same TransactWriteItems as the user, and is conditional on
// those fields still being as read, so counts never drift. Sign-up
// (UNVERIFIED) touches none of it and stays one request. See "The count
// mechanism" below for the API a new list uses.
//
// A page: the caller's authentication read becomes a BatchGetItem that also
// reads every shard of the list's count (request 1); their sum gives the total
// and, by summing buckets, the bucket holding the page's first user and how
// many users of that bucket precede it; one Query from the bucket's first
// username, Limit skip+size, returns the page (request 2). The skipped users
// cost read capacity but no request as long as skip+size users fit in the
// 1 MB a Query reads: a bucket of many thousand users (most usernames
// sharing three first letters) costs one more Query per MB. Descending
// username order reads the mirrored ascending range.
//
// Filters by email, username or username_list go through the uniqueness
// claims instead: the claims ride in the authentication read, the users are
// one GetItem or BatchGetItem. Every other filter or ordering reads the
// whole partition of the narrowest list it can (one Query per MB of users)
// and filters, sorts and pages in memory: see docs/LISTING.md for costs.

import (
	"context"
	"errors"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/table"
)

// The list indexes (GSIs in template.yaml) and their key attributes.
const (
	IndexList    = "ListByUsername"
	IndexStatus  = "StatusByUsername"
	IndexStaff   = "StaffByUsername"
	IndexSupport = "SupportByUsername"

	attrList    = "lst"
	attrStaff   = "lstaff"
	attrSupport = "lsupport"
)

// Count items and pages.
const (
	countPrefix = "USERLIST#"
	countSK     = "COUNT" // shard 0's; shard i > 0 is COUNT#<i>
	// countSpread is how many shards one bucket's writes go to (see
	// shardFor), out of the store's shards.
	countSpread = 4
	bucketAttr  = "b:"
	// bucketLen is how many leading bytes of a username make its bucket.
	bucketLen = 3

	DefaultPageSize = 10
	MaxPageSize     = 300
	// maxClaimLookups bounds the claims read with the authentication (a
	// BatchGetItem holds at most 100 keys); longer username lists are
	// filtered in memory from the index, or from the users an email or
	// username filter names (listByClaims).
	maxClaimLookups = 90
)

// userList is one list the service keeps an index partition and a count
// item for.
type userList struct {
	id, index, attr, value string
	// sortAttr is the index's sort key: the username, or (byJoined)
	// attrJoined, the date joined then the username.
	sortAttr string
	byJoined bool
	// entries: the index holds entry items (index.go), not users: a page
	// reads its users with BatchGetItem.
	entries bool
	// flagged: the count's buckets are by flag combination and username
	// (an exact value's, index.go); a list read by the flags of mask set
	// as in flags counts the matching combinations only.
	flagged bool
	mask    int
	flags   string
	// word: a word list (wordlists.go), of the search group of this letter.
	word byte
}

var (
	listAll    = userList{id: "all", index: IndexList, attr: attrList, value: "U", sortAttr: "username"}
	listJoined = userList{id: "joined", index: IndexJoined, attr: attrList, value: "U", sortAttr: attrJoined, byJoined: true}
)

func statusList(status string) userList {
	return userList{id: "status#" + status, index: IndexStatus, attr: "status", value: status, sortAttr: "username"}
}

func flagValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func staffList(b bool) userList {
	return userList{id: "staff#" + flagValue(b), index: IndexStaff, attr: attrStaff, value: flagValue(b), sortAttr: "username"}
}

func supportList(b bool) userList {
	return userList{id: "support#" + flagValue(b), index: IndexSupport, attr: attrSupport, value: flagValue(b), sortAttr: "username"}
}

// listed reports whether u appears in lists: every account but an
// unactivated one.
func listed(u *User) bool { return u != nil && u.Status != "" && u.Status != StatusUnverified }

// memberships are the lists u is counted in.
func memberships(u *User) []userList {
	if !listed(u) {
		return nil
	}
	return append([]userList{listAll, statusList(u.Status), staffList(u.IsStaff), supportList(u.IsSupport), listJoined},
		entryLists(u)...)
}

// bucket is the count bucket of u in l: its username's, or, in the list by
// date joined, its day.
func (l userList) bucket(u *User) string {
	if l.byJoined {
		return joinedKey(u)[:10]
	}
	if l.flagged {
		return flagString(u) + bucketOf(u.Username)
	}
	return bucketOf(u.Username)
}

// joinedKey is u's sort key in ListByJoined: the date joined (UTC, fixed
// width, so that strings sort as times) and the username.
func joinedKey(u *User) string {
	return u.DateJoined.UTC().Format("2006-01-02T15:04:05.000000000Z") + keySep + u.Username
}

// bucketOf is the count bucket of a username.
func bucketOf(username string) string {
	if len(username) > bucketLen {
		return username[:bucketLen]
	}
	return username
}

// setListing adds the list index keys of a new user's item.
func setListing(item map[string]types.AttributeValue, u *User) {
	if !listed(u) {
		return
	}
	item[attrList] = str(listAll.value)
	item[attrStaff] = str(flagValue(u.IsStaff))
	item[attrSupport] = str(flagValue(u.IsSupport))
	item[attrJoined] = str(joinedKey(u))
}

// listingFields are the fields the lists and their index entries depend on.
func listingFields(u *User) [13]string {
	return [13]string{u.Status, flagValue(u.IsStaff), flagValue(u.IsSupport), u.Username, u.Email, u.FirstName, u.LastName,
		u.Organization, u.JobTitle, u.PhoneNumber, u.NativeName, u.CivilNumber, u.RegistrationMethod}
}

// guardedText are the optional text fields listingGuard checks (omitempty:
// an empty one is absent).
var guardedText = []string{"first_name", "last_name", "organization", "job_title", "phone_number", "native_name", "civil_number"}

// listingChanged reports whether a change of a user from before to after
// moves it in the lists.
func listingChanged(before, after *User) bool {
	if !listed(before) && !listed(after) {
		return false
	}
	return listed(before) != listed(after) || listingFields(before) != listingFields(after)
}

// listingGuard is the condition that the fields the counts depend on are
// still as read.
func listingGuard(u *User) expression.ConditionBuilder {
	conds := []expression.ConditionBuilder{
		expression.Name("is_staff").Equal(expression.Value(u.IsStaff)),
		expression.Name("is_support").Equal(expression.Value(u.IsSupport)),
		expression.Name("username").Equal(expression.Value(u.Username)),
		expression.Name("email").Equal(expression.Value(u.Email)),
		expression.Name("registration_method").Equal(expression.Value(u.RegistrationMethod)),
	}
	for _, f := range guardedText {
		if v := fieldValue(u, f); v != "" {
			conds = append(conds, expression.Name(f).Equal(expression.Value(v)))
		} else {
			conds = append(conds, expression.AttributeNotExists(expression.Name(f)).Or(expression.Name(f).Equal(expression.Value(""))))
		}
	}
	return expression.Name("status").Equal(expression.Value(u.Status)).And(conds[0], conds[1:]...)
}

// listingWrite adds to a user's write what keeps the lists right when the
// user changes from before to after: the index keys, a guard that the
// listing fields are still as read, and the count items' updates, to go in
// the same transaction. ok is false when the change does not touch lists.
func (st *store) listingWrite(before, after *User, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (expression.UpdateBuilder, expression.ConditionBuilder, []types.TransactWriteItem, bool) {
	if !listingChanged(before, after) {
		if listingFields(before) != listingFields(after) {
			// Unlisted before and after as read; but if the account was
			// activated since, it is listed now and this write would skip its
			// index keys and counts: guard on what was read.
			return upd, cond.And(listingGuard(before)), nil, true
		}
		return upd, cond, nil, false
	}
	if listed(after) {
		upd = upd.Set(expression.Name(attrList), expression.Value(listAll.value)).
			Set(expression.Name(attrStaff), expression.Value(flagValue(after.IsStaff))).
			Set(expression.Name(attrSupport), expression.Value(flagValue(after.IsSupport))).
			Set(expression.Name(attrJoined), expression.Value(joinedKey(after)))
	} else {
		upd = upd.Remove(expression.Name(attrList)).Remove(expression.Name(attrStaff)).Remove(expression.Name(attrSupport)).
			Remove(expression.Name(attrJoined))
	}
	return upd, cond.And(listingGuard(before)), append(st.countItems(before, after), st.entryItems(before, after)...), true
}

// countDeltas is how a change from before to after (either nil) moves each
// list's buckets.
func countDeltas(before, after *User) map[string]map[string]int64 {
	d := map[string]map[string]int64{}
	for _, side := range []struct {
		u    *User
		sign int64
	}{{before, -1}, {after, 1}} {
		for _, l := range memberships(side.u) {
			if d[l.id] == nil {
				d[l.id] = map[string]int64{}
			}
			d[l.id][l.bucket(side.u)] += side.sign
		}
	}
	for id, bs := range d {
		for b, v := range bs {
			if v == 0 {
				delete(bs, b)
			}
		}
		if len(bs) == 0 {
			delete(d, id)
		}
	}
	return d
}

// The count mechanism. A list is counted by giving it an id (userList.id,
// e.g. "status#ENABLED") and returning it from memberships for the users it
// holds; then, with no more code per list:
//
//   - writes: st.countItems(before, after) (or listingWrite, which calls it)
//     gives the transaction items that move every list's counts for a change
//     of a user from before to after, all on one shard index (shardFor);
//   - reads: st.countKeys(id) are the keys of every shard of a list, to read
//     in one BatchGetItem (at most MaxCountShards keys, so beside a few
//     others); sumCounts(id, items) adds up those of the items read.
//
// Shards are items pk USERLIST#<id>, sk COUNT (shard 0, the single count
// item of the design before shards, so such a table needs no backfill) and
// COUNT#<i>. Any shard may hold any bucket, with any sign; only the sum is
// meaningful.

// countShardSK is shard i's sort key.
func countShardSK(i int) string {
	if i == 0 {
		return countSK
	}
	return countSK + "#" + strconv.Itoa(i)
}

// countShardIndex is the shard a count shard's key names.
func countShardIndex(k map[string]types.AttributeValue) int {
	sk, _ := k["sk"].(*types.AttributeValueMemberS)
	if sk == nil {
		return 0
	}
	i, _ := strconv.Atoi(strings.TrimPrefix(sk.Value, countSK+"#"))
	return i
}

// shards is how many shards each list's count has (unset: the default).
func (st *store) shards() int { return countShards(st.countShards) }

func countShards(n int) int {
	if n <= 0 {
		return config.DefaultCountShards
	}
	return n
}

// countKeys are the keys of every shard of list id's count.
func (st *store) countKeys(id string) []map[string]types.AttributeValue {
	keys := make([]map[string]types.AttributeValue, st.shards())
	for i := range keys {
		keys[i] = key(countPrefix+id, countShardSK(i))
	}
	return keys
}

// shardFor picks the shard a write of a bucket's deltas goes to: at random
// among the countSpread shards the bucket hashes to. Writes of different
// buckets spread over all shards, writes of one bucket (an import of
// usr00001, usr00002…) over countSpread of them; and a bucket's part is kept
// in about countSpread shards (a retry after a conflict may put it on any),
// so a list's shards together are about countSpread times the size of the
// single item they replace, not shards times (each is read, and written, in
// whole: their size is capacity). A transaction
// canceled by a conflict on a shard is retried on another one
// (retryConflicts, reshard). countItems puts all the lists a transaction
// moves on the one shard it picks.
func shardFor(bucket string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(bucket))
	return (int(h.Sum32()%uint32(shards)) + rand.IntN(min(countSpread, shards))) % shards
}

// isCountKey reports whether k is a count shard's key (and of which list).
func isCountKey(k map[string]types.AttributeValue) (string, bool) {
	pk, ok := k["pk"].(*types.AttributeValueMemberS)
	if !ok || !strings.HasPrefix(pk.Value, countPrefix) {
		return "", false
	}
	return strings.TrimPrefix(pk.Value, countPrefix), true
}

// countUpdate adds buckets' deltas (and their sum to the total) to shard
// shard of a list's count, creating the item if need be.
func countUpdate(table, listID string, shard int, buckets map[string]int64) *types.Update {
	return addUpdate(table, listID, shard, buckets, true)
}

// addUpdate adds buckets' deltas to shard shard of list listID's count,
// and with total their sum to its total n.
func addUpdate(table, listID string, shard int, buckets map[string]int64, total bool) *types.Update {
	names := map[string]string{}
	vals := map[string]types.AttributeValue{}
	var parts []string
	var sum int64
	for i, b := range slices.Sorted(maps.Keys(buckets)) {
		k := strconv.Itoa(i)
		names["#b"+k] = bucketAttr + b
		vals[":b"+k] = n(buckets[b])
		parts = append(parts, "#b"+k+" :b"+k)
		sum += buckets[b]
	}
	if total && sum != 0 {
		names["#n"] = "n"
		vals[":n"] = n(sum)
		parts = append([]string{"#n :n"}, parts...)
	}
	return &types.Update{TableName: aws.String(table), Key: key(countPrefix+listID, countShardSK(shard)),
		UpdateExpression: aws.String("ADD " + strings.Join(parts, ", ")), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
}

// countItem is the count item addUpdate would create on a table without
// it (SeedListed's put).
func countItem(listID string, shard int, buckets map[string]int64, total bool) map[string]types.AttributeValue {
	it := key(countPrefix+listID, countShardSK(shard))
	var sum int64
	for b, d := range buckets {
		it[bucketAttr+b] = n(d)
		sum += d
	}
	if total && sum != 0 {
		it["n"] = n(sum)
	}
	return it
}

// countItems are the count updates for a change from before to after.
func (st *store) countItems(before, after *User) []types.TransactWriteItem {
	d := countDeltas(before, after)
	var items []types.TransactWriteItem
	if len(d) == 0 {
		return nil
	}
	// One shard for every list the change moves: two such transactions
	// then meet only when they drew the same shard, not when any one of
	// their (up to 8) lists' draws did. It is picked by the user's bucket
	// (after the change, or before it for a delete); a username change
	// moves two buckets of a list, and any shard may take both deltas.
	u := after
	if !listed(u) {
		u = before
	}
	shard := shardFor(bucketOf(u.Username), st.shards())
	for _, id := range slices.Sorted(maps.Keys(d)) {
		items = append(items, types.TransactWriteItem{Update: countUpdate(st.table, id, shard, d[id])})
	}
	return items
}

// userDelete is the transaction item that deletes u's item, guarded like any
// listing change (a failed check is told apart by Service.writeFailed).
func (st *store) userDelete(u *User) types.TransactWriteItem {
	// The claims deleted beside it are the email and username read: the
	// user must still hold those, or a claim taken meanwhile would be left.
	// Its listing fields too, listed or not as read: an account activated
	// meanwhile must leave the counts with its delete.
	// And the credential epoch read (asRead): a delete authenticated before
	// a reset, a password change or a disable does not happen after it.
	cond := asRead(u).And(expression.Name("email").Equal(expression.Value(u.Email)), listingGuard(u))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil { // only for an empty builder, which this is not
		return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: userKey(u.UUID),
			ConditionExpression: aws.String("attribute_exists(pk)")}}
	}
	return types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: userKey(u.UUID),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}}
}

// errRaced marks a write that lost a race with another change of the same
// user's indexed fields (or found it gone, or its credentials changed):
// nothing was written; retryRaced tells which.
var errRaced = errors.New("the user changed since it was read")

// retryRaced is what follows a write that failed with errRaced: the user
// read afresh, to make the write again on, when it still exists with the
// credential epoch, status, flags, username and email read (only a profile
// field the list indexes changed: a write decided on an account since
// activated, disabled or renamed is not made again) and fewer than 3
// retries were made; else the answer (404, 401, or 503 with Retry-After).
func (s *Service) retryRaced(ctx context.Context, u *User, attempt int) (*User, error) {
	cur, err := s.st.get(ctx, u.UUID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, httpapi.NotFound("")
	case err != nil:
		return nil, err
	case cur.CredEpoch != u.CredEpoch:
		return nil, errCredentialsChanged
	case attempt >= 3 || cur.Status != u.Status || cur.IsStaff != u.IsStaff || cur.IsSupport != u.IsSupport ||
		cur.Username != u.Username || cur.Email != u.Email:
		return nil, errListingRace()
	}
	return cur, nil
}

// errListingRace answers a write that lost a race with another change of
// the same user's status, flags or username: nothing was written.
func errListingRace() error {
	return httpapi.Unavailable(errors.New("listing fields changed concurrently"))
}

// Order is one key of a list's ordering.
type Order struct {
	Field string
	Desc  bool
}

func lowerCmp(f func(*User) string) func(a, b *User) int {
	return func(a, b *User) int {
		if c := strings.Compare(strings.ToLower(f(a)), strings.ToLower(f(b))); c != 0 {
			return c
		}
		return strings.Compare(f(a), f(b))
	}
}

func boolCmp(f func(*User) bool) func(a, b *User) int {
	return func(a, b *User) int {
		x, y := f(a), f(b)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	}
}

// orderings are the fields a list can be ordered by. Text compares
// case-insensitively; the username, unique, breaks ties.
var orderings = map[string]func(a, b *User) int{
	"username":            func(a, b *User) int { return strings.Compare(a.Username, b.Username) },
	"email":               lowerCmp(func(u *User) string { return u.Email }),
	"first_name":          lowerCmp(func(u *User) string { return u.FirstName }),
	"last_name":           lowerCmp(func(u *User) string { return u.LastName }),
	"full_name":           lowerCmp(func(u *User) string { return u.FullName() }),
	"native_name":         lowerCmp(func(u *User) string { return u.NativeName }),
	"organization":        lowerCmp(func(u *User) string { return u.Organization }),
	"job_title":           lowerCmp(func(u *User) string { return u.JobTitle }),
	"phone_number":        lowerCmp(func(u *User) string { return u.PhoneNumber }),
	"registration_method": lowerCmp(func(u *User) string { return u.RegistrationMethod }),
	"is_active":           boolCmp(func(u *User) bool { return u.IsActive }),
	"is_staff":            boolCmp(func(u *User) bool { return u.IsStaff }),
	"is_support":          boolCmp(func(u *User) bool { return u.IsSupport }),
	"date_joined":         func(a, b *User) int { return a.DateJoined.Compare(b.DateJoined) },
	"modified":            func(a, b *User) int { return a.Modified.Compare(b.Modified) },
}

// ParseOrder reads an ordering such as "-date_joined,username" (o may be
// given several times; the values are joined).
func ParseOrder(values []string) ([]Order, error) {
	var out []Order
	var bad []string
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			o := Order{Field: strings.TrimPrefix(f, "-"), Desc: strings.HasPrefix(f, "-")}
			if _, ok := orderings[o.Field]; !ok {
				bad = append(bad, f)
				continue
			}
			out = append(out, o)
		}
	}
	if len(bad) > 0 {
		fields := slices.Sorted(maps.Keys(orderings))
		return nil, httpapi.Invalid(map[string][]string{"o": {"Cannot order by " + strings.Join(bad, ", ") +
			"; choose from " + strings.Join(fields, ", ") + ", each optionally prefixed with -."}})
	}
	return out, nil
}

// ListQuery is a list request: its filters, ordering and page.
type ListQuery struct {
	Email        string   // exact, case-insensitive
	Username     string   // exact
	UsernameList []string // exact, any of
	// Words holds the word filters by field name (WordFilters): each word
	// of the value starts a word of the field, folded (Fold).
	Words map[string]string
	// Contains holds substring filters by field name (ContainsFilters),
	// folded.
	Contains map[string]string
	// Exact holds exact filters by field name (ExactFilters), folded.
	Exact                        map[string]string
	IsActive, IsStaff, IsSupport *bool
	JoinedSince, ModifiedSince   *time.Time // on or after
	AgreedSince                  *time.Time // agreement_date on or after; never agreed never matches
	// Search (query) matches each of its words at the start of a word of
	// the first name, last name, username or email, folded.
	Search string
	// Keyword (Waldur's user_keyword) matches the username, full name or
	// email the same way (the same words as Search).
	Keyword  string
	Order    []Order // empty: username
	Page     int     // 1-based
	PageSize int
}

// ListResult is one page of a list.
type ListResult struct {
	Users []*User
	// Total is how many users match, over all pages.
	Total int
}

func containsField(u *User, field string) string {
	switch field {
	case "full_name":
		return u.FullName()
	case "first_name":
		return u.FirstName
	case "last_name":
		return u.LastName
	case "organization":
		return u.Organization
	case "job_title":
		return u.JobTitle
	case "phone_number":
		return u.PhoneNumber
	case "native_name":
		return u.NativeName
	case "description":
		return u.Description
	case "civil_number":
		return u.CivilNumber
	case "registration_method":
		return u.RegistrationMethod
	}
	return ""
}

// The text filters ListQuery knows: by word start (Words), by substring
// (Contains), exact (Exact). The exact ones and the words are answered from
// an index (index.go).
var (
	WordFilters     = []string{"full_name", "first_name", "last_name"}
	ContainsFilters = []string{"description"}
	ExactFilters    = []string{"registration_method", "organization", "civil_number", "job_title", "native_name", "phone_number"}
)

// search is one word filter: the fields it looks in and its folded words.
type search struct {
	group  int
	tokens []string
}

func wordGroup(field string) int {
	switch field {
	case "first_name":
		return fieldFirst
	case "last_name":
		return fieldLast
	}
	return groupFull
}

// searches are q's word filters.
func (q *ListQuery) searches() []search {
	var out []search
	add := func(g int, v string) {
		if t := SearchTokens(v); len(t) > 0 {
			out = append(out, search{g, t})
		}
	}
	add(groupQuery, q.Search)
	add(groupQuery, q.Keyword)
	for _, f := range slices.Sorted(maps.Keys(q.Words)) {
		add(wordGroup(f), q.Words[f])
	}
	return out
}

// flagsMatch reports whether flags (flagString) pass q's boolean filters.
func (q *ListQuery) flagsMatch(active, staff, support bool) bool {
	return (q.IsActive == nil || active == *q.IsActive) && (q.IsStaff == nil || staff == *q.IsStaff) &&
		(q.IsSupport == nil || support == *q.IsSupport)
}

// entryMatches reports whether an index entry passes q's flags, exact and
// word filters (the filters an entry carries what to check).
func (q *ListQuery) entryMatches(e entry, ss []search) bool {
	if len(e.flags) != 3 || !q.flagsMatch(e.flags[0] == '1', e.flags[1] == '1', e.flags[2] == '1') {
		return false
	}
	xv := strings.Split(e.xv, keySep)
	for f, v := range q.Exact {
		i := slices.Index(ExactFilters, f)
		if i < 0 || i >= len(xv) || xv[i] != Fold(v) {
			return false
		}
	}
	for _, s := range ss {
		if !e.text.matches(s.group, s.tokens) {
			return false
		}
	}
	return true
}

// needsUsers reports whether q has filters or an ordering an index entry
// cannot answer: they need the users themselves.
func (q *ListQuery) needsUsers() bool {
	return q.Email != "" || q.Username != "" || len(q.UsernameList) > 0 || len(q.Contains) > 0 ||
		q.JoinedSince != nil || q.ModifiedSince != nil || q.AgreedSince != nil || !q.byUsername()
}

func (q *ListQuery) byUsername() bool {
	return len(q.Order) == 0 || (len(q.Order) == 1 && q.Order[0].Field == "username")
}

func (q *ListQuery) byJoined() bool {
	return len(q.Order) == 1 && q.Order[0].Field == "date_joined"
}

func (q *ListQuery) usernameSet() map[string]bool {
	if len(q.UsernameList) == 0 {
		return nil
	}
	s := map[string]bool{}
	for _, n := range q.UsernameList {
		s[NormalizeUsername(n)] = true
	}
	return s
}

// passes reports whether u passes every filter of q, listed or not.
func (q *ListQuery) passes(u *User, names map[string]bool) bool {
	if u == nil {
		return false
	}
	if q.Email != "" && NormalizeEmail(u.Email) != NormalizeEmail(q.Email) {
		return false
	}
	if q.Username != "" && u.Username != NormalizeUsername(q.Username) {
		return false
	}
	if names != nil && !names[u.Username] {
		return false
	}
	for f, v := range q.Contains {
		if !strings.Contains(Fold(containsField(u, f)), Fold(v)) {
			return false
		}
	}
	for f, v := range q.Exact {
		if Fold(containsField(u, f)) != Fold(v) {
			return false
		}
	}
	if (q.IsActive != nil && u.IsActive != *q.IsActive) || (q.IsStaff != nil && u.IsStaff != *q.IsStaff) ||
		(q.IsSupport != nil && u.IsSupport != *q.IsSupport) {
		return false
	}
	if (q.JoinedSince != nil && u.DateJoined.Before(*q.JoinedSince)) || (q.ModifiedSince != nil && u.Modified.Before(*q.ModifiedSince)) {
		return false
	}
	if q.AgreedSince != nil && (u.AgreementDate == nil || u.AgreementDate.Before(*q.AgreedSince)) {
		return false
	}
	if ss := q.searches(); len(ss) > 0 {
		text := searchTextOf(u)
		for _, s := range ss {
			if !text.matches(s.group, s.tokens) {
				return false
			}
		}
	}
	return true
}

// sortUsers orders us by q's ordering, the username breaking ties.
func (q *ListQuery) sortUsers(us []*User) {
	order := append(slices.Clone(q.Order), Order{Field: "username"})
	slices.SortStableFunc(us, func(a, b *User) int {
		for _, o := range order {
			c := orderings[o.Field](a, b)
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// inMemory filters, sorts and pages candidates.
func (q *ListQuery) inMemory(candidates []*User) *ListResult { return q.page(candidates, true) }

// page filters, sorts and pages candidates; listedOnly leaves out the
// unactivated ones.
func (q *ListQuery) page(candidates []*User, listedOnly bool) *ListResult {
	names := q.usernameSet()
	var us []*User
	for _, u := range candidates {
		if q.passes(u, names) && (!listedOnly || listed(u)) {
			us = append(us, u)
		}
	}
	q.sortUsers(us)
	res := &ListResult{Total: len(us)}
	if off := (q.Page - 1) * q.PageSize; off < len(us) {
		res.Users = us[off:min(off+q.PageSize, len(us))]
	}
	return res
}

// planKind is how a query is answered.
type planKind int

const (
	planClaims  planKind = iota // email/username filters: claims, then the users
	planIndexed                 // a count item, one Query (and, for an entry list, one BatchGetItem)
	planEntries                 // index entries read whole, checked, then the page's users
	planScan                    // a whole index partition, filtered in memory
)

// listPlan is how a query is answered and what it reads.
type listPlan struct {
	kind planKind
	// list is the list of planIndexed and planScan.
	list userList
	// candidates are the entry lists planEntries may read (their counts
	// ride in the first request; the smallest wins), and word the longest
	// search word of three letters or more, read from WordStart instead
	// when no list is small.
	candidates []userList
	word       string
}

// flagLists are the lists of q's boolean filters, the likely narrowest
// first.
func (q *ListQuery) flagLists() []userList {
	var bools []userList
	if q.IsStaff != nil && *q.IsStaff {
		bools = append(bools, staffList(true))
	}
	if q.IsSupport != nil && *q.IsSupport {
		bools = append(bools, supportList(true))
	}
	if q.IsActive != nil {
		st := StatusEnabled
		if !*q.IsActive {
			st = StatusDisabled
		}
		bools = append(bools, statusList(st))
	}
	if q.IsStaff != nil && !*q.IsStaff {
		bools = append(bools, staffList(false))
	}
	if q.IsSupport != nil && !*q.IsSupport {
		bools = append(bools, supportList(false))
	}
	return bools
}

// flagMask is which flags q filters on and their values (flagString form;
// "0" where not filtered).
func (q *ListQuery) flagMask() (int, string) {
	mask, flags := 0, []byte("000")
	for i, b := range []*bool{q.IsActive, q.IsStaff, q.IsSupport} {
		if b != nil {
			mask |= 1 << i
			flags[i] = flagValue(*b)[0]
		}
	}
	return mask, string(flags)
}

// exactList is the entry list of an exact filter by every flag q filters
// on: one GSI partition (index.go).
func (q *ListQuery) exactList(field, value string) userList {
	mask, flags := q.flagMask()
	return exactList(exactListID(field, Fold(value)), mask, flags)
}

func (q *ListQuery) nFlags() int {
	n := 0
	for _, b := range []*bool{q.IsActive, q.IsStaff, q.IsSupport} {
		if b != nil {
			n++
		}
	}
	return n
}

// plan picks how to answer q and what it reads; words: the word lists are
// kept (config WORD_LISTS).
func (q *ListQuery) plan(words bool) listPlan {
	if q.Email != "" || q.Username != "" || q.listByClaims() {
		return listPlan{kind: planClaims, list: listAll}
	}
	bools := q.flagLists()
	l := listAll
	if len(bools) > 0 {
		l = bools[0] // the likely narrowest partition
	}
	ss := q.searches()
	others := len(q.UsernameList) > 0 || len(q.Contains) > 0 || q.JoinedSince != nil || q.ModifiedSince != nil || q.AgreedSince != nil
	if !others && len(q.Exact) == 0 && len(ss) == 0 {
		switch {
		case q.byUsername() && len(bools) <= 1:
			return listPlan{kind: planIndexed, list: l}
		case q.byUsername():
			// Two or three flags: the partition of every listed user by them.
			mask, flags := q.flagMask()
			return listPlan{kind: planIndexed, list: exactList(anyValue, mask, flags)}
		case q.byJoined() && len(bools) == 0:
			return listPlan{kind: planIndexed, list: listJoined}
		}
	}
	if !others && q.byUsername() {
		if len(q.Exact) == 1 && len(ss) == 0 {
			for f, v := range q.Exact {
				return listPlan{kind: planIndexed, list: q.exactList(f, v)}
			}
		}
		if len(q.Exact) == 0 && len(ss) == 1 && len(ss[0].tokens) == 1 && q.nFlags() == 0 {
			switch t := ss[0].tokens[0]; {
			case ss[0].group == groupQuery && utf8.RuneCountInString(t) <= 2:
				return listPlan{kind: planIndexed, list: prefixList(t)}
			case words && hasWordList(ss[0].group, t):
				return listPlan{kind: planIndexed, list: wordList(ss[0].group, t)}
			}
		}
	}
	if len(q.Exact) > 0 || len(ss) > 0 {
		p := listPlan{kind: planEntries}
		for _, f := range slices.Sorted(maps.Keys(q.Exact)) {
			p.candidates = append(p.candidates, q.exactList(f, q.Exact[f]))
		}
		for _, s := range ss {
			for _, t := range s.tokens {
				if utf8.RuneCountInString(t) <= 2 {
					p.candidates = append(p.candidates, prefixList(t))
				} else if len(t) > len(p.word) {
					p.word = t
				}
			}
		}
		// Their counts ride in the first request's BatchGetItem, beside
		// the caller: at most maxCandidates lists.
		p.candidates = p.candidates[:min(len(p.candidates), maxCandidates)]
		return p
	}
	return listPlan{kind: planScan, list: l}
}

// maxCandidates bounds the lists whose counts a query reads to pick the
// smallest (the exact filters first, then the short search words).
const maxCandidates = 6

// countKeysOf are the keys of every shard of lists' counts.
func (st *store) countKeysOf(lists ...userList) []map[string]types.AttributeValue {
	var keys []map[string]types.AttributeValue
	for _, l := range lists {
		keys = append(keys, st.countKeys(l.id)...)
	}
	return keys
}

// countOf is list l's count, summed over its shards among the items read;
// for a list by flags, over the flag combinations it holds.
func countOf(got []map[string]types.AttributeValue, l userList) listCounts {
	c := sumCounts(l.id, got)
	switch {
	case l.word != 0:
		return c.byGroup(l.word)
	case !l.flagged:
		return c
	}
	return c.byFlags(l.mask, l.flags)
}

// byFlags is the count of the users whose flags (the buckets' first three
// bytes) are as in flags where mask is set, bucketed by username alone.
func (c listCounts) byFlags(mask int, flags string) listCounts {
	buckets := map[string]int64{}
	for _, b := range c.buckets {
		if len(b.prefix) < 3 {
			continue
		}
		ok := true
		for i := range 3 {
			ok = ok && (mask&(1<<i) == 0 || b.prefix[i] == flags[i])
		}
		if ok {
			buckets[b.prefix[3:]] += b.n
		}
	}
	var out listCounts
	for b, n := range buckets {
		out.total += n
		out.buckets = append(out.buckets, bucketCount{b, n})
	}
	sort.Slice(out.buckets, func(i, j int) bool { return out.buckets[i].prefix < out.buckets[j].prefix })
	return out
}

// DefaultListScanLimit is how many users a list may read whole to filter or
// order them in memory (config LIST_SCAN_LIMIT).
const DefaultListScanLimit = 20_000

func (s *Service) scanLimit() int {
	if s.cfg.ListScanLimit > 0 {
		return s.cfg.ListScanLimit
	}
	return DefaultListScanLimit
}

// errNeedFilter answers a list that would read more than the scan limit.
func errNeedFilter(q *ListQuery, n int64, limit int) error {
	what := "more than " + strconv.Itoa(limit)
	if n > 0 {
		what = strconv.FormatInt(n, 10) + " (more than " + strconv.Itoa(limit) + ")"
	}
	// The parameter at fault: the ordering, else the first unindexed filter.
	field := "o"
	switch {
	case !q.byUsername() && !q.byJoined():
	case len(q.Contains) > 0:
		field = slices.Sorted(maps.Keys(q.Contains))[0]
	case q.JoinedSince != nil:
		field = "date_joined"
	case q.ModifiedSince != nil:
		field = "modified"
	case q.AgreedSince != nil:
		field = "agreement_date"
	case len(q.UsernameList) > 0:
		field = "username_list"
	case q.nFlags() > 1:
		field = "is_active"
	case len(q.searches()) > 0:
		field = "query"
	}
	e := httpapi.Invalid(map[string][]string{field: {"Too many users to read for this: add a filter answered from an index, or order by username or date_joined."}})
	e.Message = "This list would read " + what + " users to filter or order them: " +
		"order by username, -username, date_joined or -date_joined, or narrow it with an indexed filter " +
		"(is_active, is_staff, is_support, " + strings.Join(ExactFilters, ", ") + ", or a longer query, user_keyword, full_name, first_name or last_name)."
	return e
}

// listByClaims reports whether username_list is read through its claims:
// only a list short enough for one BatchGetItem beside the others; a longer
// one filters in memory what the other filters (or the index) give.
func (q *ListQuery) listByClaims() bool {
	return len(q.UsernameList) > 0 && len(q.UsernameList) <= maxClaimLookups
}

// claimKeys are the claims the email and username filters name.
func (q *ListQuery) claimKeys() []map[string]types.AttributeValue {
	var keys []map[string]types.AttributeValue
	if q.Email != "" {
		keys = append(keys, emailKey(q.Email))
	}
	seen := map[string]bool{}
	var names []string
	if q.listByClaims() {
		names = q.UsernameList
	}
	if q.Username != "" {
		names = append([]string{q.Username}, names...)
	}
	for _, un := range names {
		un = NormalizeUsername(un)
		if un != "" && !seen[un] {
			seen[un] = true
			keys = append(keys, usernameKey(un))
		}
	}
	return keys
}

// List authenticates the caller (Authorization header) and answers one
// page of q. Staff and support see every listed user; anyone else sees
// themselves, at no cost beyond the authentication, and, when they hold
// role grants, the members of their scopes (visible.go).
func (s *Service) List(ctx context.Context, authorization string, q ListQuery) (*ListResult, error) {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PageSize < 1 {
		q.PageSize = DefaultPageSize
	}
	p := q.plan(s.cfg.WordLists)
	var extra []map[string]types.AttributeValue
	switch p.kind {
	case planClaims:
		extra = q.claimKeys()
	case planIndexed, planScan:
		extra = s.st.countKeysOf(p.list)
	case planEntries:
		// Every shard of each candidate's count rides beside the caller in
		// one BatchGetItem (100 keys at most).
		p.candidates = p.candidates[:min(len(p.candidates), max(1, maxClaimLookups/s.st.shards()))]
		extra = s.st.countKeysOf(p.candidates...)
	}
	// The list's own reads ride in the authentication's read.
	pf := &prefetchDB{DB: s.st.db, table: s.st.table, extra: extra}
	if s.visible != nil {
		pf.along = s.visible.CallerKeys // the caller's grants, for visibleList
	}
	auth := *s
	auth.st.db = pf
	principal, err := auth.Authenticate(ctx, authorization)
	if err != nil {
		return nil, err
	}
	if !principal.User.IsStaff && !principal.User.IsSupport {
		if s.visible == nil || !principal.User.HasGrants {
			return q.inMemory([]*User{principal.User}), nil // never granted a role: no more reads
		}
		return s.visibleList(ctx, principal.User, q, pf)
	}
	got, err := pf.results(ctx)
	if err != nil {
		return nil, err
	}
	limit := s.scanLimit()
	switch p.kind {
	case planClaims:
		us, err := s.st.claimedUsers(ctx, q, got)
		if err != nil {
			return nil, err
		}
		return q.inMemory(us), nil
	case planIndexed:
		c := countOf(got, p.list)
		us, err := s.st.indexedPage(ctx, p.list, c, q)
		if err != nil {
			return nil, err
		}
		return &ListResult{Users: us, Total: int(c.total)}, nil
	case planEntries:
		return s.st.entriesPage(ctx, q, p, got, limit)
	}
	if c := countOf(got, p.list); c.total > int64(limit) {
		return nil, errNeedFilter(&q, c.total, limit)
	}
	us, err := s.st.queryList(ctx, p.list, "", 0, -1)
	if err != nil {
		return nil, err
	}
	return q.inMemory(us), nil
}

// wordFirst: a search word is read from WordStart rather than from a list
// with a count when the smallest such list holds more users than this (a
// Query reads about this many entries).
const wordFirst = 2_000

// entriesPerUser: a list may read this many index entries for every user it
// may read whole. One: an entry is a third of a user's size, but a refused
// read (a word nearly everyone has) should cost little before its 400.
const entriesPerUser = 1

// entriesPage answers a planEntries query: it reads the smallest candidate
// list (or the entries of the longest search word) whole, checks each entry
// against q, and reads the page's users; with filters an entry cannot
// answer, it reads every matching user (at most limit/20) and filters those.
func (st *store) entriesPage(ctx context.Context, q ListQuery, p listPlan, got []map[string]types.AttributeValue, limit int) (*ListResult, error) {
	var best *userList
	var bestN int64
	for i, l := range p.candidates {
		if n := countOf(got, l).total; best == nil || n < bestN {
			best, bestN = &p.candidates[i], n
		}
	}
	// The limit on entries read (see entriesPerUser).
	entryLimit := entriesPerUser * limit
	var es []entry
	var err error
	switch {
	case best != nil && (p.word == "" || bestN <= wordFirst):
		if bestN > int64(entryLimit) {
			return nil, errNeedFilter(&q, bestN, entryLimit)
		}
		if bestN == 0 {
			return &ListResult{}, nil
		}
		es, err = st.queryEntries(ctx, best.index, best.attr, best.value, "", "", 0, -1, entryLimit)
	default:
		w := truncKey(p.word)
		es, err = st.queryEntries(ctx, IndexWordStart, "wp", "w:"+runePrefix(w, 2), w, "", 0, -1, entryLimit)
	}
	if errors.Is(err, errTooMany) {
		return nil, errNeedFilter(&q, 0, entryLimit)
	}
	if err != nil {
		return nil, err
	}
	ss := q.searches()
	seen := map[string]bool{}
	var keep []entry
	for _, e := range es {
		if !seen[e.uuid] && q.entryMatches(e, ss) {
			seen[e.uuid] = true
			keep = append(keep, e)
		}
	}
	if q.needsUsers() {
		if fetch := max(100, limit/20); len(keep) > fetch {
			return nil, errNeedFilter(&q, int64(len(keep)), fetch)
		}
		us, err := st.usersByID(ctx, entryIDs(keep))
		if err != nil {
			return nil, err
		}
		return q.inMemory(us), nil
	}
	slices.SortFunc(keep, func(a, b entry) int { return strings.Compare(a.username, b.username) })
	if len(q.Order) == 1 && q.Order[0].Desc {
		slices.Reverse(keep)
	}
	res := &ListResult{Total: len(keep)}
	if off := (q.Page - 1) * q.PageSize; off < len(keep) {
		us, err := st.usersByID(ctx, entryIDs(keep[off:min(off+q.PageSize, len(keep))]))
		if err != nil {
			return nil, err
		}
		res.Users = us
	}
	return res, nil
}

func entryIDs(es []entry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.uuid
	}
	return ids
}

// claimedUsers reads the users that hold the claims q names, each claim
// kind narrowing the set: one GetItem, or one BatchGetItem for several.
func (st *store) claimedUsers(ctx context.Context, q ListQuery, got []map[string]types.AttributeValue) ([]*User, error) {
	byPK := map[string]map[string]types.AttributeValue{}
	for _, it := range got {
		byPK[pkOf(it)] = it // claims: one item per pk
	}
	holder := func(pk string) string {
		if it := byPK[pk]; it != nil {
			if u, ok := it["user"].(*types.AttributeValueMemberS); ok {
				return u.Value
			}
		}
		return ""
	}
	var ids []string
	first := true
	narrow := func(set []string) {
		if first {
			ids, first = set, false
			return
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { return !slices.Contains(set, id) })
	}
	if q.Email != "" {
		narrow([]string{holder(emailPrefix + NormalizeEmail(q.Email))})
	}
	if q.Username != "" {
		narrow([]string{holder(usernamePrefix + NormalizeUsername(q.Username))})
	}
	if q.listByClaims() {
		var set []string
		for _, un := range q.UsernameList {
			set = append(set, holder(usernamePrefix+NormalizeUsername(un)))
		}
		narrow(set)
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch len(ids) {
	case 0:
		return nil, nil
	case 1:
		u, err := st.get(ctx, ids[0])
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*User{u}, nil
	}
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, userKey(id))
	}
	items, err := st.batchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	return unmarshalUsers(items)
}

// unmarshalUsers reads the user items among items.
func unmarshalUsers(items []map[string]types.AttributeValue) ([]*User, error) {
	var us []*User
	for _, it := range items {
		if pk, _ := it["pk"].(*types.AttributeValueMemberS); pk == nil || !strings.HasPrefix(pk.Value, userPrefix) {
			continue
		}
		var u User
		if err := attributevalue.UnmarshalMap(it, &u); err != nil {
			return nil, httpapi.Internal(err)
		}
		us = append(us, &u)
	}
	return us, nil
}

// batchGet reads keys (at most 100) with strongly consistent reads,
// retrying what DynamoDB leaves unprocessed.
func (st *store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt == 5 {
			return nil, httpapi.Unavailable(errors.New("batch get left keys unprocessed"))
		}
		res, err := st.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{st.table: {Keys: keys, ConsistentRead: aws.Bool(true)}},
		})
		if err != nil {
			return nil, dbError(err)
		}
		out = append(out, res.Responses[st.table]...)
		keys = res.UnprocessedKeys[st.table].Keys
	}
	return out, nil
}

// listCounts is a list's count: the sum of its shards.
type listCounts struct {
	total   int64
	buckets []bucketCount // in username order
}

type bucketCount struct {
	prefix string
	n      int64
}

// sumCounts adds up the shards of list id's count among items (any other
// item is ignored; a shard not there counts nothing).
func sumCounts(id string, items []map[string]types.AttributeValue) listCounts {
	var c listCounts
	buckets := map[string]int64{}
	for _, item := range items {
		if l, ok := isCountKey(item); !ok || l != id {
			continue
		}
		for name, v := range item {
			num, ok := v.(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			x, err := strconv.ParseInt(num.Value, 10, 64)
			if err != nil {
				continue
			}
			switch {
			case name == "n":
				c.total += x
			case strings.HasPrefix(name, bucketAttr):
				buckets[strings.TrimPrefix(name, bucketAttr)] += x
			}
		}
	}
	c.total = max(c.total, 0)
	for b, x := range buckets {
		if x > 0 {
			c.buckets = append(c.buckets, bucketCount{b, x})
		}
	}
	// Byte order, as DynamoDB sorts strings; a short username's bucket (a
	// whole username) sorts before the longer ones it prefixes, as the
	// usernames do.
	sort.Slice(c.buckets, func(i, j int) bool { return c.buckets[i].prefix < c.buckets[j].prefix })
	return c
}

// locate finds the bucket holding the user at position pos (0-based, in
// username order) and how many of the bucket's users come before it.
func (c listCounts) locate(pos int64) (string, int64, bool) {
	for _, b := range c.buckets {
		if pos < b.n {
			return b.prefix, pos, true
		}
		pos -= b.n
	}
	return "", 0, false
}

// indexedPage reads a page of a list ordered by username: the count item
// places the page, one Query reads it.
func (st *store) indexedPage(ctx context.Context, l userList, c listCounts, q ListQuery) ([]*User, error) {
	off := int64(q.Page-1) * int64(q.PageSize)
	if off >= c.total {
		return nil, nil
	}
	count := min(int64(q.PageSize), c.total-off)
	start := off
	desc := len(q.Order) == 1 && q.Order[0].Desc
	if desc {
		start = c.total - off - count
	}
	bucket, skip, ok := c.locate(start)
	if !ok {
		return nil, nil
	}
	var us []*User
	var err error
	if l.entries {
		var es []entry
		if l.word != 0 {
			es, err = st.queryWordList(ctx, l, bucket, skip, count)
		} else {
			es, err = st.queryEntries(ctx, l.index, l.attr, l.value, "", bucket, skip, count, 0)
		}
		if err == nil {
			us, err = st.usersByID(ctx, entryIDs(es))
		}
	} else {
		us, err = st.queryList(ctx, l, bucket, skip, count)
	}
	if err != nil {
		return nil, err
	}
	if desc {
		slices.Reverse(us)
	}
	return us, nil
}

// queryList reads list l in username order from the first username at or
// after from: it skips skip users and returns the next count (count < 0:
// all of them). Each Query reads at most 1 MB.
func (st *store) queryList(ctx context.Context, l userList, from string, skip, count int64) ([]*User, error) {
	names := map[string]string{"#k": l.attr}
	vals := map[string]types.AttributeValue{":k": str(l.value)}
	cond := "#k = :k"
	if from != "" {
		names["#u"] = l.sortAttr
		vals[":from"] = str(from)
		cond += " AND #u >= :from"
	}
	in := &dynamodb.QueryInput{TableName: aws.String(st.table), IndexName: aws.String(l.index),
		KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
	return queryPages(ctx, st.db, in, skip, count, false, 0, func(it map[string]types.AttributeValue) (*User, error) {
		var u User
		if err := attributevalue.UnmarshalMap(it, &u); err != nil {
			return nil, httpapi.Internal(err)
		}
		return &u, nil
	})
}

// queryPages runs in page after page (each Query reads at most 1 MB): it
// skips skip items, parses the next count (count < 0: all of them) and stops
// there or at the partition's end. Limit asks for just what is still needed,
// unless filtered (a FilterExpression applies after Limit); maxRead > 0
// refuses a read of more items than that (errTooMany).
func queryPages[T any](ctx context.Context, db DB, in *dynamodb.QueryInput, skip, count int64, filtered bool, maxRead int,
	parse func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	var out []T
	read := 0
	for {
		if count >= 0 && !filtered {
			in.Limit = aws.Int32(int32(min(skip+count-int64(len(out)), 1<<30)))
		}
		res, err := db.Query(ctx, in)
		if err != nil {
			return nil, dbError(err)
		}
		read += len(res.Items)
		if maxRead > 0 && read > maxRead {
			return nil, errTooMany
		}
		for _, it := range res.Items {
			if skip > 0 {
				skip--
				continue
			}
			if count >= 0 && int64(len(out)) >= count {
				break
			}
			v, err := parse(it)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if (count >= 0 && int64(len(out)) >= count) || len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// prefetchDB turns the authentication's GetItem of the caller into a
// BatchGetItem that also reads extra keys (as many as fit in one request),
// so a list's own reads cost no request of their own. Every other call
// goes to the wrapped DB.
type prefetchDB struct {
	DB
	table string
	extra []map[string]types.AttributeValue
	// along names items to read with a user's item the first read asks
	// for (the caller's grants); alongRead reports that they were.
	along     func(userUUID string) []map[string]types.AttributeValue
	alongRead bool

	done    bool
	shared  map[string]bool                   // extra keys the authentication reads anyway
	got     []map[string]types.AttributeValue // the extra items read
	pending []map[string]types.AttributeValue // left unprocessed, or no room
}

func pkOf(k map[string]types.AttributeValue) string {
	if s, ok := k["pk"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// keyID is an item's or key's pk and sk as one string.
func keyID(k map[string]types.AttributeValue) string { return pkOf(k) + "\x00" + skOf(k) }

// fold returns the extra keys to read beside the keys asked (by the
// authentication), at most room of them; the rest wait for results. An
// extra key among those asked is not asked twice (DynamoDB refuses
// duplicates): take copies its item.
func (p *prefetchDB) fold(asked map[string]bool, room int) []map[string]types.AttributeValue {
	var out []map[string]types.AttributeValue
	p.shared = map[string]bool{}
	for _, k := range p.extra {
		switch id := keyID(k); {
		case asked[id]:
			p.shared[id] = true
		case len(out) < room:
			out = append(out, k)
		default:
			p.pending = append(p.pending, k)
		}
	}
	return out
}

// take keeps it when it is an extra item.
func (p *prefetchDB) take(it map[string]types.AttributeValue, asked map[string]bool) {
	if id := keyID(it); !asked[id] || p.shared[id] {
		p.got = append(p.got, it)
	}
}

// leave keeps unprocessed key k for results when it is an extra key.
func (p *prefetchDB) leave(k map[string]types.AttributeValue, asked map[string]bool) {
	if id := keyID(k); !asked[id] || p.shared[id] {
		p.pending = append(p.pending, k)
	}
}

// GetItem reads in.Key with the extra keys, the first time.
func (p *prefetchDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if p.done || aws.ToString(in.TableName) != p.table {
		return p.DB.GetItem(ctx, in, opts...)
	}
	along := p.alongOf(in.Key)
	if len(p.extra) == 0 && len(along) == 0 {
		return p.DB.GetItem(ctx, in, opts...)
	}
	p.done = true
	if len(along) > 0 { // the caller's grants, in the same request
		p.alongRead = true
		p.extra = append(slices.Clip(p.extra), along...)
	}
	want := keyID(in.Key)
	asked := map[string]bool{want: true}
	keys := append([]map[string]types.AttributeValue{in.Key}, p.fold(asked, 99)...)
	res, err := p.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		p.table: {Keys: keys, ConsistentRead: in.ConsistentRead},
	}}, opts...)
	if err != nil {
		return nil, err
	}
	var item map[string]types.AttributeValue
	for _, it := range res.Responses[p.table] {
		if keyID(it) == want {
			item = it
		}
		p.take(it, asked)
	}
	userPending := false
	for _, k := range res.UnprocessedKeys[p.table].Keys {
		if keyID(k) == want {
			userPending = true
		}
		p.leave(k, asked)
	}
	if userPending { // throttled: read the caller on its own
		return p.DB.GetItem(ctx, in, opts...)
	}
	return &dynamodb.GetItemOutput{Item: item}, nil
}

// alongOf are the along items of k when it is a user's key.
func (p *prefetchDB) alongOf(k map[string]types.AttributeValue) []map[string]types.AttributeValue {
	pk, sk := pkOf(k), skOf(k)
	if p.along == nil || KindOf(pk, sk) != ItemUser {
		return nil
	}
	return p.along(strings.TrimPrefix(pk, userPrefix))
}

// results returns the extra items that exist, reading any the first read
// did not (it left them unprocessed or had no room for them, or
// authentication never read the caller).
func (p *prefetchDB) results(ctx context.Context) ([]map[string]types.AttributeValue, error) {
	if !p.done {
		p.done, p.pending = true, p.extra
	}
	if len(p.pending) > 0 {
		items, err := table.BatchGet(ctx, p.DB, p.table, p.pending, true)
		if err != nil {
			return nil, err
		}
		p.got = append(p.got, items...)
		p.pending = nil
	}
	return p.got, nil
}

// authenticateWith is Authenticate with extra read in its own read of the
// caller (prefetchDB): the caller's GetItem becomes one BatchGetItem, an
// API key's BatchGetItem takes them too. Basic reads them after.
func (s *Service) authenticateWith(ctx context.Context, authorization string, extra []map[string]types.AttributeValue) (*Principal, *prefetchDB, error) {
	pf := &prefetchDB{DB: s.st.db, table: s.st.table, extra: extra}
	auth := *s
	auth.st.db = pf
	p, err := auth.Authenticate(ctx, authorization)
	return p, pf, err
}

// AuthenticateAlong is Authenticate (every check the same) reading the
// users with ids and the items of along (other packages' keys) in the
// authentication's own request: with Token or Bearer one BatchGetItem of
// the caller and those (up to 99 keys; with Api-Key 98), so a list page
// that read its scope first costs the Query and this one request. Basic
// reads them after the password check. The users come back in the order
// of ids (absent ones left out), the other items that exist in no
// particular order; nothing is returned when authentication fails.
func (s *Service) AuthenticateAlong(ctx context.Context, authorization string, ids []string, along []map[string]types.AttributeValue) (*Principal, []*User, []map[string]types.AttributeValue, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(ids)+len(along))
	for _, id := range ids {
		keys = append(keys, userKey(id))
	}
	p, pf, err := s.authenticateWith(ctx, authorization, append(keys, along...))
	if err != nil {
		return nil, nil, nil, err
	}
	items, err := pf.results(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	us, others, err := usersAmong(items, ids)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, us, others, nil
}
