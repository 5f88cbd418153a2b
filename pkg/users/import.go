package users

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
)

// Bounds of one import request.
const (
	// MaxImportUsers is how many users one request may carry.
	MaxImportUsers = 1000
	// importWorkers is how many creates run at once: 1,000 users within API
	// Gateway's 30 s at one transaction each (~10-30 ms on DynamoDB).
	importWorkers = 32
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
// refuses the line. Each user is created by the admin create's own
// conditional transaction (st.createAs), with its claims and the list
// counts, importWorkers at a time. No mail is sent.
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

// createAll creates the users with a bounded pool of workers, filling in
// their results.
func (s *Service) createAll(ctx context.Context, todo []pending, results []ImportResult, now time.Time) {
	stop := time.Now().Add(importBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-3*time.Second).Before(stop) {
		stop = d.Add(-3 * time.Second)
	}
	work := make(chan pending)
	var wg sync.WaitGroup
	for range min(importWorkers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if time.Now().After(stop) || ctx.Err() != nil {
					r := &results[p.idx]
					*r = withWarnings(ImportResult{Line: r.Line, Result: ImportRefused, Error: "service_unavailable",
						ErrorDescription: "This user was not written within the request's time; send the line again."}, r)
					continue
				}
				s.createOne(ctx, p, &results[p.idx], now)
			}
		}()
	}
	for _, p := range todo {
		work <- p
	}
	close(work)
	wg.Wait()
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
