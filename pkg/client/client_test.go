package client_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/example/accounts/pkg/client"
	"github.com/example/accounts/pkg/openapitest"
	"github.com/example/accounts/pkg/testenv"
)

// env is the service under test, on DynamoDB Local and the local SES.
var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{Record: true})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// What the generated client sent and got is what the description says.
		c, err := openapitest.NewChecker(context.Background(), env.URL)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		} else if problems := c.Check(context.Background(), env.Exchanges.All()); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: the client's exchanges do not match api/openapi.yaml:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			code = 1
		}
	}
	env.Close()
	os.Exit(code)
}

// withToken authenticates a request as the contract's Token form.
func withToken(tok string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Token "+tok)
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

func newClient(t *testing.T) *client.ClientWithResponses {
	t.Helper()
	if env == nil {
		t.Skip("needs the local stack")
	}
	c, err := client.NewClientWithResponses(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientSignUpActivateLoginMeListDelete walks a person's whole account
// through the generated client: sign-up, activation with the mailed code
// and the password, login, me, the list, and deletion.
func TestClientSignUpActivateLoginMeListDelete(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	email := testenv.Email("client")

	created, err := c.UsersCreateWithResponse(ctx, client.UserRequest{
		Email: ptr(email), Password: ptr(testenv.DefaultPassword), FirstName: ptr("Ada"), LastName: ptr("Lovelace"),
		CustomData: &map[string]any{"plan": "pro"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.StatusCode() != http.StatusCreated || created.JSON201 == nil {
		t.Fatalf("sign-up: %d %s", created.StatusCode(), created.Body)
	}
	u := created.JSON201
	if u.Status == nil || *u.Status != client.UserStatusUNVERIFIED || u.Email == nil || string(*u.Email) != strings.ToLower(email) {
		t.Errorf("sign-up answered status %v, email %v", u.Status, u.Email)
	}
	if u.Uuid == nil {
		t.Fatal("sign-up answered no uuid")
	}
	id := *u.Uuid
	if created.Headers201 == nil || created.Headers201.ETag == "" || created.Headers201.RequestId == "" {
		t.Errorf("sign-up headers: %+v", created.Headers201)
	}

	// Before activation the password does not log in.
	early, err := c.AuthLoginWithResponse(ctx, client.LoginRequest{Login: ptr(email), Password: testenv.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	if early.StatusCode() == http.StatusOK {
		t.Fatalf("an unactivated account logged in: %s", early.Body)
	}

	code := env.CodeFromMail(t, email, "Activate")
	act, err := c.AuthActivateWithResponse(ctx, client.ActivationRequest{Code: code, Password: testenv.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	if act.StatusCode() != http.StatusOK || act.JSON200 == nil || act.JSON200.Status == nil || *act.JSON200.Status != client.UserStatusENABLED {
		t.Fatalf("activate: %d %s", act.StatusCode(), act.Body)
	}

	login, err := c.AuthLoginWithResponse(ctx, client.LoginRequest{Login: ptr(email), Password: testenv.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	if login.StatusCode() != http.StatusOK || login.JSON200 == nil || login.JSON200.Token == "" {
		t.Fatalf("login: %d %s", login.StatusCode(), login.Body)
	}
	tok := login.JSON200.Token
	if !login.JSON200.ExpiresAt.After(time.Now()) || login.JSON200.User.Uuid == nil || *login.JSON200.User.Uuid != id {
		t.Errorf("login answered expires_at %v, user %v", login.JSON200.ExpiresAt, login.JSON200.User.Uuid)
	}

	me, err := c.UsersMeRetrieveWithResponse(ctx, nil, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if me.StatusCode() != http.StatusOK || me.JSON200 == nil {
		t.Fatalf("me: %d %s", me.StatusCode(), me.Body)
	}
	if m := me.JSON200; m.Token == nil || *m.Token != tok || m.FullName == nil || *m.FullName != "Ada Lovelace" ||
		m.CustomData == nil || (*m.CustomData)["plan"] != "pro" {
		t.Errorf("me answered token %v, full_name %v, custom_data %v", m.Token, m.FullName, m.CustomData)
	}
	only, err := c.UsersMeRetrieveWithResponse(ctx, &client.UsersMeRetrieveParams{Field: &client.Field{"email", "uuid"}}, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if only.StatusCode() != http.StatusOK || only.JSON200 == nil || only.JSON200.Email == nil || only.JSON200.FirstName != nil {
		t.Errorf("me?field=email&field=uuid: %d %s", only.StatusCode(), only.Body)
	}

	list, err := c.UsersListWithResponse(ctx, &client.UsersListParams{PageSize: ptr("5")}, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if list.StatusCode() != http.StatusOK || list.JSON200 == nil {
		t.Fatalf("list: %d %s", list.StatusCode(), list.Body)
	}
	// A user who is neither staff nor support sees themselves.
	if got := *list.JSON200; len(got) != 1 || got[0].Uuid == nil || *got[0].Uuid != id {
		t.Errorf("list answered %s", list.Body)
	}
	if list.Headers200 == nil || list.Headers200.XResultCount != 1 || !strings.Contains(list.Headers200.Link, `rel="first"`) {
		t.Errorf("list headers: %+v", list.Headers200)
	}

	del, err := c.UsersDestroyWithResponse(ctx, id, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if del.StatusCode() != http.StatusNoContent {
		t.Fatalf("delete: %d %s", del.StatusCode(), del.Body)
	}
	gone, err := c.UsersMeRetrieveWithResponse(ctx, nil, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if gone.StatusCode() != http.StatusUnauthorized || gone.JSON401 == nil || gone.JSON401.Error != client.ErrorErrorUnauthorizedAccess {
		t.Errorf("me after delete: %d %s", gone.StatusCode(), gone.Body)
	}
	if gone.Headers401 == nil || gone.Headers401.WWWAuthenticate != "Token" {
		t.Errorf("401 headers: %+v", gone.Headers401)
	}
}

// TestClientReadsErrors: a validation error comes back typed, with the
// fields at fault.
func TestClientReadsErrors(t *testing.T) {
	c := newClient(t)
	r, err := c.UsersCreateWithResponse(context.Background(), client.UserRequest{Email: ptr("not-an-address"), Password: ptr("short")})
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode() != http.StatusBadRequest || r.JSON400 == nil || r.JSON400.Error != client.ErrorErrorBadRequest ||
		r.JSON400.Fields == nil || len((*r.JSON400.Fields)["email"]) == 0 {
		t.Fatalf("a bad sign-up: %d %s", r.StatusCode(), r.Body)
	}
	if _, err := c.UsersRetrieveWithResponse(context.Background(), uuid.New(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestClientReadsTheSchema: GET /api/schema answers the description itself.
func TestClientReadsTheSchema(t *testing.T) {
	c := newClient(t)
	r, err := c.SchemaRetrieveWithResponse(context.Background(), &client.SchemaRetrieveParams{Format: ptr(client.SchemaRetrieveParamsFormatJson)})
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode() != http.StatusOK || r.JSON200 == nil || (*r.JSON200)["openapi"] != "3.1.0" {
		t.Fatalf("schema: %d %.200s", r.StatusCode(), r.Body)
	}
	y, err := c.SchemaRetrieveWithResponse(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if y.StatusCode() != http.StatusOK || y.HTTPResponse.Header.Get("Content-Type") != "application/yaml" || !strings.HasPrefix(string(y.Body), "openapi: 3.1.0") {
		t.Fatalf("schema as YAML: %d %s %.100s", y.StatusCode(), y.HTTPResponse.Header.Get("Content-Type"), y.Body)
	}
}

// TestClientWaldurLoginAndCount: Waldur's login answers the token alone,
// HEAD counts users, and Waldur's logout ends the token.
func TestClientWaldurLoginAndCount(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	email := testenv.Email("waldur")
	env.SignUp(t, email)
	env.Activate(t, email)

	login, err := c.ApiAuthPasswordWithResponse(ctx, client.ObtainAuthTokenRequest{Username: email, Password: testenv.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	if login.StatusCode() != http.StatusOK || login.JSON200 == nil || login.JSON200.Token == "" {
		t.Fatalf("api-auth/password: %d %s", login.StatusCode(), login.Body)
	}
	tok := login.JSON200.Token

	count, err := c.UsersCountWithResponse(ctx, nil, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if count.StatusCode() != http.StatusOK || count.Headers200 == nil || count.Headers200.XResultCount != 1 || len(count.Body) != 0 {
		t.Errorf("HEAD /api/users: %d %+v %q", count.StatusCode(), count.Headers200, count.Body)
	}

	out, err := c.ApiAuthLogoutWithResponse(ctx, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if out.StatusCode() != http.StatusNoContent {
		t.Fatalf("api-auth/logout: %d %s", out.StatusCode(), out.Body)
	}
	me, err := c.UsersMeRetrieveWithResponse(ctx, nil, withToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	if me.StatusCode() != http.StatusUnauthorized {
		t.Errorf("me after logout: %d %s", me.StatusCode(), me.Body)
	}
}
