//go:build cgo && linux && !desktop_stdjpeg && desktop_turbo_shared

package desktop

// #cgo LDFLAGS: -lturbojpeg
import "C"
