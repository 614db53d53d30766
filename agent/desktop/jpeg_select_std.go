//go:build !cgo || !linux || desktop_stdjpeg

package desktop

// Without cgo (cross builds) the pure-Go encoder is used.
const jpegImpl = "image/jpeg"

func newJPEGEncoder() (jpegEncoder, error) { return newStdEncoder(), nil }
