//go:build (linux && cgo) || darwin

package desktop

import (
	"image"
	"testing"
	"unsafe"
)

// The offsets the encoder relies on, as in libwebp's encode.h for LP64.
func TestWebPStructLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the layout is declared for 64-bit platforms")
	}
	var p webpPicture
	var c webpConfig
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"WebPPicture size", unsafe.Sizeof(p), 256},
		{"width", unsafe.Offsetof(p.width), 8},
		{"argb", unsafe.Offsetof(p.argb), 72},
		{"writer", unsafe.Offsetof(p.writer), 96},
		{"custom_ptr", unsafe.Offsetof(p.customPtr), 104},
		{"error_code", unsafe.Offsetof(p.errorCode), 136},
		{"memory_", unsafe.Offsetof(p.memory), 224},
		{"config quality", unsafe.Offsetof(c.quality), 4},
		{"config method", unsafe.Offsetof(c.method), 8},
		{"config use_sharp_yuv", unsafe.Offsetof(c.useSharpYUV), 26 * 4},
		{"memory writer size", unsafe.Offsetof(webpMemoryWriter{}.size), 8},
	} {
		if tc.got != tc.want {
			t.Errorf("%s at %d, libwebp has %d", tc.name, tc.got, tc.want)
		}
	}
}

// TestOpenWebPRefuses: no library, a library without libwebp's symbols and
// "off" are errors, never panics.
func TestOpenWebPRefuses(t *testing.T) {
	for _, names := range [][]string{{"/nonexistent/libwebp.so.7"}, {"libc.so.6", "libSystem.B.dylib"}, {"off"}} {
		if l, err := openWebP(names); err == nil {
			t.Errorf("openWebP(%q) = %v, want an error", names, l)
		} else {
			t.Logf("%q: %v", names, err)
		}
	}
}

// FuzzWebPLossless: any frame geometry is refused or encoded, and what is
// encoded decodes to exactly the input pixels.
func FuzzWebPLossless(f *testing.F) {
	if _, err := loadWebP(); err != nil {
		f.Skipf("no libwebp: %v", err)
	}
	f.Add(uint8(32), uint8(32), uint8(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(1), uint8(1), uint8(3), []byte{255, 0, 0, 9})
	f.Add(uint8(0), uint8(7), uint8(1), []byte{})
	f.Fuzz(func(t *testing.T, w, h, pad uint8, seed []byte) {
		e, err := newWebPEncoder(true)
		if err != nil {
			t.Fatal(err)
		}
		defer e.close()
		fw, fh := int(w%80), int(h%80)
		stride := fw*4 + int(pad%9)*4
		n := 0
		if fh > 0 {
			n = (fh-1)*stride + fw*4
		}
		if len(seed) > 0 && len(seed)%5 == 0 {
			n-- // sometimes a buffer one byte short: must be refused
		}
		pix := make([]byte, max(n, 0))
		for i := range pix {
			if len(seed) > 0 {
				pix[i] = seed[i%len(seed)] + byte(i/len(seed))
			}
		}
		fr := frame{pix: pix, stride: stride, w: fw, h: fh}
		out, err := e.encode(nil, fr, 40)
		if fw == 0 || fh == 0 || len(pix) < (fh-1)*stride+fw*4 {
			if err == nil {
				t.Fatalf("%dx%d stride %d len %d encoded", fw, fh, stride, len(pix))
			}
			return
		}
		if err != nil {
			t.Fatalf("%dx%d: %v", fw, fh, err)
		}
		img, err := decodeTile(out)
		if err != nil {
			t.Fatalf("%dx%d: output does not decode: %v", fw, fh, err)
		}
		if img.Bounds() != image.Rect(0, 0, fw, fh) {
			t.Fatalf("decoded %v, want %dx%d", img.Bounds(), fw, fh)
		}
		for y := 0; y < fh; y++ {
			for x := 0; x < fw; x++ {
				r, g, b, a := img.At(x, y).RGBA()
				o := y*stride + x*4
				if byte(r>>8) != pix[o+2] || byte(g>>8) != pix[o+1] || byte(b>>8) != pix[o] || a != 0xffff {
					t.Fatalf("%dx%d pixel %d,%d = %d,%d,%d,%d, want %d,%d,%d opaque", fw, fh, x, y, r>>8, g>>8, b>>8, a>>8, pix[o+2], pix[o+1], pix[o])
				}
			}
		}
	})
}
