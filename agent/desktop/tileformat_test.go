//go:build linux && cgo

package desktop

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// uiImage is a 1920x1080 application screen: flat panels, a title bar,
// buttons and anti-aliased text (Go Regular at two sizes), the content a
// remote desktop mostly shows.
func uiImage(tb testing.TB, seed uint64) *image.RGBA {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 1920, 1080))
	fill := func(x0, y0, x1, y1 int, c color.RGBA) {
		draw.Draw(img, image.Rect(x0, y0, x1, y1), &image.Uniform{c}, image.Point{}, draw.Src)
	}
	fill(0, 0, 1920, 1080, color.RGBA{0xf3, 0xf3, 0xf3, 0xff})
	fill(0, 0, 1920, 36, color.RGBA{0x2b, 0x2d, 0x31, 0xff})
	fill(0, 36, 280, 1080, color.RGBA{0xe4, 0xe6, 0xea, 0xff})
	fill(300, 60, 1900, 1060, color.RGBA{0xff, 0xff, 0xff, 0xff})
	for i := 0; i < 6; i++ {
		fill(320+i*140, 80, 440+i*140, 112, color.RGBA{0x1a, 0x73, 0xe8, 0xff})
	}
	ft, err := opentype.Parse(goregular.TTF)
	if err != nil {
		tb.Fatal(err)
	}
	face := func(size float64) font.Face {
		f, err := opentype.NewFace(ft, &opentype.FaceOptions{Size: size, DPI: 96, Hinting: font.HintingFull})
		if err != nil {
			tb.Fatal(err)
		}
		return f
	}
	small, big := face(11), face(14)
	words := []string{"desktop", "agent", "tile", "frame", "encoder", "MeshCentral", "relay", "session", "quality", "viewer", "the", "of", "and", "to", "a", "pixels", "WebP", "JPEG", "lossless", "bytes"}
	r := rand.New(rand.NewPCG(seed, 3))
	line := func(d *font.Drawer, x, y, n int) {
		d.Dot = fixed.P(x, y)
		s := ""
		for i := 0; i < n; i++ {
			s += words[r.IntN(len(words))] + " "
		}
		d.DrawString(s)
	}
	dk := &font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{0x20, 0x21, 0x24, 0xff}), Face: big}
	for y := 150; y < 1040; y += 22 {
		line(dk, 330, y, 14+r.IntN(10))
	}
	dk.Face = small
	for y := 70; y < 1060; y += 18 {
		line(dk, 12, y, 3)
	}
	dk.Src = image.NewUniform(color.RGBA{0xff, 0xff, 0xff, 0xff})
	line(dk, 12, 24, 6)
	return img
}

// frameOf converts an RGBA image to the BGRX frame the capture paths give.
func frameOf(img *image.RGBA) *frame {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	f := &frame{w: w, h: h, stride: w * 4, pix: make([]byte, w*h*4)}
	for i := 0; i < len(f.pix); i += 4 {
		f.pix[i], f.pix[i+1], f.pix[i+2] = img.Pix[i+2], img.Pix[i+1], img.Pix[i]
	}
	return f
}

// desktopPicture is interop's BenchmarkDesktop static screen (a gradient
// background, a light window with text-like strokes, a coloured panel).
func desktopPicture() *frame {
	const w, h = 1920, 1080
	f := &frame{w: w, h: h, stride: w * 4, pix: make([]byte, w*h*4)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, b := byte(40+x*120/w), byte(60+y*100/h), byte(140)
			switch {
			case y < 32:
				r, g, b = 30, 30, 36
			case x > 200 && x < 1100 && y > 120 && y < 900:
				r, g, b = 236, 236, 232
				if (y-140)%22 < 12 && ((x-220)/9+(y-140)/22)%7 != 0 && x > 220 && x < 1080 && y > 140 && y < 880 && (x/3+y)%4 != 0 {
					r, g, b = 32, 32, 32
				}
			case x > 1250 && x < 1800 && y > 300 && y < 800:
				r, g, b = byte(200-(y-300)/4), byte(90+(x-1250)/5), 60
			}
			o := y*f.stride + x*4
			f.pix[o], f.pix[o+1], f.pix[o+2] = b, g, r
		}
	}
	return f
}

func noiseFrame(w, h int) *frame {
	f := &frame{w: w, h: h, stride: w * 4, pix: make([]byte, w*h*4)}
	r := rand.NewChaCha8([32]byte{42})
	r.Read(f.pix)
	for i := 3; i < len(f.pix); i += 4 {
		f.pix[i] = 0
	}
	return f
}

// tileScenes are the screens the formats are compared on, each cut into
// the rectangles the tiler sends for a whole-screen update.
func tileScenes(tb testing.TB) []struct {
	name string
	f    *frame
} {
	return []struct {
		name string
		f    *frame
	}{
		{"ui-text", frameOf(uiImage(tb, 1))},
		{"bench-desktop", desktopPicture()},
		{"mixed-photo", testFrame()},
		{"noise-224", noiseFrame(224, 224)},
		{"noise-full", noiseFrame(1920, 1080)},
	}
}

// measureDecode decodes a tile as the browser would, lossy WebP included.
func measureDecode(b []byte) (image.Image, error) {
	if bytes.HasPrefix(b, []byte("RIFF")) {
		return decodeWebPLib(b)
	}
	return decodeTile(b)
}

// psnr of a decoded tile against the BGRX source, over R, G and B.
func tileSSE(src frame, img image.Image) (sse float64, n int) {
	b := img.Bounds()
	for y := 0; y < src.h; y++ {
		for x := 0; x < src.w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			o := y*src.stride + x*4
			for c, v := range [3]uint32{bl >> 8, g >> 8, r >> 8} {
				d := float64(int(src.pix[o+c]) - int(v))
				sse += d * d
			}
			n += 3
		}
	}
	return sse, n
}

// decodeWebPLib decodes with libwebp itself, as the browser does:
// x/image/webp converts VP8's limited-range YCbCr with the full-range JFIF
// formulas, which would understate lossy WebP's fidelity by several dB.
func decodeWebPLib(b []byte) (image.Image, error) {
	h, err := purego.Dlopen("libwebp.so.7", purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	var dec func(data unsafe.Pointer, size uintptr, w, h *int32) unsafe.Pointer
	var free func(p unsafe.Pointer)
	purego.RegisterLibFunc(&dec, h, "WebPDecodeRGBA")
	purego.RegisterLibFunc(&free, h, "WebPFree")
	var w, ht int32
	p := dec(unsafe.Pointer(&b[0]), uintptr(len(b)), &w, &ht)
	if p == nil {
		return nil, fmt.Errorf("WebPDecodeRGBA failed on %d bytes", len(b))
	}
	defer free(p)
	img := image.NewRGBA(image.Rect(0, 0, int(w), int(ht)))
	copy(img.Pix, unsafe.Slice((*byte)(p), len(img.Pix)))
	return img, nil
}

type formatResult struct {
	bytes int
	psnr  float64
	enc   time.Duration
}

// encodeScene encodes every rectangle of a whole-screen update of f with
// mk's encoder and returns total bytes, PSNR and encoding time.
func encodeScene(tb testing.TB, f *frame, enc jpegEncoder, quality int) formatResult {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tl := newTiler()
	tl.diff(f)
	rects := tl.rects(nil)
	cur := tl.current()
	var res formatResult
	var sse float64
	var n int
	var scratch, out []byte
	for _, rc := range rects {
		var sub frame
		sub, scratch = cur.sub(rc, scratch)
		t0 := threadCPU()
		var err error
		out, err = enc.encode(out[:0], sub, quality)
		res.enc += threadCPU() - t0
		if err != nil {
			tb.Fatal(err)
		}
		res.bytes += len(out)
		img, err := measureDecode(out)
		if err != nil {
			tb.Fatalf("tile at %d,%d does not decode: %v", rc.x, rc.y, err)
		}
		s, k := tileSSE(sub, img)
		sse, n = sse+s, n+k
	}
	res.psnr = 99
	if sse > 0 {
		res.psnr = 10 * math.Log10(255*255/(sse/float64(n)))
	}
	return res
}

// threadCPU is the calling thread's CPU time: on a loaded machine the
// wall clock would mostly measure other processes.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type pngEncoder struct{ buf bytes.Buffer }

func (e *pngEncoder) encode(dst []byte, f frame, _ int) ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, f.w, f.h))
	for y := 0; y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			o, d := y*f.stride+x*4, img.PixOffset(x, y)
			img.Pix[d], img.Pix[d+1], img.Pix[d+2], img.Pix[d+3] = f.pix[o+2], f.pix[o+1], f.pix[o], 0xff
		}
	}
	e.buf.Reset()
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&e.buf, img); err != nil {
		return dst, err
	}
	return append(dst, e.buf.Bytes()...), nil
}
func (e *pngEncoder) close() {}

func webpVariant(lossless bool, method int32, effort int) func() (jpegEncoder, error) {
	return func() (jpegEncoder, error) {
		e, err := newWebPEncoder(lossless)
		if err == nil {
			e.(*webpEncoder).method, e.(*webpEncoder).effort = method, effort
		}
		return e, err
	}
}

// BenchmarkTileFormats prints, for each scene, the bytes, PSNR and encoding
// time of a whole-screen update as JPEG (this build's encoder), lossy WebP
// at several qualities, lossless WebP and PNG, at the web viewer's default
// quality 40. "Same quality" is read off the PSNR column.
//
//	go test ./agent/desktop -run '^$' -bench TileFormats -benchtime 1x
func BenchmarkTileFormats(b *testing.B) {
	if _, err := loadWebP(); err != nil {
		b.Skipf("no libwebp: %v", err)
	}
	type enc struct {
		name string
		mk   func() (jpegEncoder, error)
		q    int
	}
	encs := []enc{
		{"jpeg q40 (" + jpegImpl + ")", newJPEGEncoder, 40},
		{"jpeg q60", newJPEGEncoder, 60},
		{"webp lossy q40 m0", webpVariant(false, 0, 0), 40},
		{"webp lossy q10 m2", webpVariant(false, 2, 0), 10},
		{"webp lossy q40 m2", webpVariant(false, 2, 0), 40},
		{"webp lossless m0 e0", webpVariant(true, 0, 0), 40},
		{"webp lossless m1 e0", webpVariant(true, 1, 0), 40},
		{"webp lossless m1 e25", webpVariant(true, 1, 25), 40},
		{"webp lossless m2 e25", webpVariant(true, 2, 25), 40},
		{"png (image/png fastest)", func() (jpegEncoder, error) { return &pngEncoder{}, nil }, 40},
	}
	for range b.N {
		fmt.Printf("\nwhole-screen update cut into the tiler's rectangles, libwebp %s\n", webpVersion())
		fmt.Printf("%-14s %-26s %10s %8s %13s\n", "scene", "format", "bytes", "PSNR dB", "encode CPU ms")
		for _, sc := range tileScenes(b) {
			fmt.Printf("%-14s flatness %d/1024\n", sc.name, flatness(*sc.f))
			for _, e := range encs {
				en, err := e.mk()
				if err != nil {
					b.Fatal(err)
				}
				r := encodeScene(b, sc.f, en, e.q)
				en.close()
				fmt.Printf("%-14s %-26s %10d %8.2f %13.2f\n", sc.name, e.name, r.bytes, r.psnr, float64(r.enc.Microseconds())/1000)
			}
		}
	}
}

// BenchmarkFlatnessBands prints, per band of the flatness score, how many
// rectangles of the scenes fall in it and their JPEG q40 and lossless WebP
// bytes and CPU: the score at which lossless starts to pay.
func BenchmarkFlatnessBands(b *testing.B) {
	if _, err := loadWebP(); err != nil {
		b.Skipf("no libwebp: %v", err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type band struct {
		n                int
		jb, wb           int
		jcpu, wcpu, fcpu time.Duration
	}
	je, _ := newJPEGEncoder()
	we, _ := newWebPEncoder(true)
	defer je.close()
	defer we.close()
	for range b.N {
		bands := map[int]*band{}
		for _, sc := range tileScenes(b) {
			tl := newTiler()
			tl.diff(sc.f)
			cur := tl.current()
			var scratch, out []byte
			for _, rc := range tl.rects(nil) {
				var sub frame
				sub, scratch = cur.sub(rc, scratch)
				t0 := threadCPU()
				fl := flatness(sub)
				t1 := threadCPU()
				k := fl * 16 / 1025
				bd := bands[k]
				if bd == nil {
					bd = &band{}
					bands[k] = bd
				}
				bd.n++
				bd.fcpu += t1 - t0
				out, _ = je.encode(out[:0], sub, 40)
				t2 := threadCPU()
				bd.jb, bd.jcpu = bd.jb+len(out), bd.jcpu+t2-t1
				out, _ = we.encode(out[:0], sub, 40)
				bd.wb, bd.wcpu = bd.wb+len(out), bd.wcpu+threadCPU()-t2
			}
		}
		fmt.Printf("\n%-16s %6s %10s %10s %8s %10s %10s %10s\n", "flatness band", "rects", "jpeg B", "lossless B", "ratio", "jpeg ms", "webp ms", "score ms")
		for k := 0; k < 16; k++ {
			if bd := bands[k]; bd != nil {
				fmt.Printf("%4d-%-11d %6d %10d %10d %7.2fx %10.2f %10.2f %10.2f\n", k*1025/16, (k+1)*1025/16-1, bd.n, bd.jb, bd.wb, float64(bd.wb)/float64(bd.jb),
					float64(bd.jcpu.Microseconds())/1000, float64(bd.wcpu.Microseconds())/1000, float64(bd.fcpu.Microseconds())/1000)
			}
		}
	}
}
