package api_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"

	"github.com/example/accounts/pkg/testenv"
)

// waldurMultipart builds a body as Waldur's Python client's
// UserRequestMultipart.to_multipart() and httpx send it: every field a
// text/plain part without a filename, lists as repeated parts, booleans
// and None as Python writes them ("True", "None").
func waldurMultipart(t *testing.T, fields [][2]string, file *[3]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+f[0]+`"`)
		h.Set("Content-Type", "text/plain")
		p, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte(f[1]))
	}
	if file != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+file[0]+`"; filename="`+file[1]+`"`)
		h.Set("Content-Type", "application/octet-stream")
		p, _ := w.CreatePart(h)
		p.Write([]byte(file[2]))
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func TestWaldurFormBodies(t *testing.T) {
	staff := env.NewStaff(t, "forms-staff", false)
	username := "forms-" + strings.ToLower(testenv.Email("x")[2:12])
	var id string
	t.Run("case=staff create as multipart (UserRequestMultipart)", func(t *testing.T) {
		ct, body := waldurMultipart(t, [][2]string{
			{"username", username}, {"email", username + "@example.com"}, {"first_name", "Grace"},
			{"is_staff", "False"}, {"notifications_enabled", "True"}, {"token_lifetime", "None"},
			{"gender", "1"}, {"nationalities", "US"}, {"nationalities", "NL"}, {"birth_date", "1906-12-09"},
		}, nil)
		r := env.Do(t, "POST", "/api/users/", body, append(waldurHeaders(staff.Token), "Content-Type", ct)...)
		if r.Status != http.StatusCreated {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		m := r.JSON()
		if m["username"] != username || m["first_name"] != "Grace" || m["gender"] != 1.0 || m["is_staff"] != false || m["birth_date"] != "1906-12-09" {
			t.Errorf("not as sent: %s", r.Body)
		}
		if b, _ := json.Marshal(m["nationalities"]); string(b) != `["US","NL"]` {
			t.Errorf("nationalities = %s", b)
		}
		checkWaldurUser(t, "multipart create", decodeAny(t, r))
		id = r.Str("uuid")
	})
	path := "/api/users/" + id + "/"
	t.Run("case=PATCH as a form (PatchedUserRequestForm)", func(t *testing.T) {
		form := url.Values{"last_name": {"Hopper"}, "gender": {""}, "agree_with_policy": {"true"}, "eduperson_assurance": {"https://refeds.org/assurance/IAP/low"}}
		r := env.Do(t, "PATCH", path, form.Encode(), append(waldurHeaders(staff.Token), "Content-Type", "application/x-www-form-urlencoded")...)
		if r.Status != http.StatusOK || r.Str("last_name") != "Hopper" || r.JSON()["gender"] != nil || r.JSON()["agreement_date"] == nil {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if attr(userItem(t, id), "last_name") != "Hopper" {
			t.Errorf("not stored")
		}
	})
	t.Run("case=PUT as multipart", func(t *testing.T) {
		ct, body := waldurMultipart(t, [][2]string{{"username", username}, {"email", username + "@example.com"}, {"job_title", "Admiral"}}, nil)
		r := env.Do(t, "PUT", path, body, append(waldurHeaders(staff.Token), "Content-Type", ct)...)
		if r.Status != http.StatusOK || r.Str("job_title") != "Admiral" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=self sign-up as a form", func(t *testing.T) {
		email := testenv.Email("forms-su")
		form := url.Values{"email": {email}, "password": {testenv.DefaultPassword}, "first_name": {"Ada"}}
		r := env.Do(t, "POST", "/api/users", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
		if r.Status != http.StatusCreated || r.Str("status") != "UNVERIFIED" || r.Str("first_name") != "Ada" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	for _, tc := range []struct {
		desc   string
		fields [][2]string
		file   *[3]string
		status int
		field  string
	}{
		{desc: "a field no schema names", fields: [][2]string{{"favourite_colour", "blue"}}, status: 400, field: "favourite_colour"},
		{desc: "a boolean that is none", fields: [][2]string{{"notifications_enabled", "maybe"}}, status: 400, field: "notifications_enabled"},
		{desc: "a number that is none", fields: [][2]string{{"token_lifetime", "soon"}}, status: 400, field: "token_lifetime"},
		{desc: "a gender outside ISO 5218", fields: [][2]string{{"gender", "5"}}, status: 400, field: "gender"},
		{desc: "a file where no file goes", file: &[3]string{"first_name", "a.txt", "x"}, status: 400, field: "first_name"},
	} {
		t.Run("case="+tc.desc+" is refused", func(t *testing.T) {
			ct, body := waldurMultipart(t, tc.fields, tc.file)
			r := env.Do(t, "PATCH", path, body, append(waldurHeaders(staff.Token), "Content-Type", ct)...)
			if f, _ := r.JSON()["fields"].(map[string]any); r.Status != tc.status || f[tc.field] == nil {
				t.Fatalf("got %d %s, want %d naming %s", r.Status, r.Body, tc.status, tc.field)
			}
		})
	}
}
