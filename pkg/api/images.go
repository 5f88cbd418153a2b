package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/example/accounts/pkg/httpapi"
	"github.com/example/accounts/pkg/images"
	"github.com/example/accounts/pkg/users"
)

// imageRoute is where kept images are served: GET /api/images/{name}.
const imageRoute = "/api/images/"

// imageFiles are the file parts a multipart user body may carry.
var imageFiles = map[string]bool{"image": true}

// upload is an image file kept for a request: its name, so that it can be
// dropped again if the request fails.
type upload struct{ name string }

// takeImage keeps the image file part of a multipart body (checked by its
// content, re-encoded without metadata) and points in.Image at it. The
// caller settles it with settleImage once the write is done.
func (a *API) takeImage(ctx context.Context, files map[string]*httpapi.File, in *users.ProfileInput) (*upload, error) {
	f := files["image"]
	if f == nil {
		return nil, nil
	}
	if a.Images == nil {
		return nil, httpapi.Invalid(map[string][]string{"image": {"Image uploads are not available on this deployment; send the image's URL instead."}})
	}
	img, err := images.Normalize(f.Data)
	switch {
	case errors.Is(err, images.ErrTooLarge):
		return nil, &httpapi.Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: "Ensure the image is at most 2 MiB and 40 megapixels.", Fields: map[string][]string{"image": {"Ensure the image is at most 2 MiB and 40 megapixels."}}}
	case errors.Is(err, images.ErrNotImage):
		return nil, httpapi.Invalid(map[string][]string{"image": {"Upload a PNG, JPEG, WebP or GIF image."}})
	case err != nil:
		return nil, httpapi.Internal(err)
	}
	name, err := images.NewName(img.Ext)
	if err != nil {
		return nil, httpapi.Internal(err)
	}
	if err := a.Images.Put(ctx, name, img); err != nil {
		return nil, httpapi.Unavailable(err)
	}
	u := a.baseURL(ctx) + imageRoute + name
	in.Image = &u
	return &upload{name: name}, nil
}

// settleImage finishes a write that may have kept an image and may have
// replaced one: on failure the new image goes, on success the old one
// (when it was ours and is no longer the user's).
func (a *API) settleImage(ctx context.Context, up *upload, before, after *users.User, failed error) {
	if a.Images == nil {
		return
	}
	if failed != nil {
		if up != nil {
			a.dropImage(ctx, up.name)
		}
		return
	}
	if before == nil {
		return
	}
	if old, ok := a.ownImage(ctx, before.Image); ok && (after == nil || after.Image != before.Image) {
		a.dropImage(ctx, old)
	}
}

// ownImage is the name of the kept image url points at, if it is one.
func (a *API) ownImage(ctx context.Context, url string) (string, bool) {
	name, ok := strings.CutPrefix(url, a.baseURL(ctx)+imageRoute)
	return name, ok && images.ValidName(name)
}

// dropImage deletes a kept image; a failure is logged (an orphan costs
// storage, not correctness).
func (a *API) dropImage(ctx context.Context, name string) {
	if err := a.Images.Delete(ctx, name); err != nil {
		a.Log.ErrorContext(ctx, "deleting an image failed", "image", name, "request_id", httpapi.RequestID(ctx), "error", err)
	}
}

// GetImage serves GET /api/images/{name}: a kept image. Names are
// unguessable and never reused, so answers may be cached for good.
func (a *API) GetImage() httpapi.LambdaHandler {
	return httpapi.Wrap("GetImage", a.Log, func(ctx context.Context, r *httpapi.Request) (*httpapi.Response, error) {
		name := r.PathParam("name")
		if a.Images == nil || !images.ValidName(name) {
			return nil, httpapi.NotFound("")
		}
		b, ctype, err := a.Images.Get(ctx, name)
		if errors.Is(err, images.ErrNotFound) {
			return nil, httpapi.NotFound("")
		}
		if err != nil {
			return nil, httpapi.Unavailable(err)
		}
		return httpapi.Bytes(http.StatusOK, b, ctype).WithHeader("Cache-Control", "public, max-age=31536000, immutable"), nil
	})
}
