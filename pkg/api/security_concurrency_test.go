package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/secret"
	"github.com/example/accounts/pkg/testenv"
)

func TestConcurrentSignUpsWithOneEmail(t *testing.T) {
	const n = 20
	email := testenv.Email("race")
	var mu sync.Mutex
	statuses := map[int]int{}
	var winner string
	together(n, func(i int) {
		// Each in its own case, as different people would type it.
		e := email
		if i%2 == 1 {
			e = strings.ToUpper(email)
		}
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": e, "password": testenv.DefaultPassword})
		mu.Lock()
		defer mu.Unlock()
		statuses[r.Status]++
		switch r.Status {
		case http.StatusCreated:
			winner = r.Str("uuid")
		case http.StatusBadRequest:
			if r.Str("error_description") != httpapi.DuplicateMessage {
				t.Errorf("a losing sign-up: %s", r.Body)
			}
		default:
			t.Errorf("sign-up: %d %s", r.Status, r.Body)
		}
	})
	// An unverified account is replaced by a later sign-up for its address,
	// so several may win in turn; what must hold is one account at the end,
	// holding both claims, and one activation mail per winner.
	if statuses[http.StatusCreated] < 1 || statuses[http.StatusCreated]+statuses[http.StatusBadRequest] != n {
		t.Fatalf("answers %v, want 201s and duplicate 400s only", statuses)
	}
	holder := claimHolder(t, "EMAIL#"+strings.ToLower(email))
	if got := claimHolder(t, "USERNAME#"+strings.ToLower(email)); got != holder || holder == "" {
		t.Fatalf("the username claim is held by %q, the email claim by %q", got, holder)
	}
	accounts := 0
	for _, it := range scanTable(t) {
		if attr(it, "sk") == "USER" && strings.EqualFold(attr(it, "email"), email) {
			accounts++
			if attr(it, "uuid") != holder {
				t.Errorf("a second account %s holds %s", attr(it, "uuid"), email)
			}
		}
	}
	if accounts != 1 {
		t.Fatalf("%d accounts with one email", accounts)
	}
	if mails := env.MailsTo(t, email, "Activate"); len(mails) != statuses[http.StatusCreated] {
		t.Errorf("%d activation mails for %d winners", len(mails), statuses[http.StatusCreated])
	}
	_ = winner
	// Only the holder's code activates; then every later sign-up is a duplicate.
	activated := false
	for _, m := range env.MailsTo(t, email, "Activate") {
		c := testenv.CodeIn(t, m.Text)
		r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": c, "password": testenv.DefaultPassword})
		if mustParseCode(t, c).User == holder {
			activated = r.Status == http.StatusOK
		} else if r.Status != http.StatusBadRequest {
			t.Errorf("a replaced account's code: %d %s", r.Status, r.Body)
		}
	}
	if !activated {
		t.Fatal("the holder's code did not activate")
	}
	statuses = map[int]int{}
	together(n, func(i int) {
		r := env.Do(t, "POST", "/api/users", map[string]any{"email": strings.ToUpper(email), "password": testenv.DefaultPassword})
		mu.Lock()
		defer mu.Unlock()
		statuses[r.Status]++
	})
	if statuses[http.StatusBadRequest] != n {
		t.Fatalf("sign-ups for an activated address: %v, want %d duplicates", statuses, n)
	}
	auditClaims(t)
}

func TestConcurrentRefreshesLeaveOneToken(t *testing.T) {
	const n = 10
	u := quickUser(t, "refreshrace")
	path := "/api/users/" + u.UUID + "/refresh_token"
	var mu sync.Mutex
	tokens := map[string]int{}
	statuses := map[int]int{}
	together(n, func(int) {
		r := env.Do(t, "POST", path, nil, auth(u)...)
		mu.Lock()
		defer mu.Unlock()
		statuses[r.Status]++
		switch r.Status {
		case http.StatusOK:
			tokens[r.Str("token")]++
		case http.StatusUnauthorized: // authenticated after the winner replaced the token
		default:
			t.Errorf("refresh: %d %s", r.Status, r.Body)
		}
	})
	if len(tokens) != 1 {
		t.Fatalf("answers %v returned %d different tokens, want 1", statuses, len(tokens))
	}
	working := 0
	for tok := range tokens {
		if _, err := secret.ParseToken(tok); err != nil {
			t.Fatalf("not a token: %q", tok)
		}
		if r := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+tok); r.Status == http.StatusOK {
			working++
			if r.Str("token") != tok {
				t.Errorf("me shows token %q, want %q", r.Str("token"), tok)
			}
		}
	}
	if working != 1 {
		t.Fatalf("%d of the returned tokens work, want 1", working)
	}
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(u)...); r.Status != http.StatusUnauthorized {
		t.Fatalf("the old token: %d", r.Status)
	}
}

func TestConcurrentEmailConfirmations(t *testing.T) {
	a := quickUser(t, "claimant-a")
	b := quickUser(t, "claimant-b")
	contested := testenv.Email("contested")
	for _, u := range []testenv.User{a, b} {
		if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/change_email", map[string]any{"email": contested}, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("change_email: %d %s", r.Status, r.Body)
		}
	}
	codes := map[string]string{} // user uuid -> their code
	for _, m := range env.MailsTo(t, contested, "Confirm your new email") {
		c := testenv.CodeIn(t, m.Text)
		codes[mustParseCode(t, c).User] = c
	}
	if codes[a.UUID] == "" || codes[b.UUID] == "" {
		t.Fatalf("codes %v: want one for each claimant", codes)
	}
	claimants := []testenv.User{a, b}
	status := make([]int, 2)
	together(2, func(i int) {
		u := claimants[i]
		r := env.Do(t, "POST", "/api/users/confirm_email", map[string]any{"code": codes[u.UUID]}, auth(u)...)
		status[i] = r.Status
		if r.Status != http.StatusOK && r.Status != http.StatusBadRequest {
			t.Errorf("confirm: %d %s", r.Status, r.Body)
		}
	})
	if (status[0] == http.StatusOK) == (status[1] == http.StatusOK) {
		t.Fatalf("statuses %v, want exactly one 200", status)
	}
	win, lose := a, b
	if status[1] == http.StatusOK {
		win, lose = b, a
	}
	if got := claimHolder(t, "EMAIL#"+strings.ToLower(contested)); got != win.UUID {
		t.Fatalf("the address is held by %q, want the winner %s", got, win.UUID)
	}
	// The confirmation moved the winner's credential epoch on: their old
	// token is over, and they log in with the new address.
	if r := env.Do(t, "GET", "/api/users/me", nil, auth(win)...); r.Status != http.StatusUnauthorized {
		t.Errorf("the winner's token after the change: %d", r.Status)
	}
	if got := env.Do(t, "GET", "/api/users/me", nil, "Authorization", testenv.Basic(contested, win.Password)).Str("email"); got != contested {
		t.Errorf("winner's email %q", got)
	}
	if got := env.Do(t, "GET", "/api/users/me", nil, auth(lose)...).Str("email"); got != lose.Email {
		t.Errorf("loser's email %q, want unchanged %q", got, lose.Email)
	}
	if got := claimHolder(t, "EMAIL#"+strings.ToLower(lose.Email)); got != lose.UUID {
		t.Errorf("the loser lost their old address: held by %q", got)
	}
	r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": contested, "password": testenv.DefaultPassword})
	if r.Status != http.StatusOK || r.JSON()["user"].(map[string]any)["uuid"] != win.UUID {
		t.Errorf("login with the contested address: %d %s", r.Status, r.Body)
	}
	auditClaims(t)
}
