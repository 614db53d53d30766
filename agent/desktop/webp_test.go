package desktop

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// decodeTile decodes a PICTURE tile in whatever format the agent chose, as
// the browser does (it sniffs the bytes, whatever the data: URL says).
// x/image/webp is exact for the lossless WebP the agent sends.
func decodeTile(b []byte) (image.Image, error) {
	switch {
	case bytes.HasPrefix(b, []byte("RIFF")):
		return webp.Decode(bytes.NewReader(b))
	case bytes.HasPrefix(b, []byte("\x89PNG")):
		return png.Decode(bytes.NewReader(b))
	}
	return jpeg.Decode(bytes.NewReader(b))
}
