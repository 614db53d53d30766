//go:build cgo && linux && !desktop_stdjpeg && !desktop_turbo_shared

package desktop

// #cgo LDFLAGS: -l:libturbojpeg.a
import "C"
