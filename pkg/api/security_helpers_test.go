package api_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/example/accounts/pkg/testenv"
)

// quickUser makes an active, plain (neither staff nor support) account
// through the service and logs it in: the same account NewUser makes,
// without waiting for an activation mail, for tests about something else.
func quickUser(t testing.TB, prefix string) testenv.User {
	t.Helper()
	email := testenv.Email(prefix)
	u, err := env.API.Users.EnsureStaff(context.Background(), email, testenv.DefaultPassword, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.User{UUID: u.UUID, Email: email, Password: testenv.DefaultPassword, Token: env.Login(t, email, testenv.DefaultPassword)}
}

// together runs f(0..n-1) at once: every goroutine waits at a barrier so
// the requests reach the service as close together as the client allows.
func together(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}(i)
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// scanTable reads every item of the service's table.
func scanTable(t testing.TB) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(env.DB, &dynamodb.ScanInput{TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, page.Items...)
	}
	return items
}

// attr is a string (or number) attribute of an item, "" when absent.
var attr = testenv.Attr

// userItem reads a user's stored item (nil when there is none).
func userItem(t testing.TB, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "USER#" + id}, "sk": &types.AttributeValueMemberS{Value: "USER"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// claimHolder returns the uuid an email (normalised) or username claim
// points to, "" when nobody holds it.
func claimHolder(t testing.TB, pk string) string {
	t.Helper()
	out, err := env.DB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(env.Config.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "CLAIM"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return attr(out.Item, "user")
}

// auditClaims checks the whole table: every EMAIL#, USERNAME# and
// REMOTESUB# claim points to a user that exists and holds that email,
// username or remote sub, and every user holds the claims of its email,
// username and remote sub. The stored email is the canonical form, so it is
// the claim's key byte for byte.
func auditClaims(t testing.TB) {
	t.Helper()
	items := scanTable(t)
	users := map[string]map[string]types.AttributeValue{}
	claims := map[string]string{}
	for _, it := range items {
		pk := attr(it, "pk")
		switch {
		case strings.HasPrefix(pk, "USER#") && attr(it, "sk") == "USER":
			users[strings.TrimPrefix(pk, "USER#")] = it
		case strings.HasPrefix(pk, "EMAIL#"), strings.HasPrefix(pk, "USERNAME#"), strings.HasPrefix(pk, "REMOTESUB#"), strings.HasPrefix(pk, "SLUG#"):
			claims[pk] = attr(it, "user")
		}
	}
	for pk, holder := range claims {
		u := users[holder]
		if u == nil {
			t.Errorf("stray claim %s points to %q, which does not exist", pk, holder)
			continue
		}
		if want := "EMAIL#" + attr(u, "email"); strings.HasPrefix(pk, "EMAIL#") && pk != want {
			t.Errorf("claim %s points to user %s, whose email is %q", pk, holder, attr(u, "email"))
		}
		if want := "USERNAME#" + attr(u, "username"); strings.HasPrefix(pk, "USERNAME#") && pk != want {
			t.Errorf("claim %s points to user %s, whose username is %q", pk, holder, attr(u, "username"))
		}
		if want := "SLUG#" + strings.ToLower(attr(u, "slug")); strings.HasPrefix(pk, "SLUG#") && pk != want {
			t.Errorf("claim %s points to user %s, whose slug is %q", pk, holder, attr(u, "slug"))
		}
		if want := "REMOTESUB#" + attr(u, "remote_sub"); strings.HasPrefix(pk, "REMOTESUB#") && pk != want {
			t.Errorf("claim %s points to user %s, whose remote_sub is %q", pk, holder, attr(u, "remote_sub"))
		}
	}
	for id, u := range users {
		if k := "EMAIL#" + attr(u, "email"); claims[k] != id {
			t.Errorf("user %s has email %q but its claim is held by %q", id, attr(u, "email"), claims[k])
		}
		if k := "USERNAME#" + attr(u, "username"); claims[k] != id {
			t.Errorf("user %s has username %q but its claim is held by %q", id, attr(u, "username"), claims[k])
		}
		if k := "SLUG#" + strings.ToLower(attr(u, "slug")); attr(u, "slug") != "" && claims[k] != id {
			t.Errorf("user %s has slug %q but its claim is held by %q", id, attr(u, "slug"), claims[k])
		}
		if k := "REMOTESUB#" + attr(u, "remote_sub"); attr(u, "remote_sub") != "" && claims[k] != id {
			t.Errorf("user %s has remote_sub %q but its claim is held by %q", id, attr(u, "remote_sub"), claims[k])
		}
	}
}
