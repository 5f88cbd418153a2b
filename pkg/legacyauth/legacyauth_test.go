package legacyauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/example/accounts/pkg/app"
	"github.com/example/accounts/pkg/testenv"
)

const (
	legacySecret = "legacy-bearer-secret-42"
	timeout      = 300 * time.Millisecond
)

// legacy is the system users come from: it knows some logins and
// passwords, answers slowly or fails for some.
type legacy struct {
	srv   *httptest.Server
	calls atomic.Int32
	users map[string]struct {
		password string
		user     map[string]any
	}
}

func newLegacy() *legacy {
	l := &legacy{users: map[string]struct {
		password string
		user     map[string]any
	}{}}
	l.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.calls.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+legacySecret {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var in struct{ Login, Password string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		switch {
		case strings.HasPrefix(in.Login, "slow-"):
			// Slower than any timeout the test could mean: the answer
			// (a yes, for a known login) comes only if the service waits
			// for it, which makes the login succeed.
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Minute):
			}
		case strings.HasPrefix(in.Login, "boom-"):
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		u, ok := l.users[in.Login]
		if !ok || u.password != in.Password {
			_, _ = w.Write([]byte(`{"ok":false}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": u.user})
	}))
	return l
}

func (l *legacy) add(login, password string, user map[string]any) {
	l.users[login] = struct {
		password string
		user     map[string]any
	}{password, user}
}

var (
	env *testenv.Env
	old *legacy
)

func TestMain(m *testing.M) {
	old = newLegacy()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{
		Env: map[string]string{
			"MIGRATION_URL": old.srv.URL + "/verify", "MIGRATION_TOKEN": legacySecret,
			"MIGRATION_TIMEOUT_MS": fmt.Sprint(timeout.Milliseconds()),
		},
		App: app.Options{LegacyHTTP: old.srv.Client()},
	})
	cancel()
	if err != nil {
		old.srv.Close()
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// What lazy migration made the login do must be granted to
		// LoginFunction (pkg/api checks the rest of its policy).
		for _, p := range testenv.CheckIAMPolicies(env, func(id string) bool { return id == "LoginFunction" }) {
			if strings.Contains(p, "which its policy does not grant") {
				fmt.Fprintln(os.Stderr, "FAIL: IAM:", p)
				code = 1
			}
		}
	}
	env.Close()
	old.srv.Close()
	os.Exit(code)
}

func login(t *testing.T, login, password string) *testenv.Resp {
	t.Helper()
	return env.Do(t, "POST", "/api/auth/login", map[string]any{"login": login, "password": password})
}

func TestLazyMigration(t *testing.T) {
	email := testenv.Email("legacy")
	pw := "an old password from the old days"
	old.add(email, pw, map[string]any{"email": email, "first_name": "Lin", "last_name": "Legacy", "job_title": "Archivist",
		"is_staff": true, "unknown_field": "ignored"})

	t.Run("case=a wrong password is a failed login like any other", func(t *testing.T) {
		before := old.calls.Load()
		r := login(t, email, "not the password at all")
		unknown := login(t, testenv.Email("nobody"), "not the password at all")
		if r.Status != 401 || string(r.Body) != string(unknown.Body) {
			t.Fatalf("no: %d %s (unknown login: %s)", r.Status, r.Body, unknown.Body)
		}
		if old.calls.Load() != before+2 {
			t.Fatalf("the legacy endpoint was asked %d times", old.calls.Load()-before)
		}
	})

	t.Run("case=a yes creates the user and logs them in", func(t *testing.T) {
		r := login(t, email, pw)
		if r.Status != 200 || r.Str("token") == "" {
			t.Fatalf("migrating login: %d %s", r.Status, r.Body)
		}
		me := env.Do(t, "GET", "/api/users/me", nil, "Authorization", "Token "+r.Str("token"))
		m := me.JSON()
		if m["first_name"] != "Lin" || m["job_title"] != "Archivist" || m["status"] != "ENABLED" || m["is_staff"] != false || m["username"] != email {
			t.Fatalf("migrated user: %s", me.Body)
		}
		// From now on the service checks the password itself.
		before := old.calls.Load()
		env.Login(t, email, pw)
		if r := login(t, email, "wrong again, and again"); r.Status != 401 {
			t.Fatalf("wrong password after migration: %d", r.Status)
		}
		if old.calls.Load() != before {
			t.Fatal("a known user's login asked the legacy endpoint")
		}
	})

	t.Run("case=failures of the endpoint are failed logins", func(t *testing.T) {
		for _, who := range []string{"slow-", "boom-"} {
			e := testenv.Email(who)
			old.add(e, pw, map[string]any{"email": e})
			// The slow endpoint would say yes after a minute: a 401 means
			// the service gave up waiting (MIGRATION_TIMEOUT_MS).
			if r := login(t, e, pw); r.Status != 401 {
				t.Fatalf("%s: %d %s", who, r.Status, r.Body)
			}
			if claimed(t, e) {
				t.Fatalf("%s: a user was created", who)
			}
		}
	})

	t.Run("case=an answer for another login creates nothing", func(t *testing.T) {
		asked, other := testenv.Email("asked"), testenv.Email("other")
		old.add(asked, pw, map[string]any{"email": other})
		if r := login(t, asked, pw); r.Status != 401 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if claimed(t, asked) || claimed(t, other) {
			t.Fatal("an account was created")
		}
	})

	if strings.Contains(env.Logs.String(), pw) || strings.Contains(env.Logs.String(), legacySecret) {
		t.Fatal("the logs hold a password or the bearer secret")
	}
	if !strings.Contains(env.Logs.String(), "lazy migration: the legacy endpoint failed") {
		t.Error("the endpoint's failures were not logged")
	}
}

// claimed reports whether an account holds the email.
func claimed(t *testing.T, email string) bool {
	t.Helper()
	out, err := env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "EMAIL#" + email}, "sk": &types.AttributeValueMemberS{Value: "CLAIM"}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item != nil
}

// The bearer secret read from Secrets Manager, here moto's (python3 -m
// moto.server); skipped where moto is not installed (CI has it).
func TestLazyMigrationSecretFromSecretsManager(t *testing.T) {
	if exec.Command("python3", "-c", "import moto.server").Run() != nil {
		t.Skip("needs moto (python3 -m moto.server) for Secrets Manager")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("python3", "-m", "moto.server", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	ctx := context.Background()
	var arn string
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("legacy-migration"), SecretString: aws.String(legacySecret + "\n")})
		if err == nil {
			arn = aws.ToString(out.ARN)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
	cfg := env.Config
	cfg.Migration.Token, cfg.Migration.TokenSecretARN = "", arn
	a, err := app.New(ctx, cfg, app.Options{LegacyHTTP: old.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	email, pw := testenv.Email("legacy-sm"), "another old password"
	old.add(email, pw, map[string]any{"email": email, "first_name": "Sam"})
	res, err := a.Users.Login(ctx, email, pw, "127.0.0.1")
	if err != nil {
		t.Fatalf("migrating login with the secret from Secrets Manager: %v", err)
	}
	if res.User.FirstName != "Sam" || res.Token == "" {
		t.Fatalf("migrated: %+v", res.User)
	}
}
