//go:build !((linux && cgo) || darwin)

package desktop

import "errors"

// Without libc (CGO_ENABLED=0 on Linux) or on Windows there is no libwebp
// to load, so tiles stay JPEG whatever the viewer asks.
func newWebPEncoder(lossless bool) (jpegEncoder, error) {
	return nil, errors.New("webp: not available in this build")
}

func webpVersion() string { return "" }
