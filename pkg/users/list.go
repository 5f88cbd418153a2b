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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/config"
	"github.com/example/accounts/pkg/httpapi"
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
}

var listAll = userList{"all", IndexList, attrList, "U"}

func statusList(status string) userList {
	return userList{"status#" + status, IndexStatus, "status", status}
}

func flagValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func staffList(b bool) userList {
	return userList{"staff#" + flagValue(b), IndexStaff, attrStaff, flagValue(b)}
}

func supportList(b bool) userList {
	return userList{"support#" + flagValue(b), IndexSupport, attrSupport, flagValue(b)}
}

// listed reports whether u appears in lists: every account but an
// unactivated one.
func listed(u *User) bool { return u != nil && u.Status != "" && u.Status != StatusUnverified }

// memberships are the lists u is counted in.
func memberships(u *User) []userList {
	if !listed(u) {
		return nil
	}
	return []userList{listAll, statusList(u.Status), staffList(u.IsStaff), supportList(u.IsSupport)}
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
}

// listingFields are the fields the lists depend on.
func listingFields(u *User) [4]string {
	return [4]string{u.Status, flagValue(u.IsStaff), flagValue(u.IsSupport), u.Username}
}

// listingChanged reports whether a change of a user from before to after
// moves it in the lists.
func listingChanged(before, after *User) bool {
	if !listed(before) && !listed(after) {
		return false
	}
	return listed(before) != listed(after) || before.Status != after.Status ||
		before.IsStaff != after.IsStaff || before.IsSupport != after.IsSupport || before.Username != after.Username
}

// listingGuard is the condition that the fields the counts depend on are
// still as read.
func listingGuard(u *User) expression.ConditionBuilder {
	return expression.Name("status").Equal(expression.Value(u.Status)).And(
		expression.Name("is_staff").Equal(expression.Value(u.IsStaff)),
		expression.Name("is_support").Equal(expression.Value(u.IsSupport)),
		expression.Name("username").Equal(expression.Value(u.Username)))
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
			Set(expression.Name(attrSupport), expression.Value(flagValue(after.IsSupport)))
	} else {
		upd = upd.Remove(expression.Name(attrList)).Remove(expression.Name(attrStaff)).Remove(expression.Name(attrSupport))
	}
	return upd, cond.And(listingGuard(before)), st.countItems(before, after), true
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
			d[l.id][bucketOf(side.u.Username)] += side.sign
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
	names := map[string]string{}
	vals := map[string]types.AttributeValue{}
	var parts []string
	var total int64
	for i, b := range slices.Sorted(maps.Keys(buckets)) {
		k := strconv.Itoa(i)
		names["#b"+k] = bucketAttr + b
		vals[":b"+k] = n(buckets[b])
		parts = append(parts, "#b"+k+" :b"+k)
		total += buckets[b]
	}
	if total != 0 {
		names["#n"] = "n"
		vals[":n"] = n(total)
		parts = append([]string{"#n :n"}, parts...)
	}
	return &types.Update{TableName: aws.String(table), Key: key(countPrefix+listID, countShardSK(shard)),
		UpdateExpression: aws.String("ADD " + strings.Join(parts, ", ")), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
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
	// Contains holds case-insensitive substring filters by field name:
	// full_name, first_name, last_name, organization, job_title,
	// phone_number, native_name, description.
	Contains map[string]string
	// Exact holds exact filters by field name: civil_number,
	// registration_method.
	Exact                        map[string]string
	IsActive, IsStaff, IsSupport *bool
	JoinedSince, ModifiedSince   *time.Time // on or after
	AgreedSince                  *time.Time // agreement_date on or after; never agreed never matches
	// Search matches first name, last name, username or email
	// (case-insensitive contains).
	Search string
	// Keyword (Waldur's user_keyword) matches username, full name or email
	// (case-insensitive contains).
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

// ContainsFilters and ExactFilters name the text filters ListQuery knows.
var (
	ContainsFilters = []string{"full_name", "first_name", "last_name", "organization", "job_title", "phone_number", "native_name", "description"}
	ExactFilters    = []string{"civil_number", "registration_method"}
)

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

// matches reports whether u is listed and passes every filter of q.
func (q *ListQuery) matches(u *User, names map[string]bool) bool {
	if !listed(u) {
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
		if !strings.Contains(strings.ToLower(containsField(u, f)), strings.ToLower(v)) {
			return false
		}
	}
	for f, v := range q.Exact {
		if containsField(u, f) != v {
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
	if q.Keyword != "" {
		s := strings.ToLower(q.Keyword)
		if !strings.Contains(strings.ToLower(u.FullName()), s) && !strings.Contains(u.Username, s) &&
			!strings.Contains(strings.ToLower(u.Email), s) {
			return false
		}
	}
	if q.Search != "" {
		s := strings.ToLower(q.Search)
		if !strings.Contains(strings.ToLower(u.FirstName), s) && !strings.Contains(strings.ToLower(u.LastName), s) &&
			!strings.Contains(u.Username, s) && !strings.Contains(strings.ToLower(u.Email), s) {
			return false
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
func (q *ListQuery) inMemory(candidates []*User) *ListResult {
	names := q.usernameSet()
	var us []*User
	for _, u := range candidates {
		if q.matches(u, names) {
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

// listPlan is how a query is answered.
type listPlan int

const (
	planClaims  listPlan = iota // email/username filters: claims, then the users
	planIndexed                 // a count item and one Query
	planScan                    // a whole index partition, filtered in memory
)

// plan picks how to answer q and the list it reads.
func (q *ListQuery) plan() (listPlan, userList) {
	if q.Email != "" || q.Username != "" || q.listByClaims() {
		return planClaims, listAll
	}
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
	l := listAll
	if len(bools) > 0 {
		l = bools[0] // the likely narrowest partition
	}
	byUsername := len(q.Order) == 0 || (len(q.Order) == 1 && q.Order[0].Field == "username")
	if byUsername && len(bools) <= 1 && len(q.UsernameList) == 0 && len(q.Contains) == 0 && len(q.Exact) == 0 &&
		q.JoinedSince == nil && q.ModifiedSince == nil && q.AgreedSince == nil && q.Search == "" && q.Keyword == "" {
		return planIndexed, l
	}
	return planScan, l
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
// page of q. Staff and support see every listed user; anyone else sees only
// themselves, at no cost beyond the authentication.
func (s *Service) List(ctx context.Context, authorization string, q ListQuery) (*ListResult, error) {
	if q.Page < 1 {
		q.Page = 1
	}
	if q.PageSize < 1 {
		q.PageSize = DefaultPageSize
	}
	plan, l := q.plan()
	var extra []map[string]types.AttributeValue
	switch plan {
	case planClaims:
		extra = q.claimKeys()
	case planIndexed:
		extra = s.st.countKeys(l.id)
	}
	// The list's own reads ride in the authentication's read.
	pf := &prefetchDB{DB: s.st.db, table: s.st.table, extra: extra}
	auth := *s
	auth.st.db = pf
	p, err := auth.Authenticate(ctx, authorization)
	if err != nil {
		return nil, err
	}
	if !p.User.IsStaff && !p.User.IsSupport {
		return q.inMemory([]*User{p.User}), nil
	}
	got, err := pf.results(ctx)
	if err != nil {
		return nil, err
	}
	switch plan {
	case planClaims:
		us, err := s.st.claimedUsers(ctx, q, got)
		if err != nil {
			return nil, err
		}
		return q.inMemory(us), nil
	case planIndexed:
		c := sumCounts(l.id, got)
		us, err := s.st.indexedPage(ctx, l, c, q)
		if err != nil {
			return nil, err
		}
		return &ListResult{Users: us, Total: int(c.total)}, nil
	}
	us, err := s.st.queryList(ctx, l, "", 0, -1)
	if err != nil {
		return nil, err
	}
	return q.inMemory(us), nil
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
	us, err := st.queryList(ctx, l, bucket, skip, count)
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
		names["#u"] = "username"
		vals[":from"] = str(from)
		cond += " AND #u >= :from"
	}
	var out []*User
	var start map[string]types.AttributeValue
	for {
		in := &dynamodb.QueryInput{TableName: aws.String(st.table), IndexName: aws.String(l.index),
			KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
			ExclusiveStartKey: start}
		if count >= 0 {
			in.Limit = aws.Int32(int32(min(skip+count-int64(len(out)), 1<<30)))
		}
		res, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, dbError(err)
		}
		for _, it := range res.Items {
			if skip > 0 {
				skip--
				continue
			}
			var u User
			if err := attributevalue.UnmarshalMap(it, &u); err != nil {
				return nil, httpapi.Internal(err)
			}
			out = append(out, &u)
		}
		if (count >= 0 && int64(len(out)) >= count) || len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = res.LastEvaluatedKey
	}
}

// prefetchDB turns the authentication's GetItem of the caller into a
// BatchGetItem that also reads extra keys, so a list's own reads cost no
// request of their own. Every other call goes to the wrapped DB.
type prefetchDB struct {
	DB
	table string
	extra []map[string]types.AttributeValue

	done    bool
	got     []map[string]types.AttributeValue // the extra items read
	pending []map[string]types.AttributeValue // left unprocessed
}

func pkOf(k map[string]types.AttributeValue) string {
	if s, ok := k["pk"].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// GetItem reads in.Key with the extra keys, the first time.
func (p *prefetchDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if p.done || len(p.extra) == 0 || aws.ToString(in.TableName) != p.table {
		return p.DB.GetItem(ctx, in, opts...)
	}
	p.done = true
	keys := append([]map[string]types.AttributeValue{in.Key}, p.extra...)
	res, err := p.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		p.table: {Keys: keys, ConsistentRead: in.ConsistentRead},
	}}, opts...)
	if err != nil {
		return nil, err
	}
	want := pkOf(in.Key)
	var item map[string]types.AttributeValue
	for _, it := range res.Responses[p.table] {
		if pkOf(it) == want {
			item = it
		} else {
			p.got = append(p.got, it)
		}
	}
	userPending := false
	for _, k := range res.UnprocessedKeys[p.table].Keys {
		if pkOf(k) == want {
			userPending = true
		} else {
			p.pending = append(p.pending, k)
		}
	}
	if userPending { // throttled: read the caller on its own
		return p.DB.GetItem(ctx, in, opts...)
	}
	return &dynamodb.GetItemOutput{Item: item}, nil
}

// results returns the extra items that exist, reading any the first read
// did not (it left them unprocessed, or authentication never read the
// caller).
func (p *prefetchDB) results(ctx context.Context) ([]map[string]types.AttributeValue, error) {
	if !p.done {
		p.done, p.pending = true, p.extra
	}
	if len(p.pending) > 0 {
		st := store{db: p.DB, table: p.table}
		items, err := st.batchGet(ctx, p.pending)
		if err != nil {
			return nil, err
		}
		p.got = append(p.got, items...)
		p.pending = nil
	}
	return p.got, nil
}
