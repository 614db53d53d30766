package desktop

import (
	"image"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/kbinani/screenshot"
)

// testFrame is a 1080p frame with desktop-like content: flat areas, text-like
// high-contrast strokes and a noisy photo region.
func testFrame() *frame {
	w, h := 1920, 1080
	f := &frame{w: w, h: h, stride: w * 4, pix: make([]byte, w*h*4)}
	r := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := y*f.stride + x*4
			switch {
			case x > 1200 && y > 500: // photo
				f.pix[o], f.pix[o+1], f.pix[o+2] = byte(x+r.IntN(40)), byte(y+r.IntN(40)), byte(x^y)
			case (x/7+y/11)%5 == 0 && y%16 < 12: // text strokes
				f.pix[o], f.pix[o+1], f.pix[o+2] = 20, 20, 20
			default:
				f.pix[o], f.pix[o+1], f.pix[o+2] = 240, 240, 235
			}
		}
	}
	return f
}

func BenchmarkEncodeFullFrame(b *testing.B) {
	f := testFrame()
	encs := map[string]func() jpegEncoder{"std": newStdEncoder}
	if jpegImpl != "image/jpeg" {
		encs["turbo"] = func() jpegEncoder { e, _ := newJPEGEncoder(); return e }
	}
	for name, mk := range encs {
		b.Run(name, func(b *testing.B) {
			e := mk()
			defer e.close()
			var out []byte
			b.SetBytes(int64(len(f.pix)))
			for b.Loop() {
				var err error
				out, err = e.encode(out[:0], *f, 60)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out)), "jpeg-bytes")
		})
	}
}

func BenchmarkTileDiff(b *testing.B) {
	f := testFrame()
	tl := newTiler()
	tl.diff(f)
	b.SetBytes(int64(len(f.pix)))
	for b.Loop() {
		f.pix[12345] ^= 1 // one tile changes each time
		tl.diff(f)
		tl.rects(nil)
	}
}

func BenchmarkCapture1080p(b *testing.B) {
	x := startXvfb(b, 1920, 1080)
	b.Run("xgb-shm", func(b *testing.B) {
		s, _, err := openX(Options{Display: x.Name, XAuthority: x.AuthFile}, slog.Default())
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		for b.Loop() {
			if _, err := s.capture(0, 0, 1920, 1080); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("xgb-getimage", func(b *testing.B) {
		s, _, err := openX(Options{Display: x.Name, XAuthority: x.AuthFile}, slog.Default())
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		s.(*xScreen).useShm = false
		for b.Loop() {
			if _, err := s.capture(0, 0, 1920, 1080); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kbinani-screenshot", func(b *testing.B) {
		b.Setenv("DISPLAY", x.Name)
		b.Setenv("XAUTHORITY", x.AuthFile)
		for b.Loop() {
			if _, err := screenshot.CaptureRect(image.Rect(0, 0, 1920, 1080)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
