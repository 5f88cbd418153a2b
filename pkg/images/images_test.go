package images

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

func sample() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 8, 6))
	for x := range 8 {
		img.Set(x, x%6, color.RGBA{R: 200, A: 255})
	}
	return img
}

// withEXIF puts an APP1 (EXIF) segment carrying marker after the JPEG's SOI.
func withEXIF(j []byte, marker string) []byte {
	payload := append([]byte("Exif\x00\x00"), marker...)
	seg := []byte{0xff, 0xe1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

// A 1x1 lossless WebP.
const webp1x1 = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="

func TestNormalize(t *testing.T) {
	var p, j, g bytes.Buffer
	if err := png.Encode(&p, sample()); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&j, sample(), nil); err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&g, sample(), nil); err != nil {
		t.Fatal(err)
	}
	w, _ := base64.StdEncoding.DecodeString(webp1x1)
	for _, tc := range []struct {
		desc  string
		in    []byte
		ctype string
		err   error
	}{
		{desc: "png stays png", in: p.Bytes(), ctype: "image/png"},
		{desc: "jpeg with exif is re-encoded without it", in: withEXIF(j.Bytes(), "GPS-SECRET"), ctype: "image/jpeg"},
		{desc: "gif stays gif", in: g.Bytes(), ctype: "image/gif"},
		{desc: "webp becomes png", in: w, ctype: "image/png"},
		{desc: "text named like an image is refused", in: []byte("hello, not an image"), err: ErrNotImage},
		{desc: "a truncated png is refused", in: p.Bytes()[:20], err: ErrNotImage},
		{desc: "svg is refused", in: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), err: ErrNotImage},
		{desc: "over 2 MiB is refused", in: append(p.Bytes(), make([]byte, MaxBytes)...), err: ErrTooLarge},
	} {
		t.Run("case="+tc.desc, func(t *testing.T) {
			img, err := Normalize(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.ContentType != tc.ctype {
				t.Errorf("content type %s, want %s", img.ContentType, tc.ctype)
			}
			if bytes.Contains(img.Data, []byte("GPS-SECRET")) || bytes.Contains(img.Data, []byte("Exif")) {
				t.Errorf("metadata survived")
			}
			if _, _, err := image.Decode(bytes.NewReader(img.Data)); err != nil {
				t.Errorf("output does not decode: %v", err)
			}
		})
	}
	t.Run("case=a huge canvas is refused before decoding", func(t *testing.T) {
		// A PNG header claiming 100000x100000 pixels.
		var b bytes.Buffer
		png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
		d := b.Bytes()
		copy(d[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
		if _, err := Normalize(d); !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrNotImage) {
			t.Fatalf("err = %v", err)
		}
	})
	if !ValidName("0123456789abcdef0123456789abcdef.png") || ValidName("../x.png") || ValidName("0123456789ABCDEF0123456789abcdef.png") {
		t.Error("ValidName")
	}
}
