// Package images owns uploaded profile images: checking them by content,
// re-encoding them without their metadata, and keeping them in S3.
package images

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/image/webp"
)

// MaxBytes bounds an upload; MaxPixels bounds what decoding it may take.
const (
	MaxBytes  = 2 << 20
	MaxPixels = 40_000_000
)

// ErrNotImage is returned for a file that is not a PNG, JPEG, WebP or GIF
// image (by its content, whatever its name or type say).
var ErrNotImage = errors.New("images: not a PNG, JPEG, WebP or GIF image")

// ErrTooLarge is returned for a file over MaxBytes or MaxPixels.
var ErrTooLarge = errors.New("images: too large")

// Image is an image ready to keep: re-encoded, so no metadata (EXIF, GPS,
// comments) of the upload survives.
type Image struct {
	Data        []byte
	ContentType string
	Ext         string
}

// Normalize checks data by its content and re-encodes it: PNG, JPEG and
// GIF (its first frame) in their own format, WebP as PNG.
func Normalize(data []byte) (*Image, error) {
	if len(data) > MaxBytes {
		return nil, ErrTooLarge
	}
	var format string
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		format = "png"
	case bytes.HasPrefix(data, []byte{0xff, 0xd8, 0xff}):
		format = "jpeg"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		format = "gif"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		format = "webp"
	default:
		return nil, ErrNotImage
	}
	decodeConfig, decode := decoders(format)
	cfg, err := decodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, ErrNotImage
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, ErrTooLarge
	}
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return nil, ErrNotImage
	}
	var out bytes.Buffer
	switch format {
	case "jpeg":
		err = jpeg.Encode(&out, img, &jpeg.Options{Quality: 90})
		return done(&out, err, "image/jpeg", ".jpg")
	case "gif":
		err = gif.Encode(&out, img, nil)
		return done(&out, err, "image/gif", ".gif")
	default: // png, and webp, which the standard library cannot write
		err = png.Encode(&out, img)
		return done(&out, err, "image/png", ".png")
	}
}

func done(b *bytes.Buffer, err error, ctype, ext string) (*Image, error) {
	if err != nil {
		return nil, fmt.Errorf("images: encode: %w", err)
	}
	return &Image{Data: b.Bytes(), ContentType: ctype, Ext: ext}, nil
}

func decoders(format string) (func(io.Reader) (image.Config, error), func(io.Reader) (image.Image, error)) {
	switch format {
	case "png":
		return png.DecodeConfig, png.Decode
	case "jpeg":
		return jpeg.DecodeConfig, jpeg.Decode
	case "gif":
		return gif.DecodeConfig, gif.Decode
	}
	return webp.DecodeConfig, webp.Decode
}

// S3 is the part of the S3 client the store uses.
type S3 interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// Store keeps images in one S3 bucket, each under an unguessable name.
type Store struct {
	Client S3
	Bucket string
}

// ErrNotFound is returned for a name the store does not hold.
var ErrNotFound = errors.New("images: not found")

// NewName is a fresh, unguessable object name for an image of ext.
func NewName(ext string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b) + ext, nil
}

// ValidName reports whether name is one NewName gives.
func ValidName(name string) bool {
	base, ext, ok := strings.Cut(name, ".")
	if !ok || len(base) != 32 || (ext != "png" && ext != "jpg" && ext != "gif") {
		return false
	}
	_, err := hex.DecodeString(base)
	return err == nil && strings.ToLower(base) == base
}

const prefix = "images/"

// Put keeps img under name.
func (s *Store) Put(ctx context.Context, name string, img *Image) error {
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(prefix + name),
		Body: bytes.NewReader(img.Data), ContentType: aws.String(img.ContentType),
		ContentLength: aws.Int64(int64(len(img.Data))),
	})
	return err
}

// Get reads the image under name and its content type.
func (s *Store) Get(ctx context.Context, name string) ([]byte, string, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(prefix + name)})
	if err != nil {
		var nk interface{ ErrorCode() string }
		if errors.As(err, &nk) && (nk.ErrorCode() == "NoSuchKey" || nk.ErrorCode() == "NotFound") {
			return nil, "", ErrNotFound
		}
		return nil, "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 4*MaxBytes))
	return b, aws.ToString(out.ContentType), err
}

// Delete removes the image under name (no error when it is gone already).
func (s *Store) Delete(ctx context.Context, name string) error {
	_, err := s.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(prefix + name)})
	return err
}
