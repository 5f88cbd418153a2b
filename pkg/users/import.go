package users

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// Bounds of one import request.
const (
	// MaxImportUsers is how many users one request may carry.
	MaxImportUsers = 1000
	// importWorkers is how many group transactions (createGroup) run at
	// once: 1,000 users are about 150 groups, within API Gateway's 30 s at
	// ~30-100 ms a transaction on DynamoDB; few enough that a request's
	// groups seldom draw one count shard at the same moment.
	importWorkers = 8
	// importWindow is how many of the next users (in username order) a
	// group considers for its next member (importGroups).
	importWindow = 32
	// importBudget is how long an import starts new creates: the lines it
	// has not started by then are answered service_unavailable (send them
	// again), so the answer arrives within API Gateway's 30 s.
	importBudget = 24 * time.Second
)

// ImportInput is one user of an import: the staff create's fields, the
// account's status and date_joined, and optionally a hash of its password
// from the system it comes from (secret.ParseLegacy names the formats).
type ImportInput struct {
	ProfileInput
	// Status is ENABLED (the default), UNVERIFIED (waiting for activation)
	// or DISABLED.
	Status *string `json:"status"`
	// DateJoined is an RFC 3339 time, not in the future; absent = now.
	DateJoined   *string `json:"date_joined"`
	PasswordHash *string `json:"password_hash"`
	// Line is the input line (or array position) it came from.
	Line int `json:"-"`
}

// Import outcomes.
const (
	ImportCreated = "created"
	ImportSkipped = "skipped"
	ImportRefused = "refused"
)

// ImportResult is what became of one input line.
type ImportResult struct {
	Line   int    `json:"line"`
	Result string `json:"result"`
	// UUID is the created user's, or, when skipped, the existing one's.
	UUID  string `json:"uuid,omitempty"`
	Email string `json:"email,omitempty"`
	// A refusal in the contract's error shape.
	Error            string              `json:"error,omitempty"`
	ErrorDescription string              `json:"error_description,omitempty"`
	Fields           map[string][]string `json:"fields,omitempty"`
	Payload          string              `json:"payload,omitempty"`
	// Warnings: weak legacy hash parameters, accepted all the same.
	Warnings []string `json:"warnings,omitempty"`
}

// ImportTotals counts the results.
type ImportTotals struct {
	Created  int `json:"created"`
	Skipped  int `json:"skipped"`
	Refused  int `json:"refused"`
	Warnings int `json:"warnings"`
}

// ImportReport is an import's answer.
type ImportReport struct {
	Results []ImportResult `json:"results"`
	Totals  ImportTotals   `json:"totals"`
}

// Refused records a line that could not be read (not JSON, unknown
// fields) as refused with err's contract error.
func Refused(line int, err error) ImportResult {
	r := ImportResult{Line: line, Result: ImportRefused, Error: "bad_request", ErrorDescription: "This user could not be imported."}
	if e, ok := httpapi.AsError(err); ok {
		r.Error, r.ErrorDescription, r.Fields = e.Code, e.Message, e.Fields
		if len(e.Fields) > 0 {
			r.Payload = e.Message
		}
	}
	return r
}

// pending is a line that passed validation, on its way to the table.
type pending struct {
	idx  int // in the results
	user *User
}

// Import creates users as staff bring them from another system. Each line
// is validated as a staff create is; its email and username are claimed
// exactly as a sign-up's (the same normalisation, the same claim items).
// An account already holding the email (activated or not) is never
// replaced: the line is skipped with that account's uuid, so a rerun of the
// same file creates nothing twice; a username held by another account
// refuses the line. The users are written in groups (createGroup): each
// user with the admin create's own conditional items (its item, claims and
// index entries), several users in one transaction with the list counts
// updated once for the group; a line whose condition fails there is
// created on its own by the admin create's transaction (st.createAs) and
// answered as such. No mail is sent.
func (s *Service) Import(ctx context.Context, lines []ImportInput, pre []ImportResult) (*ImportReport, error) {
	if len(lines)+len(pre) > MaxImportUsers {
		return nil, httpapi.BadRequest("An import takes at most " + strconv.Itoa(MaxImportUsers) + " users per request.")
	}
	now := s.now()
	results := append([]ImportResult(nil), pre...)
	var todo []pending
	byEmail, byName := map[string]int{}, map[string]int{}
	for _, in := range lines {
		u, warnings, err := importUser(in, now)
		if err != nil {
			results = append(results, Refused(in.Line, err))
			continue
		}
		r := ImportResult{Line: in.Line, Email: u.Email, Warnings: warnings}
		// Two lines for one account: the first one wins.
		if first, dup := byEmail[NormalizeEmail(u.Email)]; dup {
			results = append(results, Refused(in.Line, httpapi.Invalid(map[string][]string{"email": {"Line " + strconv.Itoa(first) + " of this import has that email."}})))
			continue
		}
		if first, dup := byName[u.Username]; dup {
			results = append(results, Refused(in.Line, httpapi.Invalid(map[string][]string{"username": {"Line " + strconv.Itoa(first) + " of this import has that username."}})))
			continue
		}
		byEmail[NormalizeEmail(u.Email)], byName[u.Username] = in.Line, in.Line
		results = append(results, r)
		todo = append(todo, pending{idx: len(results) - 1, user: u})
	}
	// One read of every claim the batch needs (BatchGetItem, 100 keys a
	// request): most skips of a rerun cost no transaction.
	held, err := s.st.claimHolders(ctx, todo, now)
	if err != nil {
		return nil, err
	}
	var create []pending
	for _, p := range todo {
		r := &results[p.idx]
		if h := held[pkOf(emailKey(p.user.Email))]; h != "" {
			r.Result, r.UUID = ImportSkipped, h
			continue
		}
		if h := held[pkOf(usernameKey(p.user.Username))]; h != "" {
			*r = withWarnings(Refused(r.Line, httpapi.Invalid(map[string][]string{"username": {httpapi.DuplicateMessage}})), r)
			continue
		}
		create = append(create, p)
	}
	s.createAll(ctx, create, results, now)
	slices.SortFunc(results, func(a, b ImportResult) int { return a.Line - b.Line })
	rep := &ImportReport{Results: results}
	for _, r := range results {
		switch r.Result {
		case ImportCreated:
			rep.Totals.Created++
		case ImportSkipped:
			rep.Totals.Skipped++
		default:
			rep.Totals.Refused++
		}
		if len(r.Warnings) > 0 {
			rep.Totals.Warnings++
		}
	}
	return rep, nil
}

func withWarnings(r ImportResult, from *ImportResult) ImportResult {
	r.Email, r.Warnings = from.Email, from.Warnings
	return r
}

// createAll creates the users in groups (importGroups), importWorkers
// groups at a time, filling in their results.
func (s *Service) createAll(ctx context.Context, todo []pending, results []ImportResult, now time.Time) {
	stop := time.Now().Add(importBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-3*time.Second).Before(stop) {
		stop = d.Add(-3 * time.Second)
	}
	groups := s.st.importGroups(todo)
	work := make(chan []pending)
	var wg sync.WaitGroup
	for range min(importWorkers, len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				s.createGroup(ctx, g, results, now, stop)
			}
		}()
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
}

// late answers a line the request had no time left to write.
func late(r *ImportResult) {
	*r = withWarnings(ImportResult{Line: r.Line, Result: ImportRefused, Error: "service_unavailable",
		ErrorDescription: "This user was not written within the request's time; send the line again."}, r)
}

// Group commit. A user's admin create is its item, its three claims and
// its index entries (all conditional or new) plus the updates of the ~18
// count items it is counted in; the count items are shared by nearly every
// user and are billed at their whole size. An import writes several users
// in one TransactWriteItems, with one update per count item for the whole
// group (the users' deltas summed), so a count item is written once per
// group instead of once per user. The invariants are the per-user
// create's: every claim is taken by the same conditional item, the counts
// change in the same transaction as the users they count, and a group is
// all or nothing.

// importGroups packs users into groups that each fit one transaction
// (maxTransactItems): in username order (neighbours share count lists, and
// their bucket's shards), each group taking next, among the importWindow
// users that follow, the one that adds the fewest count items; no two
// users of a group touch one claim (derived slugs may coincide), since a
// transaction may not write an item twice.
func (st *store) importGroups(todo []pending) [][]pending {
	type cand struct {
		p      pending
		items  int      // its own items: user, claims, entries
		lists  []string // the count lists it moves
		claims [3]string
	}
	sorted := slices.Clone(todo)
	slices.SortStableFunc(sorted, func(a, b pending) int { return strings.Compare(a.user.Username, b.user.Username) })
	cands := make([]cand, len(sorted))
	for i, p := range sorted {
		u := withSlug(p.user)
		cands[i] = cand{p: p, items: 4 + len(st.entryItems(nil, u)), lists: slices.Collect(maps.Keys(countDeltas(nil, u))),
			claims: [3]string{pkOf(emailKey(u.Email)), pkOf(usernameKey(u.Username)), pkOf(slugKey(u.Slug))}}
	}
	used := make([]bool, len(cands))
	var groups [][]pending
	for first := 0; first < len(cands); first++ {
		if used[first] {
			continue
		}
		lists, claims, items := map[string]bool{}, map[string]bool{}, 0
		var g []pending
		add := func(i int) {
			used[i] = true
			g = append(g, cands[i].p)
			items += cands[i].items
			for _, l := range cands[i].lists {
				lists[l] = true
			}
			for _, c := range cands[i].claims {
				claims[c] = true
			}
		}
		add(first)
		for {
			best, bestNew := -1, 0
			for j, seen := first+1, 0; j < len(cands) && seen < importWindow; j++ {
				if used[j] {
					continue
				}
				seen++
				c := cands[j]
				if claims[c.claims[0]] || claims[c.claims[1]] || claims[c.claims[2]] {
					continue
				}
				added := 0
				for _, l := range c.lists {
					if !lists[l] {
						added++
					}
				}
				if items+c.items+len(lists)+added > maxTransactItems {
					continue
				}
				if best < 0 || added < bestNew {
					best, bestNew = j, added
				}
			}
			if best < 0 {
				break
			}
			add(best)
		}
		groups = append(groups, g)
	}
	return groups
}

// withSlug is u with the slug its create claims: its own, or the one
// derived from its username (u itself is not changed, so that a per-user
// create after a failed group derives it again, suffixing it if taken).
func withSlug(u *User) *User {
	if u.Slug != "" {
		return u
	}
	c := *u
	c.Slug = SlugFrom(u.Username)
	return &c
}

// groupItems is the transaction that creates the users of g: each user's
// item, claims and entries, then one count update per list for them all,
// on one shard (picked by the first user's bucket, as a single create's
// is; a conflict moves it to another, retry.go). spans[k] is the range of
// g[k]'s items.
func (st *store) groupItems(g []pending, now time.Time) ([]types.TransactWriteItem, [][2]int, error) {
	var items []types.TransactWriteItem
	spans := make([][2]int, len(g))
	deltas := map[string]map[string]int64{}
	for k, p := range g {
		u := withSlug(p.user)
		item, err := st.marshalUser(u)
		if err != nil {
			return nil, nil, err
		}
		from := len(items)
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			st.takeClaim(emailKey(u.Email), u.UUID, u.TTL, now), st.takeClaim(usernameKey(u.Username), u.UUID, u.TTL, now),
			st.takeClaim(slugKey(u.Slug), u.UUID, u.TTL, now))
		items = append(items, st.entryItems(nil, u)...)
		spans[k] = [2]int{from, len(items)}
		for id, bs := range countDeltas(nil, u) {
			if deltas[id] == nil {
				deltas[id] = map[string]int64{}
			}
			for b, v := range bs {
				deltas[id][b] += v
			}
		}
	}
	shard := shardFor(bucketOf(g[0].user.Username), st.shards())
	for _, id := range slices.Sorted(maps.Keys(deltas)) {
		for b, v := range deltas[id] {
			if v == 0 {
				delete(deltas[id], b)
			}
		}
		if len(deltas[id]) > 0 {
			items = append(items, types.TransactWriteItem{Update: countUpdate(st.table, id, shard, deltas[id])})
		}
	}
	return items, spans, nil
}

// createGroup writes the users of g in one transaction. When DynamoDB
// cancels it for failed conditions (a claim taken since claimHolders read
// it: a concurrent sign-up, create or import), the users whose items
// failed (CancellationReasons, in the order of the items) are created on
// their own by createOne, which answers each as a single create does
// (skipped, refused, or created with a suffixed slug), and the others are
// tried again as a group. Conflicts are retried below (retry.go, on
// another count shard); a transaction still failing for anything but
// conditions (conflicts past the retries, throttling, a validation error)
// leaves each user to createOne.
func (s *Service) createGroup(ctx context.Context, g []pending, results []ImportResult, now, stop time.Time) {
	one := func(p pending) {
		if time.Now().After(stop) || ctx.Err() != nil {
			late(&results[p.idx])
			return
		}
		s.createOne(ctx, p, &results[p.idx], now)
	}
	for len(g) > 1 {
		if time.Now().After(stop) || ctx.Err() != nil {
			for _, p := range g {
				late(&results[p.idx])
			}
			return
		}
		items, spans, err := s.st.groupItems(g, now)
		if err == nil {
			_, err = s.st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		}
		if err == nil {
			for _, p := range g {
				r := &results[p.idx]
				r.Result, r.UUID = ImportCreated, p.user.UUID
			}
			return
		}
		fails, conditional := txCanceled(err)
		var rest []pending
		for k, p := range g {
			failed := false
			for i := spans[k][0]; conditional && i < spans[k][1] && i < len(fails); i++ {
				failed = failed || fails[i]
			}
			if failed {
				one(p)
			} else {
				rest = append(rest, p)
			}
		}
		if len(rest) == len(g) {
			s.log.InfoContext(ctx, "import group write failed: each user on its own", "request_id", httpapi.RequestID(ctx), "users", len(g), "cause", err.Error())
			break
		}
		g = rest
	}
	for _, p := range g {
		one(p)
	}
}

func (s *Service) createOne(ctx context.Context, p pending, r *ImportResult, now time.Time) {
	err := s.st.createAs(ctx, p.user, now, false)
	var held *claimHeld
	switch {
	case err == nil:
		r.Result, r.UUID = ImportCreated, p.user.UUID
	case errors.As(err, &held) && held.Claim == 0:
		r.Result, r.UUID = ImportSkipped, held.Holder // taken meanwhile
	case errors.As(err, &held):
		*r = withWarnings(Refused(r.Line, httpapi.Invalid(map[string][]string{"username": {httpapi.DuplicateMessage}})), r)
	default:
		e, ok := httpapi.AsError(err)
		if !ok || e.Status >= 500 {
			// The line is not refused for what it says: the client may send it again.
			s.log.ErrorContext(ctx, "import create failed", "request_id", httpapi.RequestID(ctx), "line", r.Line, "cause", err.Error())
			*r = withWarnings(ImportResult{Line: r.Line, Result: ImportRefused, Error: "service_unavailable",
				ErrorDescription: "This user could not be written now; send the line again."}, r)
			return
		}
		*r = withWarnings(Refused(r.Line, err), r)
	}
}

// claimHolders reads the email and username claims of the users and
// answers the holder of each held one (by claim pk). A claim whose TTL has
// passed (an unactivated account DynamoDB has not swept yet) is free.
func (st *store) claimHolders(ctx context.Context, todo []pending, now time.Time) (map[string]string, error) {
	var keys []map[string]types.AttributeValue
	for _, p := range todo {
		keys = append(keys, emailKey(p.user.Email), usernameKey(p.user.Username))
	}
	held := map[string]string{}
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for start := 0; start < len(keys); start += 100 {
		chunk := keys[start:min(start+100, len(keys))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := st.batchGet(ctx, chunk)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			for _, it := range got {
				h, ok := it["user"].(*types.AttributeValueMemberS)
				if !ok {
					continue
				}
				if t, ok := it["ttl"].(*types.AttributeValueMemberN); ok {
					if exp, err := strconv.ParseInt(t.Value, 10, 64); err == nil && exp < now.Unix() {
						continue
					}
				}
				held[pkOf(it)] = h.Value
			}
		}()
	}
	wg.Wait()
	return held, first
}

// importUser validates one line into the account it creates.
func importUser(in ImportInput, now time.Time) (*User, []string, error) {
	p := problems{}
	if in.Password != nil {
		p.add("password", "An import takes password_hash, not password.")
		in.Password = nil
	}
	if in.Username == nil && in.Email != nil {
		// As at sign-up: the username defaults to the (canonical) email.
		if e, msg := ValidEmail(*in.Email); msg == "" {
			in.Username = &e
		}
	}
	status := StatusEnabled
	if in.Status != nil {
		status = strings.ToUpper(strings.TrimSpace(*in.Status))
		switch status {
		case StatusEnabled, StatusUnverified, StatusDisabled:
		default:
			p.add("status", "Expected ENABLED, UNVERIFIED or DISABLED.")
		}
	} else if in.IsActive != nil && !*in.IsActive {
		status = StatusDisabled
	}
	if in.IsActive != nil && *in.IsActive != (status == StatusEnabled) && status != StatusUnverified {
		p.add("is_active", "is_active must agree with status.")
	}
	in.IsActive = nil
	u, more := adminUser(&in.ProfileInput, now)
	for k, v := range more {
		p[k] = append(p[k], v...)
	}
	u.RegistrationMethod = "admin"
	switch status {
	case StatusDisabled:
		u.Status, u.IsActive = StatusDisabled, false
	case StatusUnverified:
		// Waiting for activation, as a sign-up's account does: it lives
		// UnverifiedTTL from the import, and activates with a code from
		// POST /api/auth/activation/resend and its (imported) password.
		u.Status, u.IsActive, u.TTL = StatusUnverified, false, now.Add(UnverifiedTTL).Unix()
		u.IsStaff, u.IsSupport = false, false
		if in.PasswordHash == nil {
			p.add("password_hash", "An UNVERIFIED user activates with its password: give its password_hash.")
		}
	}
	if in.DateJoined != nil {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(*in.DateJoined))
		switch {
		case err != nil:
			p.add("date_joined", "Enter an RFC 3339 time, such as 2020-01-31T12:00:00Z.")
		case t.After(now.Add(time.Minute)):
			p.add("date_joined", "date_joined cannot be in the future.")
		default:
			u.DateJoined = t.UTC().Truncate(time.Second)
		}
	}
	var warnings []string
	if in.PasswordHash != nil && strings.TrimSpace(*in.PasswordHash) != "" {
		l, err := secret.ParseLegacy(*in.PasswordHash)
		if err != nil {
			// The reason names the format's problem, never the hash.
			p.add("password_hash", "Not a password hash in a recognised format with usable parameters ("+strings.TrimPrefix(err.Error(), "secret: ")+").")
		} else {
			u.PasswordHash = l.Stored
			warnings = l.Weak
		}
	}
	if len(p) > 0 {
		return nil, nil, httpapi.Invalid(p)
	}
	return u, warnings, nil
}

// ParseImport reads an import body: JSON Lines (one object a line, blank
// lines ignored; line is the line number) or, when array is set, a JSON
// array (line is the 1-based position). Lines that are not objects of the
// known fields come back already refused.
func ParseImport(body []byte, array bool, ignore map[string]bool) ([]ImportInput, []ImportResult, error) {
	var raws []json.RawMessage
	var nums []int
	if array {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, nil, httpapi.BadRequest("The body is not a JSON array of users.")
		}
		for i := range raws {
			nums = append(nums, i+1)
		}
	} else {
		for i, l := range strings.Split(string(body), "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			raws = append(raws, json.RawMessage(l))
			nums = append(nums, i+1)
		}
	}
	if len(raws) > MaxImportUsers {
		return nil, nil, httpapi.BadRequest("An import takes at most " + strconv.Itoa(MaxImportUsers) + " users per request.")
	}
	var ins []ImportInput
	var refused []ImportResult
	for i, raw := range raws {
		var in ImportInput
		if err := httpapi.DecodeObject(raw, &in, ignore); err != nil {
			refused = append(refused, Refused(nums[i], err))
			continue
		}
		in.Line = nums[i]
		ins = append(ins, in)
	}
	return ins, refused, nil
}
