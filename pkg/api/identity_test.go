package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/testenv"
)

// tag is a fresh lower-case token that keeps a test's names its own.
func tag() string { return strings.ReplaceAll(uuid.NewString()[:13], "-", "") }

// fullwidth writes the printable ASCII of s in its fullwidth forms (U+FF01...).
func fullwidth(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f {
			return r - 0x21 + 0xff01
		}
		return r
	}, s)
}

// mailsExactlyTo returns the recipients of the mails with subject sent
// exactly to addr, byte for byte (the inbox helpers compare
// case-insensitively).
func mailsExactlyTo(t *testing.T, addr, subject string) []string {
	t.Helper()
	var to []string
	for _, m := range mailsExactlyToEnv(t, env, addr, subject) {
		to = append(to, m.To...)
	}
	return to
}

func TestIdentityEmailVariantsAreOneAccount(t *testing.T) {
	local := "Foo-" + tag()
	first := local + "@Example.COM"
	canonical := strings.ToLower(first)
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": first, "password": testenv.DefaultPassword})
	if r.Status != http.StatusCreated || r.Str("email") != canonical {
		t.Fatalf("sign-up %q: %d %s; want the email stored as %q", first, r.Status, r.Body, canonical)
	}
	id := r.Str("uuid")
	env.Activate(t, canonical)
	for _, again := range []string{canonical, strings.ToUpper(first), fullwidth(first), " " + local + "@EXAMPLE.com\t"} {
		t.Run("case="+again+" is a duplicate of the activated account", func(t *testing.T) {
			username := "other-" + tag()
			r := env.Do(t, "POST", "/api/users", map[string]any{"email": again, "password": testenv.DefaultPassword, "username": username})
			if envelope(t, r, http.StatusBadRequest, "bad_request")["error_description"] != httpapi.DuplicateMessage {
				t.Fatalf("got %s", r.Body)
			}
			if holder := claimHolder(t, "USERNAME#"+username); holder != "" {
				t.Fatalf("a second account %s was made", holder)
			}
		})
	}
	if holder := claimHolder(t, "EMAIL#"+canonical); holder != id {
		t.Fatalf("the claim is held by %q, not the first account %s", holder, id)
	}
	if got := attr(userItem(t, id), "email"); got != canonical {
		t.Fatalf("stored email %q, want %q", got, canonical)
	}
}

func TestIdentityStoredEmailIsTheClaimAndTheMailAddress(t *testing.T) {
	id := tag()
	for _, tc := range []struct {
		desc, input, canonical string
		logins                 []string // other forms that log in as the account
	}{
		{"mixed case", "  Mixed.Case-" + id + "@Example.COM\t", "mixed.case-" + id + "@example.com",
			[]string{"MIXED.CASE-" + id + "@EXAMPLE.COM", fullwidth("mixed.case-" + id + "@example.com")}},
		{"a Unicode domain", "Ada-" + id + "@BÜCHER.example", "ada-" + id + "@xn--bcher-kva.example",
			[]string{"ada-" + id + "@bücher.example", "ADA-" + id + "@XN--BCHER-KVA.EXAMPLE"}},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			r := env.Do(t, "POST", "/api/users", map[string]any{"email": tc.input, "password": testenv.DefaultPassword})
			if r.Status != http.StatusCreated {
				t.Fatalf("sign-up: %d %s", r.Status, r.Body)
			}
			uid := r.Str("uuid")
			if r.Str("email") != tc.canonical || r.Str("username") != tc.canonical {
				t.Fatalf("answered email %q, username %q; want %q", r.Str("email"), r.Str("username"), tc.canonical)
			}
			if got := attr(userItem(t, uid), "email"); got != tc.canonical {
				t.Fatalf("stored email %q, want %q", got, tc.canonical)
			}
			if holder := claimHolder(t, "EMAIL#"+tc.canonical); holder != uid {
				t.Fatalf("claim EMAIL#%s held by %q, want %s", tc.canonical, holder, uid)
			}
			code := env.CodeFromMail(t, tc.canonical, "Activate")
			if to := mailsExactlyTo(t, tc.canonical, "Activate"); len(to) != 1 || to[0] != tc.canonical {
				t.Fatalf("activation mail went to %q, want exactly %q", to, tc.canonical)
			}
			if r := env.Do(t, "POST", "/api/auth/activate", map[string]any{"code": code, "password": testenv.DefaultPassword}); r.Status != http.StatusOK {
				t.Fatalf("activate: %d %s", r.Status, r.Body)
			}
			for _, login := range append([]string{tc.input}, tc.logins...) {
				r := env.Do(t, "POST", "/api/auth/login", map[string]any{"login": login, "password": testenv.DefaultPassword})
				if r.Status != http.StatusOK || r.JSON()["user"].(map[string]any)["uuid"] != uid {
					t.Errorf("login %q: %d %s", login, r.Status, r.Body)
				}
			}
			// A reset asked for in another form of the address goes to the same string.
			if r := env.Do(t, "POST", "/api/auth/password_reset", map[string]any{"email": tc.logins[0]}); r.Status != http.StatusAccepted {
				t.Fatalf("password_reset: %d %s", r.Status, r.Body)
			}
			env.CodeFromMail(t, tc.canonical, "Reset your password")
			if to := mailsExactlyTo(t, tc.canonical, "Reset your password"); len(to) != 1 || to[0] != tc.canonical {
				t.Fatalf("reset mail went to %q, want exactly %q", to, tc.canonical)
			}
			auditClaims(t)
		})
	}
}

func TestIdentityInvisibleOrMixedScriptEmailIsRefused(t *testing.T) {
	owner := quickUser(t, "lookalike")
	at := strings.IndexByte(owner.Email, '@')
	for _, tc := range []struct{ desc, email string }{
		{"a zero-width space in the local part", owner.Email[:3] + "\u200b" + owner.Email[3:]},
		{"a trailing zero-width space", owner.Email + "\u200b"},
		{"a zero-width joiner", owner.Email[:at] + "\u200d" + owner.Email[at:]},
		{"a soft hyphen in the domain", owner.Email[:at+4] + "\u00ad" + owner.Email[at+4:]},
		{"a right-to-left override", "\u202e" + owner.Email},
		{"a variation selector", owner.Email[:at] + "\ufe0f" + owner.Email[at:]},
		{"a Cyrillic а in the Latin local part", "\u0430" + owner.Email[1:]},
		{"a Cyrillic а in a Latin domain label", owner.Email[:at+1] + "ex\u0430mple.com"},
	} {
		t.Run("case="+tc.desc+" is a 400", func(t *testing.T) {
			username := "lookalike-" + tag()
			r := env.Do(t, "POST", "/api/users", map[string]any{"email": tc.email, "password": testenv.DefaultPassword, "username": username})
			if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["email"] == nil {
				t.Fatalf("fields should name email: %s", r.Body)
			}
			if holder := claimHolder(t, "USERNAME#"+username); holder != "" {
				t.Fatalf("an account %s was made", holder)
			}
			if holder := claimHolder(t, "EMAIL#"+strings.ToLower(tc.email)); holder != "" {
				t.Fatalf("the address as typed was claimed by %s", holder)
			}
		})
	}
	if holder := claimHolder(t, "EMAIL#"+owner.Email); holder != owner.UUID {
		t.Fatalf("the owner's claim is held by %q", holder)
	}
}

func TestIdentityUsernameLookAlikes(t *testing.T) {
	name := "kate-" + tag()
	email := testenv.Email("kelvin")
	r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword, "username": name})
	if r.Status != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", r.Status, r.Body)
	}
	owner := r.Str("uuid")
	env.Activate(t, email)

	for _, tc := range []struct{ desc, username string }{
		{"the KELVIN SIGN for k", "\u212a" + name[1:]},
		{"capitals", strings.ToUpper(name)},
		{"fullwidth letters", fullwidth(name)},
	} {
		t.Run("case="+tc.desc+" is the existing account: a duplicate", func(t *testing.T) {
			other := testenv.Email("kelvin-other")
			r := env.Do(t, "POST", "/api/users", map[string]any{"email": other, "password": testenv.DefaultPassword, "username": tc.username})
			if envelope(t, r, http.StatusBadRequest, "bad_request")["error_description"] != httpapi.DuplicateMessage {
				t.Fatalf("got %s", r.Body)
			}
			if holder := claimHolder(t, "EMAIL#"+other); holder != "" {
				t.Fatalf("a second account %s was made", holder)
			}
			// And it logs in as the one account.
			r = env.Do(t, "POST", "/api/auth/login", map[string]any{"login": tc.username, "password": testenv.DefaultPassword})
			if r.Status != http.StatusOK || r.JSON()["user"].(map[string]any)["uuid"] != owner {
				t.Fatalf("login %q: %d %s", tc.username, r.Status, r.Body)
			}
		})
	}
	for _, tc := range []struct{ desc, username string }{
		{"a trailing zero-width space", name + "\u200b"},
		{"a trailing zero-width joiner", name + "\u200d"},
		{"a Cyrillic а", "k\u0430" + name[2:]},
		{"a dotted capital I", "\u0130" + name},
		{"a decomposed é", name + "e\u0301"},
		{"a dot", "."},
		{"two dots", ".."},
		{"three dots", "..."},
	} {
		t.Run("case="+tc.desc+" is refused", func(t *testing.T) {
			other := testenv.Email("kelvin-refused")
			r := env.Do(t, "POST", "/api/users", map[string]any{"email": other, "password": testenv.DefaultPassword, "username": tc.username})
			if fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request"))["username"] == nil {
				t.Fatalf("fields should name username: %s", r.Body)
			}
			if holder := claimHolder(t, "EMAIL#"+other); holder != "" {
				t.Fatalf("an account %s was made", holder)
			}
		})
	}
	if holder := claimHolder(t, "USERNAME#"+name); holder != owner {
		t.Fatalf("the username claim is held by %q", holder)
	}
}

func TestIdentityNonStaffCannotRewriteTheirEmail(t *testing.T) {
	u := quickUser(t, "rewrite")
	staff := env.NewStaff(t, "rewrite-staff", false)
	path := "/api/users/" + u.UUID
	before := userItem(t, u.UUID)
	if attr(before, "email") != u.Email {
		t.Fatalf("stored email %q, want %q", attr(before, "email"), u.Email)
	}
	for _, variant := range []string{strings.ToUpper(u.Email), strings.ToUpper(u.Email[:1]) + u.Email[1:], fullwidth(u.Email), " " + u.Email} {
		t.Run("case=PATCH with "+variant+" is 403", func(t *testing.T) {
			r := env.Do(t, "PATCH", path, map[string]any{"email": variant, "first_name": "Eve"}, auth(u)...)
			m := envelope(t, r, http.StatusForbidden, "forbidden")
			if !strings.Contains(m["error_description"].(string), "change_email") {
				t.Fatalf("the refusal should point to change_email: %s", r.Body)
			}
			after := userItem(t, u.UUID)
			if attr(after, "email") != u.Email || attr(after, "version") != attr(before, "version") || attr(after, "first_name") != "" {
				t.Fatalf("a refused PATCH wrote: email %q, version %s -> %s, first_name %q",
					attr(after, "email"), attr(before, "version"), attr(after, "version"), attr(after, "first_name"))
			}
		})
	}
	t.Run("case=the stored address byte for byte is no change", func(t *testing.T) {
		cur := env.Do(t, "GET", path, nil, auth(u)...).JSON()
		cur["last_name"] = "Echo"
		r := env.Do(t, "PUT", path, cur, auth(u)...)
		if r.Status != http.StatusOK || r.Str("email") != u.Email || r.Str("last_name") != "Echo" {
			t.Fatalf("GET-modify-PUT: %d %s", r.Status, r.Body)
		}
		if got := attr(userItem(t, u.UUID), "email"); got != u.Email {
			t.Fatalf("stored email %q", got)
		}
	})
	t.Run("case=staff sending a case variant keep the canonical address", func(t *testing.T) {
		r := env.Do(t, "PATCH", path, map[string]any{"email": strings.ToUpper(u.Email)}, auth(staff)...)
		if r.Status != http.StatusOK || r.Str("email") != u.Email {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if got := attr(userItem(t, u.UUID), "email"); got != u.Email {
			t.Fatalf("stored email %q, want %q", got, u.Email)
		}
		if holder := claimHolder(t, "EMAIL#"+u.Email); holder != u.UUID {
			t.Fatalf("claim held by %q", holder)
		}
	})
}
