package users

// The list's index entries: small items in each listed user's item
// collection (pk USER#<uuid>, sk IX#<n>) that put the user in the entry
// GSIs, so that the exact filters and the word searches of GET /api/users
// are answered from an index (docs/LISTING.md, "Filters from an index").
//
// Each entry item carries, besides its GSI keys, what a filter needs to be
// checked on the entry alone (projected into every entry GSI): the username,
// the three flags (fl), the folded search text (wt) and the folded exact
// values (xv). The GSI keys are spread over the user's entries, at most one
// of each per item:
//
//	EntryAny            x0  "x:<field>=<value>"              one per exact field set
//	EntryActive         x1  "x:<field>=<value>|a<0|1>"       the same, by is_active
//	EntryStaff          x2  "x:<field>=<value>|s<0|1>"       by is_staff
//	EntrySupport        x3  "x:<field>=<value>|p<0|1>"       by is_support
//	EntryActiveStaff    x4  "x:<field>=<value>|a<0|1>|s<0|1>" by is_active and is_staff
//	EntryActiveSupport  x5  "…|a<0|1>|p<0|1>"                by is_active and is_support
//	EntryStaffSupport   x6  "…|s<0|1>|p<0|1>"                by is_staff and is_support
//	EntryFlags          x7  "…|a<0|1>|s<0|1>|p<0|1>"         by all three
//	PrefixOne           p1  "q:<first letter>"                of each word start
//	PrefixTwo           p2  "q:<first two letters>"           of each word start
//	WordStart           wp  "w:<first two letters>", sort key ws = "<word start>\x1f<username>"
//
// So an exact filter with any of the flags is one GSI partition, in
// username order, and so is any two or three flags without another filter
// (the pseudo-value "x:*", which every listed user has, in x4..x7 only: one
// flag alone is a user list of its own). One count item per exact value
// (list "xc:<field>=<value>", and "xc:*") counts every flag combination in
// its buckets ("b:<flags><username bucket>", flags as in fl): the count of
// any of the eight partitions is the sum of the matching combinations.
// These and the prefix lists are sorted by username and have a count
// (list.go); WordStart is sorted by the word start, for begins_with.
//
// An entry's content is a function of the user alone (indexEntries), so a
// write replaces the entries it changes and deletes those it no longer has,
// in the same transaction as the user and the counts (listingWrite).

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/example/accounts/pkg/httpapi"
)

// The entry GSIs (template.yaml) and their key attributes.
const (
	IndexJoined       = "ListByJoined"
	IndexEntryAny     = "EntryAny"
	IndexEntryActive  = "EntryActive"
	IndexEntryStaff   = "EntryStaff"
	IndexEntrySupport = "EntrySupport"
	// The exact values by two or three flags.
	IndexEntryActiveStaff   = "EntryActiveStaff"
	IndexEntryActiveSupport = "EntryActiveSupport"
	IndexEntryStaffSupport  = "EntryStaffSupport"
	IndexEntryFlags         = "EntryFlags"
	IndexPrefixOne          = "PrefixOne"
	IndexPrefixTwo          = "PrefixTwo"
	IndexWordStart          = "WordStart"

	attrJoined = "ldj"
	entrySK    = "IX#"
	// keySep separates a word start from the username in ws, and the
	// values in wt and xv; Fold never leaves a control character.
	keySep = "\x1f"
)

// Bounds of what is indexed per user. Every user's footprint stays within
// one transaction (TransactWriteItems holds 100 items): at most
// maxWordStarts word starts, so at most that many entry items, and
// 5 + 1 + 6 + 2×maxWordStarts count items (base lists, "xc:*", the exact
// values, first letters and first two letters): 60, with the user, its
// claims (at most 4) and an outbox item 66 + 24 = 90.
const (
	// maxWordStarts word starts are indexed (and searched) per user, over
	// its four search fields taken in turn (the first word of each, then
	// the second of each, …): every word of any realistic name, username
	// and address. Past it the later words of the longest fields are not
	// indexed and a search does not find the user by them.
	maxWordStarts = 24
	// maxKeyBytes bounds a word start in a key; a longer one is matched
	// on the index by its first maxKeyBytes bytes, then checked whole.
	maxKeyBytes = 64
	// maxTransactItems is DynamoDB's limit on a transaction.
	maxTransactItems = 100
)

// Fold is the form text is compared in by the list's filters: case-folded,
// without accents (NFD, combining marks removed), control characters as
// spaces (and bytes that are not UTF-8), runs of spaces as one, trimmed.
func Fold(s string) string {
	s = strings.ToValidUTF8(s, " ")
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	out = cases.Fold().String(out)
	out = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, out)
	return strings.Join(strings.Fields(out), " ")
}

// Word separators: names are split at spaces, usernames and emails also at
// . _ - + and @.
const (
	nameSeps   = " "
	handleSeps = " ._-+@"
)

// wordStarts are the suffixes of folded text that begin a word (at most
// limit, the first ones). A search token matches text when it is a prefix
// of one of them, so it may run on across a separator ("maria.g" matches
// "maria.garcia@example.com").
func wordStarts(folded, seps string, limit int) []string {
	var out []string
	for i := 0; i < len(folded) && len(out) < limit; {
		if strings.IndexByte(seps, folded[i]) >= 0 {
			i++
			continue
		}
		out = append(out, folded[i:])
		j := strings.IndexAny(folded[i:], seps)
		if j < 0 {
			break
		}
		i += j
	}
	return out
}

// Search groups: which of the search text's fields a filter looks in.
const (
	fieldFirst = 1 << iota
	fieldLast
	fieldUsername
	fieldEmail

	groupQuery = fieldFirst | fieldLast | fieldUsername | fieldEmail // query, user_keyword
	groupFull  = fieldFirst | fieldLast                              // full_name
)

// searchText is a user's folded first name, last name, username and email.
type searchText [4]string

func searchTextOf(u *User) searchText {
	return searchText{Fold(u.FirstName), Fold(u.LastName), Fold(u.Username), Fold(u.Email)}
}

func (t searchText) encode() string { return strings.Join(t[:], keySep) }

func decodeSearchText(s string) searchText {
	var t searchText
	copy(t[:], strings.SplitN(s, keySep, 4))
	return t
}

// fieldStarts are the indexed word starts of each field: maxWordStarts in
// all, taken from the fields in turn (each field's first, then each one's
// second, …), so a long address leaves the names their words.
func (t searchText) fieldStarts() [4][]string {
	var all, out [4][]string
	for i, f := range t {
		seps := nameSeps
		if i >= 2 {
			seps = handleSeps
		}
		all[i] = wordStarts(f, seps, maxWordStarts)
	}
	for n, j := 0, 0; n < maxWordStarts; j++ {
		more := false
		for i := range all {
			if j < len(all[i]) && n < maxWordStarts {
				out[i] = append(out[i], all[i][j])
				n++
				more = more || j+1 < len(all[i])
			}
		}
		if !more {
			break
		}
	}
	return out
}

// starts are the indexed word starts of the fields in group. A group with
// both names looks in the full name ("first last"): each word start of the
// first name runs on into the last name, so a phrase may span the two
// ("maria garc" starts "maria garcia").
func (t searchText) starts(group int) []string {
	var out []string
	fs := t.fieldStarts()
	for i, f := range fs {
		if group&(1<<i) == 0 {
			continue
		}
		if i == 0 && group&fieldLast != 0 && t[1] != "" {
			for _, s := range f {
				out = append(out, s+" "+t[1])
			}
			continue
		}
		out = append(out, f...)
	}
	return out
}

// matches reports whether every token is a prefix of a word start in group.
func (t searchText) matches(group int, tokens []string) bool {
	starts := t.starts(group)
	for _, tok := range tokens {
		if !slices.ContainsFunc(starts, func(s string) bool { return strings.HasPrefix(s, tok) }) {
			return false
		}
	}
	return true
}

// SearchTokens are what a search filter's value is matched as: the whole
// value, folded, as one phrase that must start a word ("contain it", at the
// start of a word: API.md), or nothing for a blank value.
func SearchTokens(v string) []string {
	if f := Fold(v); f != "" {
		return []string{f}
	}
	return nil
}

// runePrefix is the first n runes of s.
func runePrefix(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// truncKey cuts s to at most maxKeyBytes, on a rune boundary.
func truncKey(s string) string {
	if len(s) <= maxKeyBytes {
		return s
	}
	i := maxKeyBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// exactValues are the folded values of the exact filters, in ExactFilters
// order.
func exactValues(u *User) []string {
	out := make([]string, len(ExactFilters))
	for i, f := range ExactFilters {
		out[i] = Fold(containsField(u, f))
	}
	return out
}

func exactListID(field, value string) string { return "x:" + field + "=" + value }

// anyValue is the pseudo exact value every listed user has: its partitions
// by two or three flags answer those flags without another filter.
const anyValue = "x:*"

// exactCountID is the count list of an exact value's GSI partitions (its
// buckets by flag combination).
func exactCountID(id string) string { return "xc:" + strings.TrimPrefix(id, "x:") }

func prefixListID(p string) string { return "q:" + p }

// flagString is is_active, is_staff, is_support as "0"/"1" each.
func flagString(u *User) string {
	return flagValue(u.Status == StatusEnabled) + flagValue(u.IsStaff) + flagValue(u.IsSupport)
}

// Flag masks: which of is_active, is_staff, is_support an exact partition
// is by.
const (
	maskActive = 1 << iota
	maskStaff
	maskSupport
)

// flagIndexes are the GSI and key attribute of each flag mask.
var flagIndexes = [8]struct{ index, attr string }{
	{IndexEntryAny, "x0"},
	maskActive:                           {IndexEntryActive, "x1"},
	maskStaff:                            {IndexEntryStaff, "x2"},
	maskSupport:                          {IndexEntrySupport, "x3"},
	maskActive | maskStaff:               {IndexEntryActiveStaff, "x4"},
	maskActive | maskSupport:             {IndexEntryActiveSupport, "x5"},
	maskStaff | maskSupport:              {IndexEntryStaffSupport, "x6"},
	maskActive | maskStaff | maskSupport: {IndexEntryFlags, "x7"},
}

// flagKey is the partition of exact value id by the flags of mask, the
// flags being flags (flagString form).
func flagKey(id string, mask int, flags string) string {
	for i, c := range []string{"a", "s", "p"} {
		if mask&(1<<i) != 0 {
			id += "|" + c + flags[i:i+1]
		}
	}
	return id
}

// exactList is the entry list of exact value id (exactListID or anyValue)
// by the flags of mask set as in flags: a GSI partition, counted by the
// matching combinations of the value's count list.
func exactList(id string, mask int, flags string) userList {
	l := entryList(exactCountID(id), flagIndexes[mask].index, flagIndexes[mask].attr)
	l.value = flagKey(id, mask, flags)
	l.flagged, l.mask, l.flags = true, mask, flags
	return l
}

// exactCount is the count list of exact value id: every flag combination,
// bucketed by flags and username.
func exactCount(id string) userList {
	return userList{id: exactCountID(id), flagged: true, sortAttr: "username", entries: true}
}

func entryList(id, index, attr string) userList {
	return userList{id: id, index: index, attr: attr, value: id, sortAttr: "username", entries: true}
}

func prefixList(p string) userList {
	if utf8.RuneCountInString(p) == 1 {
		return entryList(prefixListID(p), IndexPrefixOne, "p1")
	}
	return entryList(prefixListID(p), IndexPrefixTwo, "p2")
}

// userIndex is what a listed user puts in the entry indexes.
type userIndex struct {
	words  []string // word starts (keys), none a prefix of another
	p1, p2 []string // first one and two letters of the word starts
	// exact are the exact values' ids (exactListID), anyValue first.
	exact []string
	text  searchText
	xv    string
	flags string
}

func indexOf(u *User) userIndex {
	ix := userIndex{text: searchTextOf(u), flags: flagString(u)}
	vals := exactValues(u)
	ix.xv = strings.Join(vals, keySep)
	ix.exact = []string{anyValue}
	for i, v := range vals {
		if v != "" {
			ix.exact = append(ix.exact, exactListID(ExactFilters[i], v))
		}
	}
	starts := ix.text.starts(groupQuery)
	var keys []string
	for _, s := range starts {
		keys = append(keys, truncKey(s))
		ix.p1 = append(ix.p1, runePrefix(s, 1))
		if utf8.RuneCountInString(s) >= 2 {
			ix.p2 = append(ix.p2, runePrefix(s, 2))
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for i, k := range keys {
		// Drop a start that prefixes another: the other finds the same tokens.
		if i+1 < len(keys) && strings.HasPrefix(keys[i+1], k) {
			continue
		}
		ix.words = append(ix.words, k)
	}
	for _, p := range []*[]string{&ix.p1, &ix.p2} {
		slices.Sort(*p)
		*p = slices.Compact(*p)
	}
	return ix
}

// entryLists are the entry lists u is counted in.
func entryLists(u *User) []userList {
	ix := indexOf(u)
	var out []userList
	for _, id := range ix.exact {
		out = append(out, exactCount(id))
	}
	for _, p := range ix.p1 {
		out = append(out, prefixList(p))
	}
	for _, p := range ix.p2 {
		out = append(out, prefixList(p))
	}
	return out
}

func entryKey(uuid string, i int) map[string]types.AttributeValue {
	return key(userPrefix+uuid, fmt.Sprintf("%s%02d", entrySK, i))
}

// indexEntries are the entry items of u (none unless listed).
func indexEntries(u *User) []map[string]types.AttributeValue {
	if !listed(u) {
		return nil
	}
	ix := indexOf(u)
	n := max(len(ix.words), len(ix.p1), len(ix.p2), len(ix.exact))
	out := make([]map[string]types.AttributeValue, 0, n)
	for i := range n {
		it := entryKey(u.UUID, i)
		it["username"] = str(u.Username)
		it["fl"] = str(ix.flags)
		it["wt"] = str(ix.text.encode())
		it["xv"] = str(ix.xv)
		if i < len(ix.exact) {
			for mask, fi := range flagIndexes {
				// One flag or none without a value: the user lists answer it.
				if ix.exact[i] != anyValue || bits.OnesCount(uint(mask)) >= 2 {
					it[fi.attr] = str(flagKey(ix.exact[i], mask, ix.flags))
				}
			}
		}
		if i < len(ix.p1) {
			it["p1"] = str(prefixListID(ix.p1[i]))
		}
		if i < len(ix.p2) {
			it["p2"] = str(prefixListID(ix.p2[i]))
		}
		if i < len(ix.words) {
			it["wp"] = str("w:" + runePrefix(ix.words[i], 2))
			it["ws"] = str(ix.words[i] + keySep + u.Username)
		}
		out = append(out, it)
	}
	return out
}

// entryItems are the transaction items that move u's entries from before to
// after (either nil): puts of the entries that change, deletes of those
// that go.
func (st *store) entryItems(before, after *User) []types.TransactWriteItem {
	var old, next []map[string]types.AttributeValue
	if before != nil {
		old = indexEntries(before)
	}
	if after != nil {
		next = indexEntries(after)
	}
	var items []types.TransactWriteItem
	for i, it := range next {
		if i < len(old) && sameItem(old[i], it) {
			continue
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: it}})
	}
	for i := len(next); i < len(old); i++ {
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(st.table), Key: entryKey(before.UUID, i)}})
	}
	return items
}

func sameItem(a, b map[string]types.AttributeValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		x, ok1 := v.(*types.AttributeValueMemberS)
		y, ok2 := w.(*types.AttributeValueMemberS)
		if !ok || !ok1 || !ok2 || x.Value != y.Value {
			return false
		}
	}
	return true
}

// errTooManyIndexItems refuses a write whose transaction would exceed
// DynamoDB's 100 items: it moves the user in too many list indexes at once.
func errTooManyIndexItems(n int) error {
	return httpapi.BadRequest(fmt.Sprintf("This change moves the account in too many list indexes at once (%d transaction items; DynamoDB allows %d): change fewer name, email or filterable fields in one request.", n, maxTransactItems))
}

// entry is an index entry as a list reads it.
type entry struct {
	uuid, username, flags, xv string
	text                      searchText
}

func parseEntry(it map[string]types.AttributeValue) entry {
	s := func(k string) string {
		if v, ok := it[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	return entry{uuid: strings.TrimPrefix(s("pk"), userPrefix), username: s("username"), flags: s("fl"), xv: s("xv"),
		text: decodeSearchText(s("wt"))}
}

// queryEntries reads the entries of a GSI partition (with an optional
// begins_with on its sort key ws), in key order, at most limit of them; more
// is errTooMany.
func (st *store) queryEntries(ctx context.Context, index, attr, value, wordPrefix string, from string, skip, count int64, limit int) ([]entry, error) {
	names := map[string]string{"#k": attr}
	vals := map[string]types.AttributeValue{":k": str(value)}
	cond := "#k = :k"
	switch {
	case wordPrefix != "":
		names["#s"] = "ws"
		vals[":p"] = str(wordPrefix)
		cond += " AND begins_with(#s, :p)"
	case from != "":
		names["#s"] = "username"
		vals[":from"] = str(from)
		cond += " AND #s >= :from"
	}
	in := &dynamodb.QueryInput{TableName: aws.String(st.table), IndexName: aws.String(index),
		KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
	return queryPages(ctx, st.db, in, skip, count, false, limit, func(it map[string]types.AttributeValue) (entry, error) {
		return parseEntry(it), nil
	})
}

// errTooMany marks a read that would pass the list's scan limit.
var errTooMany = errors.New("too many index entries to read")

// usersByID reads users in the order of ids (BatchGetItem, 100 keys a
// request); one gone since the index was read is left out.
func (st *store) usersByID(ctx context.Context, ids []string) ([]*User, error) {
	byID := map[string]*User{}
	for chunk := range slices.Chunk(ids, 100) {
		keys := make([]map[string]types.AttributeValue, 0, len(chunk))
		for _, id := range chunk {
			keys = append(keys, userKey(id))
		}
		items, err := st.batchGet(ctx, keys)
		if err != nil {
			return nil, err
		}
		us, err := unmarshalUsers(items)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			byID[u.UUID] = u
		}
	}
	out := make([]*User, 0, len(ids))
	for _, id := range ids {
		if u := byID[id]; u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}
