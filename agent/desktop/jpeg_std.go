package desktop

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

type stdEncoder struct {
	rgba image.RGBA
	buf  bytes.Buffer
}

// stdEncoder is the pure-Go encoder: correct everywhere, about ten times
// slower than libjpeg-turbo. It is the fallback for CGO_ENABLED=0 builds and
// the reference the turbo path is benchmarked against.
func newStdEncoder() jpegEncoder { return &stdEncoder{} }

func (e *stdEncoder) encode(dst []byte, f frame, quality int) ([]byte, error) {
	// image/jpeg has a fast path for *image.RGBA only, so swizzle BGRX.
	n := f.w * f.h * 4
	if cap(e.rgba.Pix) < n {
		e.rgba.Pix = make([]byte, n)
	}
	e.rgba.Pix = e.rgba.Pix[:n]
	e.rgba.Stride = f.w * 4
	e.rgba.Rect = image.Rect(0, 0, f.w, f.h)
	for y := 0; y < f.h; y++ {
		s := f.pix[y*f.stride : y*f.stride+f.w*4]
		d := e.rgba.Pix[y*f.w*4 : (y+1)*f.w*4]
		for i := 0; i < len(s); i += 4 {
			d[i], d[i+1], d[i+2], d[i+3] = s[i+2], s[i+1], s[i], 0xff
		}
	}
	e.buf.Reset()
	if err := jpeg.Encode(&e.buf, &e.rgba, &jpeg.Options{Quality: quality}); err != nil {
		return dst, fmt.Errorf("jpeg encode: %w", err)
	}
	return append(dst, e.buf.Bytes()...), nil
}

func (e *stdEncoder) close() {}
