//go:build !linux && !darwin

package desktop

import (
	"fmt"
	"image"
	"log/slog"
	"runtime"

	"github.com/kbinani/screenshot"
)

// shotScreen captures through kbinani/screenshot (GDI on Windows,
// CoreGraphics on macOS when built with cgo) and injects input through the
// platform's native API. There is no cheap change signal here, so every
// pass grabs and hashes; the tile hashes still keep unchanged screens from
// costing any encoding or bandwidth.
type shotScreen struct {
	in    platformInput
	frm   frame
	setup func() // Options.ThreadSetup
}

func openScreen(opts Options, log *slog.Logger) (screen, string, error) {
	s := &shotScreen{setup: opts.ThreadSetup}
	defer s.lock()()
	if screenshot.NumActiveDisplays() == 0 {
		return nil, "", errNoDisplay
	}
	s.in = newPlatformInput()
	return s, "console", nil
}

// lock pins the goroutine to its OS thread and runs the thread setup
// hook; the returned function unpins it. Without a hook it does nothing.
func (s *shotScreen) lock() func() {
	if s.setup == nil {
		return func() {}
	}
	runtime.LockOSThread()
	s.setup()
	return runtime.UnlockOSThread
}

func (s *shotScreen) monitors() ([]monitor, error) {
	defer s.lock()()
	n := screenshot.NumActiveDisplays()
	if n == 0 {
		return nil, errNoDisplay
	}
	out := make([]monitor, 0, n)
	for i := 0; i < n; i++ {
		b := screenshot.GetDisplayBounds(i)
		out = append(out, monitor{ID: uint16(i + 1), X: b.Min.X, Y: b.Min.Y, W: b.Dx(), H: b.Dy(), Primary: i == 0})
	}
	return out, nil
}

func (s *shotScreen) capture(x, y, w, h int) (*frame, error) {
	unlock := s.lock()
	img, err := screenshot.CaptureRect(image.Rect(x, y, x+w, y+h))
	unlock()
	if err != nil {
		return nil, fmt.Errorf("screen capture: %w", err)
	}
	need := w * h * 4
	if cap(s.frm.pix) < need {
		s.frm.pix = make([]byte, need)
	}
	s.frm = frame{pix: s.frm.pix[:need], stride: w * 4, w: w, h: h}
	for row := 0; row < h; row++ {
		src := img.Pix[row*img.Stride : row*img.Stride+w*4]
		dst := s.frm.pix[row*w*4 : (row+1)*w*4]
		for i := 0; i < len(src); i += 4 {
			dst[i], dst[i+1], dst[i+2], dst[i+3] = src[i+2], src[i+1], src[i], 0
		}
	}
	return &s.frm, nil
}

func (s *shotScreen) damage() (x, y, w, h int, known bool) { return 0, 0, 0, 0, false }
func (s *shotScreen) cursor() (byte, bool)                 { defer s.lock()(); return s.in.cursor() }
func (s *shotScreen) keyState() byte                       { defer s.lock()(); return s.in.keyState() }
func (s *shotScreen) key(vk byte, down, ext bool) error {
	defer s.lock()()
	return s.in.key(vk, down, ext)
}
func (s *shotScreen) unicode(ch uint16, down bool) error {
	defer s.lock()()
	return s.in.unicode(ch, down)
}
func (s *shotScreen) mouseMove(x, y int) error { defer s.lock()(); return s.in.mouseMove(x, y) }
func (s *shotScreen) mouseButton(b int, down bool) error {
	defer s.lock()()
	return s.in.mouseButton(b, down)
}
func (s *shotScreen) wheel(delta int) error { defer s.lock()(); return s.in.wheel(delta) }
func (s *shotScreen) close() error          { return nil }
