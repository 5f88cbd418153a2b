package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/example/accounts/pkg/api"
	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/remote"
	"github.com/example/accounts/pkg/testenv"
)

// idp is the remote identity source the service under test is configured
// with (TestMain starts it before the stack); tests program its answers
// per username.
var idp *fakeIdP

// idpToken is the bearer secret the service sends to idp.
const idpToken = "idp-bearer-secret-7f3a9c"

// idpTimeout is the service's REMOTE_USERINFO_TIMEOUT_MS in these tests.
const idpTimeout = 300 * time.Millisecond

// idpAnswer is what the fake identity source answers for one username.
type idpAnswer struct {
	status      int    // default 200
	contentType string // default application/json
	body        string
	hang        bool // answer nothing until the caller gives up
}

// fakeIdP plays the remote identity source: GET /userinfo/{username} with a
// bearer token, answering as programmed (404 for anyone not programmed).
type fakeIdP struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers map[string]idpAnswer
	calls   map[string]int
	auth    []string
}

func newFakeIdP() *fakeIdP {
	f := &fakeIdP{answers: map[string]idpAnswer{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeIdP) serve(w http.ResponseWriter, r *http.Request) {
	username, ok := strings.CutPrefix(r.URL.Path, "/userinfo/")
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.calls[username]++
	a, known := f.answers[username]
	f.mu.Unlock()
	if !ok || !known || r.Header.Get("Authorization") != "Bearer "+idpToken {
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
		return
	}
	if a.hang {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	ct := a.contentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	if a.status != 0 {
		w.WriteHeader(a.status)
	}
	io.WriteString(w, a.body)
}

// Env is the service configuration that points at the fake source.
func (f *fakeIdP) Env() map[string]string {
	return map[string]string{
		"REMOTE_USERINFO_URL":        f.srv.URL + "/userinfo/{username}",
		"REMOTE_USERINFO_TOKEN":      idpToken,
		"REMOTE_IDP_NAME":            "eduteams",
		"REMOTE_IDP_LABEL":           "eduTEAMS",
		"REMOTE_IDP_MANAGEMENT_URL":  "https://eduteams.example.org/profile",
		"REMOTE_USERINFO_TIMEOUT_MS": fmt.Sprint(idpTimeout.Milliseconds()),
	}
}

// Answer programs the answer for username.
func (f *fakeIdP) Answer(username string, a idpAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[username] = a
}

// Calls counts the requests for username.
func (f *fakeIdP) Calls(username string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[username]
}

// Close stops the server.
func (f *fakeIdP) Close() { f.srv.Close() }

// graceClaims is a full answer with the sub "{sub}": withSub gives it one,
// since a sub links one account at most.
const graceClaims = `{"sub":"{sub}","given_name":"Grace","family_name":"Hopper",
	"native_name":"Грейс Хоппер","title":"Rear Admiral","phone_number":"+1 555 0100",
	"schac_home_organization":"navy.mil","locale":"en-US","birthdate":"1906-12-09",
	"picture":"https://idp.example.org/p/grace.png","eduperson_affiliation":["member","staff"],
	"email":"grace@navy.example.org","email_verified":true}`

// withSub is claims (a template with "{sub}") for sub, or a fresh sub when
// sub is "".
func withSub(claims, sub string) string {
	if sub == "" {
		sub = "sub-" + uuid.NewString()
	}
	return strings.ReplaceAll(claims, "{sub}", sub)
}

// pulledFields are the fields graceClaims sets, in the order the service lists them.
var pulledFields = []any{"first_name", "last_name", "native_name", "job_title", "phone_number",
	"organization", "preferred_language", "birth_date", "image", "affiliations"}

func TestPullRemoteUser(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	support := env.NewStaff(t, "support", true)
	u := env.NewUser(t, "synced")
	other := env.NewUser(t, "other")
	username := strings.ToLower(u.Email)
	path := "/api/users/" + u.UUID + "/pull_remote_user"
	userPath := "/api/users/" + u.UUID
	// get reads the stored user, with its ETag (the version) as "etag", so
	// that comparing two reads catches any write.
	get := func(t *testing.T) map[string]any {
		t.Helper()
		r := env.Do(t, "GET", userPath, nil, auth(staff)...)
		if r.Status != 200 {
			t.Fatalf("GET: %d %s", r.Status, r.Body)
		}
		m := r.JSON()
		m["etag"] = r.Header.Get("ETag")
		return m
	}
	sub := "sub-" + uuid.NewString()
	idp.Answer(username, idpAnswer{body: withSub(graceClaims, sub)})

	t.Run("case=only staff may pull", func(t *testing.T) {
		before := get(t)
		for _, tc := range []struct {
			desc   string
			header []string
			want   int
		}{
			{"the user themselves get 403", auth(u), 403},
			{"support get 403", auth(support), 403},
			{"another user gets 404", auth(other), 404},
			{"anonymous gets 401", nil, 401},
		} {
			r := env.Do(t, "POST", path, nil, tc.header...)
			if r.Status != tc.want {
				t.Errorf("%s: got %d %s", tc.desc, r.Status, r.Body)
			}
		}
		if n := idp.Calls(username); n != 0 {
			t.Errorf("the identity source was asked %d times for refused callers", n)
		}
		if after := get(t); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused pull changed the user:\n%v\n%v", before, after)
		}
	})

	t.Run("case=a staff pull sets the fields and identity_provider_fields", func(t *testing.T) {
		before := get(t)
		var r *testenv.Resp
		used := env.Requests.Measure(func() { r = env.Do(t, "POST", path, nil, auth(staff)...) })
		if r.Status != 200 || r.Header.Get("ETag") == "" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		// The caller's and the target's reads, ONE transaction that links
		// the account to the sub, and the read back.
		if used.Requests > 4 || used.ByOp["TransactWriteItems"] != 1 {
			t.Errorf("%d DynamoDB requests %v, want at most 4 with one TransactWriteItems", used.Requests, used.ByOp)
		}
		want := map[string]any{
			"first_name": "Grace", "last_name": "Hopper", "full_name": "Grace Hopper", "native_name": "Грейс Хоппер",
			"job_title": "Rear Admiral", "phone_number": "+1 555 0100", "organization": "navy.mil",
			"preferred_language": "en-US", "birth_date": "1906-12-09", "image": "https://idp.example.org/p/grace.png",
			"affiliations":             []any{"member", "staff"},
			"identity_provider_fields": pulledFields,
			"identity_provider_name":   "eduteams", "identity_provider_label": "eduTEAMS",
			"identity_provider_management_url": "https://eduteams.example.org/profile",
			"identity_source":                  "eduteams",
			// Decisions: the email never comes from the source, and an
			// account that signed up here keeps its registration method.
			"email": u.Email, "registration_method": "default",
		}
		for _, got := range []map[string]any{r.JSON(), get(t)} {
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		}
		if r.Header.Get("ETag") == before["etag"] {
			t.Errorf("the version was not bumped: ETag %s", r.Header.Get("ETag"))
		}
		if n := idp.Calls(username); n != 1 {
			t.Errorf("the identity source was asked %d times", n)
		}
		idp.mu.Lock()
		last := idp.auth[len(idp.auth)-1]
		idp.mu.Unlock()
		if last != "Bearer "+idpToken {
			t.Errorf("Authorization sent: %q", last)
		}
	})

	t.Run("case=the user may not change the pulled fields", func(t *testing.T) {
		before := get(t)
		for _, body := range []map[string]any{
			{"first_name": "Amazing"}, {"last_name": "X"}, {"native_name": "X"}, {"job_title": "X"},
			{"phone_number": "+1 555 0199"}, {"organization": "X"}, {"preferred_language": "fr"},
			{"birth_date": "1950-01-01"}, {"image": "https://example.org/x.png"},
			{"name": "Amazing"}, {"phone": "+1 555 0199"}, // the UbiOps aliases too
			{"description": "mine", "first_name": "Amazing"},
		} {
			r := env.Do(t, "PATCH", userPath, body, auth(u)...)
			if r.Status != 403 || r.Str("error") != "forbidden" || !strings.HasPrefix(r.Str("error_description"), "You may not change: ") {
				t.Errorf("PATCH %v: got %d %s", body, r.Status, r.Body)
			}
		}
		if after := get(t); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused PATCH changed the user:\n%v\n%v", before, after)
		}
	})

	t.Run("case=GET-modify-PUT with the pulled fields unchanged works", func(t *testing.T) {
		cur := env.Do(t, "GET", userPath, nil, auth(u)...).JSON()
		cur["description"] = "sent back whole"
		delete(cur, "email")
		r := env.Do(t, "PUT", userPath, cur, auth(u)...)
		if r.Status != 200 || r.Str("description") != "sent back whole" || r.Str("first_name") != cur["first_name"] {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=the user still changes fields the source did not set", func(t *testing.T) {
		r := env.Do(t, "PATCH", userPath, map[string]any{"description": "Inventor of the compiler"}, auth(u)...)
		if r.Status != 200 || r.Str("description") != "Inventor of the compiler" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=staff may change the pulled fields", func(t *testing.T) {
		r := env.Do(t, "PATCH", userPath, map[string]any{"job_title": "Commodore"}, auth(staff)...)
		if r.Status != 200 || r.Str("job_title") != "Commodore" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	for _, tc := range []struct {
		desc   string
		answer idpAnswer
		status int
		code   string
		msg    string
	}{
		{"a user the source does not know is a 404", idpAnswer{status: 404, body: `{"error":"not_found"}`},
			404, "not_found", "The identity source has no such user."},
		{"a source that times out is a 502", idpAnswer{hang: true},
			502, "bad_gateway", "The identity source did not answer within 300ms."},
		{"bad JSON is a 502", idpAnswer{body: `{"given_name": "Gra`},
			502, "bad_gateway", "The identity source's answer is not a JSON object."},
		{"a failing source is a 502", idpAnswer{status: 500, body: `{}`},
			502, "bad_gateway", "The identity source failed (HTTP 500)."},
		{"an HTML answer is a 502", idpAnswer{contentType: "text/html; charset=utf-8", body: "<html>Sign in</html>"},
			502, "bad_gateway", "The identity source answered with text/html; charset=utf-8, not JSON."},
	} {
		t.Run("case="+tc.desc+" and changes nothing", func(t *testing.T) {
			idp.Answer(username, tc.answer)
			before := get(t)
			start := time.Now()
			r := env.Do(t, "POST", path, nil, auth(staff)...)
			if r.Status != tc.status || r.Str("error") != tc.code || r.Str("error_description") != tc.msg {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if tc.answer.hang && time.Since(start) > idpTimeout+2*time.Second {
				t.Errorf("the timeout took %s", time.Since(start))
			}
			if after := get(t); !reflect.DeepEqual(before, after) {
				t.Errorf("a failed pull changed the user:\n%v\n%v", before, after)
			}
		})
	}

	t.Run("case=a later pull unlocks fields the source no longer gives", func(t *testing.T) {
		idp.Answer(username, idpAnswer{body: `{"sub":"` + sub + `","given_name":"Grace","family_name":"Hopper"}`})
		var r *testenv.Resp
		used := env.Requests.Measure(func() { r = env.Do(t, "POST", path, nil, auth(staff)...) })
		if r.Status != 200 || !reflect.DeepEqual(r.JSON()["identity_provider_fields"], []any{"first_name", "last_name"}) {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		// Linked already: the caller's and the target's reads, then ONE UpdateItem.
		if used.Requests > 3 || used.ByOp["UpdateItem"] != 1 {
			t.Errorf("%d DynamoDB requests %v, want at most 3 with one UpdateItem", used.Requests, used.ByOp)
		}
		if r.Str("job_title") != "Commodore" || r.Str("organization") != "navy.mil" {
			t.Errorf("fields the source stopped giving lost their values: %s", r.Body)
		}
		if r := env.Do(t, "PATCH", userPath, map[string]any{"job_title": "Admiral"}, auth(u)...); r.Status != 200 {
			t.Errorf("PATCH of an unlocked field: %d %s", r.Status, r.Body)
		}
		if r := env.Do(t, "PATCH", userPath, map[string]any{"first_name": "G"}, auth(u)...); r.Status != 403 {
			t.Errorf("PATCH of a still-locked field: %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=values a PATCH would refuse are left out and unlocked", func(t *testing.T) {
		idp.Answer(username, idpAnswer{body: `{"sub":"` + sub + `","given_name":"Grace","birthdate":"2999-01-01",
			"phone_number":"` + strings.Repeat("9", 41) + `","eduperson_affiliation":["` + strings.Repeat("a", 151) + `"]}`})
		before := get(t)
		r := env.Do(t, "POST", path, nil, auth(staff)...)
		if r.Status != 200 || !reflect.DeepEqual(r.JSON()["identity_provider_fields"], []any{"first_name"}) {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		got := r.JSON()
		for _, f := range []string{"birth_date", "phone_number", "affiliations", "job_title"} {
			if !reflect.DeepEqual(got[f], before[f]) {
				t.Errorf("%s changed: %v -> %v", f, before[f], got[f])
			}
		}
		if !strings.Contains(env.Logs.String(), `"fields":"phone_number,birth_date,affiliations"`) {
			t.Errorf("the refused values were not logged by name")
		}
	})

	if strings.Contains(env.Logs.String(), idpToken) {
		t.Error("the logs carry the identity source's bearer secret")
	}
}

// TestPullRemoteUserUnconfigured runs the handler of a deployment without a
// remote identity source.
func TestPullRemoteUserUnconfigured(t *testing.T) {
	staff := env.NewStaff(t, "staff", false)
	u := env.NewUser(t, "unsynced")
	a := &api.API{Users: env.API.Users, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	out, err := a.PullRemoteUser()(context.Background(), events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /api/users/{uuid}/pull_remote_user", RawPath: "/api/users/" + u.UUID + "/pull_remote_user",
		Headers:        map[string]string{"authorization": "Token " + staff.Token},
		PathParameters: map[string]string{"uuid": u.UUID},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.Unmarshal([]byte(out.Body), &body)
	if out.StatusCode != 503 || body["error"] != "service_unavailable" || body["error_description"] != "No remote identity source is configured for this service." || out.Headers["Retry-After"] != "" {
		t.Fatalf("got %d %v %s", out.StatusCode, out.Headers, out.Body)
	}
}

// TestPullRemoteUserLinksTheRemoteSub: the identity source is asked by
// username, which users choose, so its answers are bound to the stable sub
// the account was first linked to; a sub links one account at most.
func TestPullRemoteUserLinksTheRemoteSub(t *testing.T) {
	ctx := context.Background()
	staff := env.NewStaff(t, "link-staff", false)
	a := quickUser(t, "link-a")
	b := quickUser(t, "link-b")
	remoteName := "remote-" + uuid.NewString()[:8] // a's username at the source
	subA := "sub-a-" + uuid.NewString()
	pull := func(u testenv.User) *testenv.Resp {
		return env.Do(t, "POST", "/api/users/"+u.UUID+"/pull_remote_user", nil, auth(staff)...)
	}
	rename := func(u testenv.User, name string) {
		t.Helper()
		if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"username": name}, auth(u)...); r.Status != 200 {
			t.Fatalf("rename to %s: %d %s", name, r.Status, r.Body)
		}
	}
	refused := func(t *testing.T, u testenv.User, status int, code string) {
		t.Helper()
		before := userItem(t, u.UUID)
		envelope(t, pull(u), status, code)
		if after := userItem(t, u.UUID); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused pull changed the user:\n%v\n%v", before, after)
		}
	}
	rename(a, remoteName)
	idp.Answer(remoteName, idpAnswer{body: withSub(graceClaims, subA)})

	t.Run("case=the first pull links the account to the sub, which no answer shows", func(t *testing.T) {
		r := pull(a)
		if r.Status != 200 || r.Str("first_name") != "Grace" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if got := attr(userItem(t, a.UUID), "remote_sub"); got != subA {
			t.Errorf("remote_sub %q, want %q", got, subA)
		}
		if got := claimHolder(t, "REMOTESUB#"+subA); got != a.UUID {
			t.Errorf("the sub's claim is held by %q", got)
		}
		for _, r := range []*testenv.Resp{r, env.Do(t, "GET", "/api/users/"+a.UUID, nil, auth(a)...),
			env.Do(t, "GET", "/api/users/me", nil, auth(a)...), env.Do(t, "GET", "/api/users?username="+remoteName, nil, auth(staff)...)} {
			if strings.Contains(string(r.Body), subA) || strings.Contains(string(r.Body), "remote_sub") {
				t.Errorf("an answer shows the sub: %s", r.Body)
			}
		}
	})

	t.Run("case=an account renamed to the linked account's remote username gets nothing of it", func(t *testing.T) {
		rename(a, remoteName+".moved")
		rename(b, remoteName) // now the source's answer for this name is about a
		calls := idp.Calls(remoteName)
		refused(t, b, http.StatusConflict, "conflict")
		if idp.Calls(remoteName) != calls+1 {
			t.Errorf("the source was not asked for %s", remoteName)
		}
		if got := claimHolder(t, "REMOTESUB#"+subA); got != a.UUID {
			t.Errorf("the sub's claim moved to %q", got)
		}
		if r := env.Do(t, "GET", "/api/users/"+b.UUID, nil, auth(b)...); r.Str("first_name") == "Grace" || r.Str("identity_source") != "" {
			t.Errorf("b got a's data: %s", r.Body)
		}
	})

	t.Run("case=an answer with another sub than the linked one is refused", func(t *testing.T) {
		idp.Answer(remoteName+".moved", idpAnswer{body: withSub(graceClaims, "sub-someone-else-"+uuid.NewString())})
		refused(t, a, http.StatusConflict, "conflict")
		// The source renamed its user too: the linked sub under the new name applies.
		idp.Answer(remoteName+".moved", idpAnswer{body: withSub(graceClaims, subA)})
		if r := pull(a); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	t.Run("case=an answer without a usable sub is refused", func(t *testing.T) {
		c := quickUser(t, "link-c")
		cn := strings.ToLower(c.Email)
		for _, body := range []string{`{"given_name":"Eve"}`, `{"sub":"  ","given_name":"Eve"}`, `{"sub":42,"given_name":"Eve"}`,
			`{"sub":"` + strings.Repeat("s", 256) + `","given_name":"Eve"}`} {
			idp.Answer(cn, idpAnswer{body: body})
			refused(t, c, http.StatusBadGateway, "bad_gateway")
			idp.Answer(remoteName+".moved", idpAnswer{body: body})
			refused(t, a, http.StatusBadGateway, "bad_gateway")
		}
	})

	t.Run("case=deleting the linked account releases its sub", func(t *testing.T) {
		if r := env.Do(t, "DELETE", "/api/users/"+a.UUID, nil, auth(staff)...); r.Status != 204 {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if got := claimHolder(t, "REMOTESUB#"+subA); got != "" {
			t.Fatalf("the sub's claim is still held by %q", got)
		}
		if r := pull(b); r.Status != 200 || r.Str("first_name") != "Grace" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if got := claimHolder(t, "REMOTESUB#"+subA); got != b.UUID {
			t.Errorf("the sub's claim is held by %q", got)
		}
	})

	t.Run("case=a sign-up that replaces a linked unverified account releases its sub", func(t *testing.T) {
		email := testenv.Email("link-unverified")
		id := env.SignUp(t, email)
		subU := "sub-u-" + uuid.NewString()
		idp.Answer(strings.ToLower(email), idpAnswer{body: withSub(graceClaims, subU)})
		if r := env.Do(t, "POST", "/api/users/"+id+"/pull_remote_user", nil, auth(staff)...); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if got := claimHolder(t, "REMOTESUB#"+subU); got != id {
			t.Fatalf("the sub's claim is held by %q", got)
		}
		if r := env.Do(t, "POST", "/api/users", map[string]any{"email": email, "password": testenv.DefaultPassword}); r.Status != 201 || r.Str("uuid") == id {
			t.Fatalf("sign-up again: %d %s", r.Status, r.Body)
		}
		if got := claimHolder(t, "REMOTESUB#"+subU); got != "" {
			t.Errorf("the replaced account's sub is still held by %q", got)
		}
	})

	t.Run("case=a claim left by an account that no longer exists is taken over", func(t *testing.T) {
		d := quickUser(t, "link-d")
		subD := "sub-d-" + uuid.NewString()
		if _, err := env.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(env.Config.TableName), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "REMOTESUB#" + subD}, "sk": &types.AttributeValueMemberS{Value: "CLAIM"},
			"user": &types.AttributeValueMemberS{Value: uuid.NewString()},
		}}); err != nil {
			t.Fatal(err)
		}
		idp.Answer(strings.ToLower(d.Email), idpAnswer{body: withSub(graceClaims, subD)})
		if r := pull(d); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if got := claimHolder(t, "REMOTESUB#"+subD); got != d.UUID {
			t.Errorf("the sub's claim is held by %q", got)
		}
	})

	t.Run("case=of two accounts pulled at once with one sub, one is linked", func(t *testing.T) {
		subE := "sub-e-" + uuid.NewString()
		us := []testenv.User{quickUser(t, "link-e"), quickUser(t, "link-f")}
		for _, u := range us {
			idp.Answer(strings.ToLower(u.Email), idpAnswer{body: withSub(graceClaims, subE)})
		}
		statuses := make([]int, 2)
		together(2, func(i int) { statuses[i] = pull(us[i]).Status })
		winner := slices.Index(statuses, 200)
		if winner < 0 || statuses[1-winner] != http.StatusConflict {
			t.Fatalf("statuses %v, want one 200 and one 409", statuses)
		}
		if got := claimHolder(t, "REMOTESUB#"+subE); got != us[winner].UUID {
			t.Errorf("the sub's claim is held by %q, not the winner", got)
		}
		if got := attr(userItem(t, us[1-winner].UUID), "remote_sub"); got != "" {
			t.Errorf("the loser is linked to %q", got)
		}
	})

	t.Run("case=a pull from a read taken before another link writes nothing", func(t *testing.T) {
		g := quickUser(t, "link-g")
		read, err := env.API.Users.Get(ctx, g.UUID)
		if err != nil {
			t.Fatal(err)
		}
		stale := *read
		sub1, sub2 := "sub-1-"+uuid.NewString(), "sub-2-"+uuid.NewString()
		if _, err := env.API.Users.PullRemote(ctx, read, remote.Claims{Subject: sub1, FirstName: "One"}); err != nil {
			t.Fatal(err)
		}
		_, err = env.API.Users.PullRemote(ctx, &stale, remote.Claims{Subject: sub2, FirstName: "Two"})
		if e, ok := httpapi.AsError(err); !ok || e.Status != http.StatusConflict {
			t.Fatalf("got %v, want a 409", err)
		}
		item := userItem(t, g.UUID)
		if attr(item, "remote_sub") != sub1 || attr(item, "first_name") != "One" || claimHolder(t, "REMOTESUB#"+sub2) != "" {
			t.Errorf("the stale pull wrote: remote_sub %q, first_name %q, %s's claim %q", attr(item, "remote_sub"),
				attr(item, "first_name"), sub2, claimHolder(t, "REMOTESUB#"+sub2))
		}
	})
	auditClaims(t)
}

// TestPullRemoteUserMovesListEntries: a pull that shortens the names moves
// the user's list index entries in its transaction (fewer word starts: some
// entries are deleted), so the word filters find the new names and not the
// old ones.
func TestPullRemoteUserMovesListEntries(t *testing.T) {
	staff := env.NewStaff(t, "pullidxstaff", false)
	u := env.NewUser(t, "pullidx")
	username := strings.ToLower(u.Email)
	tag := strings.SplitN(username, "@", 2)[0]
	if r := env.Do(t, "PATCH", "/api/users/"+u.UUID, map[string]any{"first_name": "Ann Mary Jo", "last_name": "De La Cruz"}, auth(staff)...); r.Status != 200 {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	find := func(t *testing.T, q string) []string {
		t.Helper()
		r, objs := list(t, staff, "query="+url.QueryEscape(tag)+"&"+q)
		if r.Status != 200 {
			t.Fatalf("list %s: %d %s", q, r.Status, r.Body)
		}
		return usernames(objs)
	}
	if got := find(t, "last_name=cruz"); len(got) != 1 {
		t.Fatalf("before the pull, last_name=cruz finds %v", got)
	}
	idp.Answer(username, idpAnswer{body: withSub(graceClaims, "sub-"+uuid.NewString())})
	if r := env.Do(t, "POST", "/api/users/"+u.UUID+"/pull_remote_user", nil, auth(staff)...); r.Status != 200 {
		t.Fatalf("pull: %d %s", r.Status, r.Body)
	}
	for q, want := range map[string]int{"last_name=cruz": 0, "first_name=mary": 0, "first_name=grace": 1, "full_name=" + url.QueryEscape("grace hop"): 1} {
		if got := find(t, q); len(got) != want {
			t.Errorf("after the pull, %s finds %v, want %d", q, got, want)
		}
	}
}
