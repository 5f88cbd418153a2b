package api_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

// names is n distinct usernames nobody holds, then extra.
func names(n int, extra ...string) []string {
	out := make([]string, 0, n+len(extra))
	for i := range n {
		out = append(out, fmt.Sprintf("nobody-%04d", i))
	}
	return append(out, extra...)
}

// notServerError checks that a list answer is a 200 array or a 4xx in the
// envelope, never a 5xx, and returns the array of a 200.
func notServerError(t *testing.T, desc string, r *testenv.Resp) []map[string]any {
	t.Helper()
	if r.Status >= 500 {
		t.Errorf("%s: got %d %s", desc, r.Status, r.Body)
		return nil
	}
	if r.Status >= 400 {
		if m := r.JSON(); m["error"] == nil || m["error_description"] == nil {
			t.Errorf("%s: a %d outside the envelope: %s", desc, r.Status, r.Body)
		}
		return nil
	}
	var out []map[string]any
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Errorf("%s: %d but not an array: %s", desc, r.Status, r.Body)
	}
	return out
}

// TestListLongUsernameListsAreNot5xx: an email or username filter beside a
// username_list longer than one BatchGetItem holds (100 keys) used to put
// every name in the authentication's read, which DynamoDB refuses: a 500
// for any caller, since the read happens before the caller is known.
func TestListLongUsernameListsAreNot5xx(t *testing.T) {
	staff := env.NewStaff(t, "longlist-staff", false)
	plain := quickUser(t, "longlist-plain")
	target := quickUser(t, "longlist-target")
	tu := strings.ToLower(target.Email)
	callers := []struct {
		desc string
		hdr  []string
		sees bool // staff see the target; a plain user only themselves
	}{
		{"staff with a token", auth(staff), true},
		{"a plain user with a token", auth(plain), false},
		{"staff with Basic", []string{"Authorization", testenv.Basic(staff.Email, staff.Password)}, true},
		{"a plain user with Basic", []string{"Authorization", testenv.Basic(plain.Email, plain.Password)}, false},
	}
	for _, n := range []int{89, 90, 91, 98, 99, 100, 101, 150, 999} {
		for _, c := range callers {
			for _, tc := range []struct {
				desc, query string
				want        []string // usernames staff get
			}{
				{"email and a list holding the target", "email=" + url.QueryEscape(target.Email) + "&username_list=" + strings.Join(names(n, tu), ","), []string{tu}},
				{"email and a list without the target", "email=" + url.QueryEscape(target.Email) + "&username_list=" + strings.Join(names(n), ","), nil},
				{"username and a list holding the target", "username=" + url.QueryEscape(tu) + "&username_list=" + strings.Join(names(n, tu), ","), []string{tu}},
				{"email, username and a list", "email=" + url.QueryEscape(target.Email) + "&username=" + url.QueryEscape(tu) + "&username_list=" + strings.Join(names(n, tu), ","), []string{tu}},
				{"a list alone", "username_list=" + strings.Join(names(n, tu), ","), []string{tu}},
			} {
				desc := fmt.Sprintf("%s, %s of %d names", c.desc, tc.desc, n+1)
				r := env.Do(t, "GET", "/api/users?"+tc.query, nil, c.hdr...)
				if r.Status != http.StatusOK {
					t.Errorf("%s: got %d %.300s", desc, r.Status, r.Body)
					continue
				}
				got := usernames(notServerError(t, desc, r))
				want := []string{}
				if c.sees {
					want = append(want, tc.want...)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: got %v, want %v", desc, got, want)
				}
			}
		}
	}
	t.Run("case=more than 1000 names is a 400 naming username_list", func(t *testing.T) {
		r := env.Do(t, "GET", "/api/users?email="+url.QueryEscape(target.Email)+"&username_list="+strings.Join(names(1001), ","), nil, auth(staff)...)
		if f := fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request")); f["username_list"] == nil {
			t.Fatalf("got %s", r.Body)
		}
	})
}

// TestListFilterCombinationsNever5xx iterates list filters in combination,
// with long lists and odd values, as staff, as a plain user and with
// Basic: every answer is a 200 or a 4xx in the envelope, and what staff
// get passes the filters asked for.
func TestListFilterCombinationsNever5xx(t *testing.T) {
	staff := env.NewStaff(t, "combo-staff", false)
	plain := quickUser(t, "combo-plain")
	target := quickUser(t, "combo-target")
	tu := strings.ToLower(target.Email)
	hdrs := [][]string{auth(staff), auth(plain), {"Authorization", testenv.Basic(staff.Email, staff.Password)}}
	lists := []int{0, 1, 90, 91, 100, 101, 500, 1000}
	values := map[string][]string{
		"email":         {target.Email, strings.ToUpper(target.Email), "not-an-email", "+", strings.Repeat("e", 254), "%FF%FE", "a@b.c,d@e.f"},
		"username":      {tu, "NOBODY", strings.Repeat("u", 128), "%00", "%FF", "+,+"},
		"is_active":     {"true", "false"},
		"is_staff":      {"true", "false"},
		"is_support":    {"true", "false"},
		"query":         {"combo", strings.Repeat("q", 2000), "%FF"},
		"first_name":    {"x", strings.Repeat("f", 1000)},
		"civil_number":  {"C-1"},
		"date_joined":   {"1970-01-01", "2999-01-01"},
		"o":             {"-date_joined", "email,-username", "is_staff,-modified,full_name"},
		"page":          {"1", "2", "1000000"},
		"page_size":     {"1", "300"},
		"field":         {"username", "email"},
		"username_list": nil, // from lists
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	rng := rand.New(rand.NewPCG(12, 34)) // fixed: a failure reproduces
	for i := range 120 {
		q := []string{}
		chosen := map[string]string{}
		for _, k := range keys {
			if rng.IntN(3) != 0 {
				continue
			}
			v := ""
			if k == "username_list" {
				n := lists[rng.IntN(len(lists))]
				ns := names(n)
				if rng.IntN(2) == 0 {
					ns = append(ns, tu, strings.ToUpper(tu), "+", "")
				}
				v = strings.Join(ns, ",")
			} else {
				v = values[k][rng.IntN(len(values[k]))]
			}
			chosen[k] = v
			q = append(q, k+"="+v) // raw: %XX escapes reach the service as sent
		}
		if _, ok := chosen["field"]; ok {
			q = append(q, "field=is_staff", "field=is_active") // what the checks below read
		}
		query := strings.Join(q, "&")
		hdr := hdrs[i%len(hdrs)]
		r := env.Do(t, "GET", "/api/users?"+query, nil, hdr...)
		desc := fmt.Sprintf("combination %d (%.200s)", i, query)
		got := notServerError(t, desc, r)
		if r.Status != http.StatusOK || i%len(hdrs) == 1 {
			continue
		}
		for _, u := range got {
			if v, ok := chosen["is_staff"]; ok && fmt.Sprint(u["is_staff"]) != v {
				t.Errorf("%s: is_staff=%s gave %v", desc, v, u)
			}
			if v, ok := chosen["is_active"]; ok && fmt.Sprint(u["is_active"]) != v {
				t.Errorf("%s: is_active=%s gave %v", desc, v, u)
			}
			if v, ok := chosen["username_list"]; ok && u["username"] != nil && strings.Trim(v, ",+") != "" {
				v, _ = url.QueryUnescape(v)
				in := slices.ContainsFunc(strings.Split(v, ","), func(n string) bool { return strings.ToLower(strings.TrimSpace(n)) == u["username"] })
				if !in {
					t.Errorf("%s: %v is not in username_list", desc, u["username"])
				}
			}
		}
	}
}

// TestProfileImageIsAWebURL: image is shown to others as a link, so only
// absolute http(s) URLs are stored, by the check the identity source's
// pictures pass too (httpapi.WebURLProblem); the rest is a 400 naming image.
func TestProfileImageIsAWebURL(t *testing.T) {
	u := quickUser(t, "image")
	staff := env.NewStaff(t, "image-staff", false)
	path := "/api/users/" + u.UUID
	refused := []string{
		"javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:image/svg+xml;base64,PHN2Zz4=",
		"vbscript:msgbox", "ftp://example.org/p.png", "file:///etc/passwd", "/media/p.png", "p.png",
		"//evil.example/p.png", "https://", "https:///p.png", "http:evil.example", "https://user:pw@example.org/p.png",
		"https://evil.example\\@example.org/", "https://example.org/\u0000x", "https://example.org/a\u2028b",
		"https://example.org/" + strings.Repeat("a", 2000),
	}
	refuse := func(t *testing.T, r *testenv.Resp, image string) {
		t.Helper()
		if f := fieldsOf(envelope(t, r, http.StatusBadRequest, "bad_request")); f["image"] == nil {
			t.Errorf("image %q: fields should name image: %s", image, r.Body)
		}
	}
	t.Run("case=PATCH and PUT refuse what is not an http(s) URL and store nothing", func(t *testing.T) {
		if r := env.Do(t, "PATCH", path, map[string]any{"image": "https://example.org/before.png"}, auth(u)...); r.Status != 200 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		for _, img := range refused {
			refuse(t, env.Do(t, "PATCH", path, map[string]any{"image": img}, auth(u)...), img)
			refuse(t, env.Do(t, "PATCH", path, map[string]any{"image": img}, auth(staff)...), img)
			refuse(t, env.Do(t, "PUT", path, map[string]any{"username": strings.ToLower(u.Email), "image": img}, auth(u)...), img)
		}
		if got := attr(userItem(t, u.UUID), "image"); got != "https://example.org/before.png" {
			t.Errorf("stored image %q", got)
		}
	})
	t.Run("case=sign-up and admin create refuse it too", func(t *testing.T) {
		for _, img := range refused[:3] {
			refuse(t, env.Do(t, "POST", "/api/users", map[string]any{"email": testenv.Email("img"), "password": testenv.DefaultPassword, "image": img}), img)
			email := testenv.Email("img-admin")
			refuse(t, env.Do(t, "POST", "/api/users", map[string]any{"email": email, "username": strings.ToLower(email), "image": img}, auth(staff)...), img)
		}
	})
	t.Run("case=absolute http and https URLs are stored, an empty one clears", func(t *testing.T) {
		for _, img := range []string{"https://cdn.example.org/u/1.png?s=64#x", "http://example.org/p.png", "https://[2001:db8::1]:8443/p"} {
			r := env.Do(t, "PATCH", path, map[string]any{"image": img}, auth(u)...)
			if r.Status != 200 || r.Str("image") != img {
				t.Errorf("image %q: got %d %s", img, r.Status, r.Body)
			}
		}
		r := env.Do(t, "PATCH", path, map[string]any{"image": ""}, auth(u)...)
		if r.Status != 200 || r.JSON()["image"] != nil {
			t.Errorf("clearing: got %d %s", r.Status, r.Body)
		}
	})
}
