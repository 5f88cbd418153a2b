package api_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/example/accounts/pkg/testenv"
)

func testJPEGWithEXIF(t *testing.T, marker string) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 9))
	for x := range 16 {
		img.Set(x, x%9, color.RGBA{B: 255, A: 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	j := b.Bytes()
	payload := append([]byte("Exif\x00\x00"), marker...)
	out := append([]byte{}, j[:2]...)
	out = append(out, 0xff, 0xe1, byte((len(payload)+2)>>8), byte(len(payload)+2))
	out = append(out, payload...)
	return append(out, j[2:]...)
}

func testPNG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImageUploads(t *testing.T) {
	u := env.NewUser(t, "img")
	path := "/api/users/" + u.UUID + "/"
	patch := func(t *testing.T, data []byte, filename string) *testenv.Resp {
		t.Helper()
		ct, body := waldurMultipart(t, [][2]string{{"job_title", "Pilot"}}, &[3]string{"image", filename, string(data)})
		return env.Do(t, "PATCH", path, body, append(waldurHeaders(u.Token), "Content-Type", ct)...)
	}
	var first string
	t.Run("case=a JPEG is kept without its metadata and served from its url", func(t *testing.T) {
		r := patch(t, testJPEGWithEXIF(t, "GPS-52.37N-4.89E"), "me.jpg")
		if r.Status != http.StatusOK || r.Str("job_title") != "Pilot" {
			t.Fatalf("upload: %d %s", r.Status, r.Body)
		}
		first = r.Str("image")
		if !strings.HasPrefix(first, env.Config.PublicURL+"/api/images/") || !strings.HasSuffix(first, ".jpg") {
			t.Fatalf("image = %q", first)
		}
		checkWaldurUser(t, "with an image", decodeAny(t, r))
		img := env.Do(t, "GET", strings.TrimPrefix(first, env.Config.PublicURL), nil)
		if img.Status != http.StatusOK || img.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("GET image: %d %v", img.Status, img.Header)
		}
		if bytes.Contains(img.Body, []byte("GPS-52")) || bytes.Contains(img.Body, []byte("Exif")) {
			t.Errorf("the EXIF segment survived")
		}
		if _, err := jpeg.Decode(bytes.NewReader(img.Body)); err != nil {
			t.Errorf("served image does not decode: %v", err)
		}
		if attr(userItem(t, u.UUID), "image") != first {
			t.Errorf("not stored")
		}
	})
	t.Run("case=a new image replaces the old, which is deleted", func(t *testing.T) {
		r := patch(t, testPNG(t), "me.png")
		if r.Status != http.StatusOK || r.Str("image") == first || !strings.HasSuffix(r.Str("image"), ".png") {
			t.Fatalf("upload: %d %s", r.Status, r.Body)
		}
		if g := env.Do(t, "GET", strings.TrimPrefix(first, env.Config.PublicURL), nil); g.Status != http.StatusNotFound {
			t.Errorf("old image: %d", g.Status)
		}
		first = r.Str("image")
	})
	for _, tc := range []struct {
		desc   string
		data   []byte
		name   string
		status int
	}{
		{desc: "text named .png", data: []byte("definitely not a picture"), name: "x.png", status: 400},
		{desc: "an SVG", data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), name: "x.svg", status: 400},
		{desc: "over 2 MiB", data: append(testPNG(t), make([]byte, 2<<20)...), name: "big.png", status: 413},
	} {
		t.Run("case="+tc.desc+" is refused and nothing changes", func(t *testing.T) {
			r := patch(t, tc.data, tc.name)
			if f, _ := r.JSON()["fields"].(map[string]any); r.Status != tc.status || (f["image"] == nil && r.Str("error") != "payload_too_large") {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if attr(userItem(t, u.UUID), "image") != first {
				t.Errorf("the image changed")
			}
		})
	}
	t.Run("case=a sign-up may carry an image", func(t *testing.T) {
		email := testenv.Email("img-su")
		ct, body := waldurMultipart(t, [][2]string{{"email", email}, {"password", testenv.DefaultPassword}}, &[3]string{"image", "a.png", string(testPNG(t))})
		r := env.Do(t, "POST", "/api/users", body, "Content-Type", ct)
		if r.Status != http.StatusCreated || !strings.HasPrefix(r.Str("image"), env.Config.PublicURL+"/api/images/") {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("case=a refused sign-up with an image leaves no image behind", func(t *testing.T) {
		before := keptImages(t)
		ct, body := waldurMultipart(t, [][2]string{{"email", u.Email}, {"password", testenv.DefaultPassword}}, &[3]string{"image", "a.png", string(testPNG(t))})
		r := env.Do(t, "POST", "/api/users", body, "Content-Type", ct)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("a sign-up for an active account's address: %d %s", r.Status, r.Body)
		}
		if after := keptImages(t); after != before {
			t.Errorf("images kept: %d before, %d after", before, after)
		}
	})
	t.Run("case=staff deleting a user deletes the image", func(t *testing.T) {
		staff := env.NewStaff(t, "img-staff", false)
		v := env.NewUser(t, "img-del")
		ct, body := waldurMultipart(t, nil, &[3]string{"image", "v.png", string(testPNG(t))})
		r := env.Do(t, "PATCH", "/api/users/"+v.UUID+"/", body, append(waldurHeaders(v.Token), "Content-Type", ct)...)
		if r.Status != http.StatusOK {
			t.Fatalf("upload: %d %s", r.Status, r.Body)
		}
		img := strings.TrimPrefix(r.Str("image"), env.Config.PublicURL)
		if d := env.Do(t, "DELETE", "/api/users/"+v.UUID, nil, auth(staff)...); d.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", d.Status, d.Body)
		}
		if g := env.Do(t, "GET", img, nil); g.Status != http.StatusNotFound {
			t.Errorf("image after delete: %d", g.Status)
		}
	})
	t.Run("case=deleting the user deletes the image", func(t *testing.T) {
		if r := env.Do(t, "DELETE", "/api/users", nil, auth(u)...); r.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if g := env.Do(t, "GET", strings.TrimPrefix(first, env.Config.PublicURL), nil); g.Status != http.StatusNotFound {
			t.Errorf("image after delete: %d", g.Status)
		}
	})
}

// keptImages counts the objects in the images bucket.
func keptImages(t *testing.T) int {
	t.Helper()
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(env.S3.Endpoint()), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(testenv.ImagesBucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}
