package desktop

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/internal/xvfbtest"
	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// xvfb is an X server started by a test, with its own cookie file.
type xvfb struct{ *xvfbtest.Display }

// xvfbOptions starts Xvfb with -noreset and counts it up once our own
// connectX gets in with the cookie.
func xvfbOptions(w, h int) xvfbtest.Options {
	return xvfbtest.Options{Width: w, Height: h, NoReset: true, AuthName: "xauth",
		First: 40, Spread: 50, Limit: 400,
		Ready: func(d *xvfbtest.Display) error {
			c, err := connectX(xTarget{display: d.Name, authority: d.AuthFile})
			if err == nil {
				c.Close()
			}
			return err
		}}
}

// startXvfb launches Xvfb on a free display number with -auth, like a
// display manager does, and stops it (by PID) when the test ends.
func startXvfb(t testing.TB, w, h int) *xvfb {
	t.Helper()
	return &xvfb{xvfbtest.Start(t, xvfbOptions(w, h))}
}

// freeDisplay returns the first display number from n on with no socket or
// lock file.
func freeDisplay(t testing.TB, n int) int {
	t.Helper()
	xvfbtest.RequireTools(t)
	for ; n < 400 && !xvfbtest.Free(n); n++ {
	}
	return n
}

// startXvfbOn starts Xvfb on display n with a new cookie in auth; nil means
// the display was taken meanwhile.
func startXvfbOn(t testing.TB, n int, auth string, w, h int) *xvfb {
	t.Helper()
	if d := xvfbtest.StartOn(t, n, auth, xvfbOptions(w, h)); d != nil {
		return &xvfb{d}
	}
	return nil
}

// conn opens a test client connection.
func (x *xvfb) conn(t testing.TB) *xgb.Conn {
	t.Helper()
	c, err := connectX(xTarget{display: x.Name, authority: x.AuthFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fillRect paints a solid window at (x, y) — an override-redirect window is
// the simplest way to put known pixels on a WM-less server.
func fillRect(t testing.TB, c *xgb.Conn, x, y, w, h int, rgb uint32) xproto.Window {
	t.Helper()
	scr := xproto.Setup(c).DefaultScreen(c)
	id, err := c.NewId()
	if err != nil {
		t.Fatal(err)
	}
	win := xproto.Window(id)
	err = xproto.CreateWindowChecked(c, scr.RootDepth, win, scr.Root, int16(x), int16(y), uint16(w), uint16(h), 0,
		xproto.WindowClassInputOutput, scr.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{rgb, 1, xproto.EventMaskKeyPress | xproto.EventMaskKeyRelease | xproto.EventMaskButtonPress | xproto.EventMaskButtonRelease}).Check()
	if err != nil {
		t.Fatal(err)
	}
	if err := xproto.MapWindowChecked(c, win).Check(); err != nil {
		t.Fatal(err)
	}
	return win
}

func setRoot(t testing.TB, c *xgb.Conn, rgb uint32) {
	t.Helper()
	scr := xproto.Setup(c).DefaultScreen(c)
	xproto.ChangeWindowAttributes(c, scr.Root, xproto.CwBackPixel, []uint32{rgb})
	if err := xproto.ClearAreaChecked(c, false, scr.Root, 0, 0, 0, 0).Check(); err != nil {
		t.Fatal(err)
	}
}

// viewer decodes the agent's protocol-2 stream like the browser does.
type viewer struct {
	t       testing.TB
	ch      session.Channel
	canvas  *image.RGBA
	w, h    int
	cursor  int
	errors  []string
	display []uint16
	tiles   int
	// webpTiles counts the tiles that came as WebP rather than JPEG.
	webpTiles int
	screens   int
	bytes     int
	// area is the pixels of every tile received, so area/(w*h) counts
	// full frames.
	area int
	// lockState is the last INPUT_LOCK answer, -1 before one.
	lockState int
}

func newViewer(t testing.TB, ch session.Channel) *viewer {
	return &viewer{t: t, ch: ch, cursor: -1, lockState: -1}
}

// next reads and applies one message; it returns the command number.
func (v *viewer) next(ctx context.Context) (int, error) {
	f, err := v.ch.Read(ctx)
	if err != nil {
		return 0, err
	}
	if !f.Binary {
		return -1, nil
	}
	d := f.Data
	if len(d) < 4 {
		return 0, fmt.Errorf("short message %x", d)
	}
	cmd := int(binary.BigEndian.Uint16(d))
	n := int(binary.BigEndian.Uint16(d[2:]))
	if cmd == kvm.Jumbo {
		if n != 8 || len(d) < 16 {
			return 0, fmt.Errorf("bad jumbo header %x", d[:min(16, len(d))])
		}
		inner := int(binary.BigEndian.Uint32(d[4:]))
		if inner != len(d)-8 {
			return 0, fmt.Errorf("jumbo inner length %d, message %d", inner, len(d))
		}
		d = d[8:]
		cmd = int(binary.BigEndian.Uint16(d))
		n = len(d)
	}
	if n != len(d) {
		return 0, fmt.Errorf("cmd %d: length %d but message %d (one command per message)", cmd, n, len(d))
	}
	switch cmd {
	case kvm.Screen:
		v.w, v.h = int(binary.BigEndian.Uint16(d[4:])), int(binary.BigEndian.Uint16(d[6:]))
		v.canvas = image.NewRGBA(image.Rect(0, 0, v.w, v.h))
		v.screens++
	case kvm.Picture:
		if v.canvas == nil {
			return 0, fmt.Errorf("PICTURE before SCREEN")
		}
		x, y := int(binary.BigEndian.Uint16(d[4:])), int(binary.BigEndian.Uint16(d[6:]))
		img, err := decodeTile(d[8:])
		if err != nil {
			return 0, fmt.Errorf("tile: %w", err)
		}
		if bytes.HasPrefix(d[8:], []byte("RIFF")) {
			v.webpTiles++
		}
		b := img.Bounds()
		if x%16 != 0 || y%16 != 0 || b.Dx()%16 != 0 || b.Dy()%16 != 0 {
			return 0, fmt.Errorf("tile %d,%d %dx%d off the 16-pixel grid", x, y, b.Dx(), b.Dy())
		}
		for yy := 0; yy < b.Dy(); yy++ {
			for xx := 0; xx < b.Dx(); xx++ {
				if x+xx < v.w && y+yy < v.h {
					v.canvas.Set(x+xx, y+yy, img.At(b.Min.X+xx, b.Min.Y+yy))
				}
			}
		}
		v.tiles++
		v.bytes += len(f.Data)
		v.area += b.Dx() * b.Dy()
	case kvm.Cursor:
		v.cursor = int(d[4])
	case kvm.InputLock:
		if len(d) > 4 {
			v.lockState = int(d[4])
		}
	case kvm.Error:
		v.errors = append(v.errors, string(d[4:]))
	case kvm.GetDisplays:
		v.display = nil
		for i := 4; i+1 < len(d); i += 2 {
			v.display = append(v.display, binary.BigEndian.Uint16(d[i:]))
		}
	}
	return cmd, nil
}

// near reports whether the canvas pixel is within JPEG tolerance of rgb.
func (v *viewer) near(x, y int, rgb uint32) bool {
	if v.canvas == nil || x >= v.w || y >= v.h {
		return false
	}
	c := v.canvas.RGBAAt(x, y)
	want := color.RGBA{byte(rgb >> 16), byte(rgb >> 8), byte(rgb), 255}
	d := func(a, b byte) int {
		if a > b {
			return int(a - b)
		}
		return int(b - a)
	}
	return d(c.R, want.R) < 24 && d(c.G, want.G) < 24 && d(c.B, want.B) < 24
}

// until reads messages until cond holds or the deadline passes.
func (v *viewer) until(ctx context.Context, what string, cond func() bool) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !cond() {
		if _, err := v.next(ctx); err != nil {
			v.t.Fatalf("waiting for %s: %v", what, err)
		}
	}
}

func (v *viewer) send(ctx context.Context, b ...[]byte) {
	v.t.Helper()
	if err := v.ch.Write(ctx, session.Frame{Binary: true, Data: bytes.Join(b, nil)}); err != nil {
		v.t.Fatal(err)
	}
}

type served struct {
	v    *viewer
	done chan error
}

func serve(t testing.TB, ctx context.Context, x *xvfb, info session.Info) *served {
	t.Helper()
	a, b := session.Pipe(64)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	go func() { done <- Serve(ctx, a, info, Options{Display: x.Name, XAuthority: x.AuthFile}) }()
	t.Cleanup(func() {
		cancel()
		b.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return &served{v: newViewer(t, b), done: done}
}

var fullRights = session.Info{Protocol: 2, Rights: session.RightAdmin, SessionID: "test"}
