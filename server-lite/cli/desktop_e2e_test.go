//go:build linux

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xproto"

	"github.com/meshgo/meshagent/internal/xvfbtest"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/sessionclient"
)

// xserver is an Xvfb started by the test with its own cookie file, as a
// display manager starts one.
type xserver struct{ *xvfbtest.Display }

// startX launches Xvfb on a free display number with -auth and stops it by
// PID when the test ends.
func startX(t *testing.T, w, h int) *xserver {
	t.Helper()
	return &xserver{xvfbtest.Start(t, xvfbtest.Options{Width: w, Height: h, NoReset: true,
		First: 140, Spread: 100, Limit: 500, Ready: xvfbtest.DialReady})}
}

func (x *xserver) conn(t *testing.T) *xgb.Conn {
	t.Helper()
	c, err := x.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// window maps an override-redirect window of solid colour: known pixels
// on a server without a window manager.
func window(t *testing.T, c *xgb.Conn, x, y, w, h int, rgb uint32, events uint32) xproto.Window {
	t.Helper()
	scr := xproto.Setup(c).DefaultScreen(c)
	id, err := c.NewId()
	if err != nil {
		t.Fatal(err)
	}
	win := xproto.Window(id)
	if err := xproto.CreateWindowChecked(c, scr.RootDepth, win, scr.Root, int16(x), int16(y), uint16(w), uint16(h), 0,
		xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{rgb, 1, events}).Check(); err != nil {
		t.Fatal(err)
	}
	if err := xproto.MapWindowChecked(c, win).Check(); err != nil {
		t.Fatal(err)
	}
	return win
}

func setBackground(t *testing.T, c *xgb.Conn, rgb uint32) {
	t.Helper()
	scr := xproto.Setup(c).DefaultScreen(c)
	xproto.ChangeWindowAttributes(c, scr.Root, xproto.CwBackPixel, []uint32{rgb})
	if err := xproto.ClearAreaChecked(c, false, scr.Root, 0, 0, 0, 0).Check(); err != nil {
		t.Fatal(err)
	}
}

// framebuffer reads the root window's pixels (32-bit ZPixmap, BGRX).
func framebuffer(t *testing.T, c *xgb.Conn) *image.RGBA {
	t.Helper()
	scr := xproto.Setup(c).DefaultScreen(c)
	w, h := int(scr.WidthInPixels), int(scr.HeightInPixels)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	// In bands: one reply for the whole screen would exceed the request
	// size limits of some servers.
	for y0 := 0; y0 < h; y0 += 100 {
		bh := min(100, h-y0)
		r, err := xproto.GetImage(c, xproto.ImageFormatZPixmap, xproto.Drawable(scr.Root), 0, int16(y0), uint16(w), uint16(bh), 0xffffffff).Reply()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Data) < w*bh*4 {
			t.Fatalf("GetImage: %d bytes for %dx%d (depth %d)", len(r.Data), w, bh, r.Depth)
		}
		for i := 0; i < w*bh; i++ {
			p := img.Pix[(y0*w+i)*4:]
			p[0], p[1], p[2], p[3] = r.Data[i*4+2], r.Data[i*4+1], r.Data[i*4], 255
		}
	}
	return img
}

// pointer returns the pointer position.
func pointer(t *testing.T, c *xgb.Conn) (int, int) {
	t.Helper()
	scr := xproto.Setup(c).DefaultScreen(c)
	r, err := xproto.QueryPointer(c, scr.Root).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return int(r.RootX), int(r.RootY)
}

// compareImages compares got with want pixel by pixel, ignoring a box
// around the pointer (the agent may draw the cursor into the frame, the X
// framebuffer never holds it). It returns the mean absolute channel error
// and the fraction of pixels off by more than 48 in some channel.
func compareImages(got, want *image.RGBA, px, py int) (mean float64, bad float64, err error) {
	if got.Bounds() != want.Bounds() {
		return 0, 0, fmt.Errorf("size %v, want %v", got.Bounds().Size(), want.Bounds().Size())
	}
	skip := image.Rect(px-8, py-8, px+40, py+40)
	var sum, n, off int
	b := want.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if image.Pt(x, y).In(skip) {
				continue
			}
			g, w := got.Pix[got.PixOffset(x, y):], want.Pix[want.PixOffset(x, y):]
			worst := 0
			for i := 0; i < 3; i++ {
				d := int(g[i]) - int(w[i])
				if d < 0 {
					d = -d
				}
				sum += d
				worst = max(worst, d)
			}
			if worst > 48 {
				off++
			}
			n++
		}
	}
	return float64(sum) / float64(3*n), float64(off) / float64(n), nil
}

func near(img *image.RGBA, x, y int, rgb uint32) bool {
	p := img.RGBAAt(x, y)
	d := func(a byte, b uint32) bool { return max(int(a), int(b&0xff))-min(int(a), int(b&0xff)) < 40 }
	return d(p.R, rgb>>16) && d(p.G, rgb>>8) && d(p.B, rgb)
}

// TestDesktopThroughServerLite shows an X desktop through server-lite with
// our agent: the viewer (sessionclient.Desktop over the relay, as the CLI
// uses it) rebuilds frames that match the X framebuffer within JPEG
// tolerance, receives only the tiles of a changed area, and injects mouse
// and keys that the X server sees; the screenshot command writes a PNG of
// the screen, over the relay and over WebRTC.
func TestDesktopThroughServerLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Xvfb and a real agent")
	}
	x := startX(t, 1280, 800)
	xc := x.conn(t)
	setBackground(t, xc, 0x2050a0)
	window(t, xc, 40, 40, 300, 200, 0xf0c020, 0)
	window(t, xc, 700, 300, 400, 350, 0x30b040, 0)
	window(t, xc, 1200, 700, 80, 100, 0xffffff, 0) // touches the corner tiles
	e := newLiveEnv(t, liveOptions{env: x.Env()})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := openDesktop(t, ctx, e)

	t.Run("frame", func(t *testing.T) {
		start := time.Now()
		img, err := d.Frame(ctx, -1)
		if err != nil {
			t.Fatal(err)
		}
		st := d.State()
		px, py := pointer(t, xc)
		mean, bad, err := compareImages(img, framebuffer(t, xc), px, py)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("first full frame %dx%d in %v: %d tiles, %d KiB; mean error %.2f, %.3f%% pixels off by >48",
			st.Width, st.Height, time.Since(start).Round(time.Millisecond), st.Tiles, st.Bytes>>10, mean, 100*bad)
		if mean > 4 || bad > 0.005 {
			t.Fatalf("frame differs from the X framebuffer: mean %.2f, %.3f%% off", mean, 100*bad)
		}
	})

	t.Run("changed tiles only", func(t *testing.T) {
		seq := d.State().Tiles
		// A 64x64 change at (100,200): on the 32-pixel grid it spans
		// x 96..192, y 192..288 at most.
		window(t, xc, 100, 200, 64, 64, 0xe02020, 0)
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		if _, err := d.Wait(wctx, func(sessionclient.State) bool {
			img := d.Image()
			return near(img, 130, 230, 0xe02020) && near(img, 104, 204, 0xe02020) && near(img, 160, 260, 0xe02020)
		}); err != nil {
			img := d.Image()
			t.Fatalf("change not shown: %v; pixels %v %v %v; tiles since: %v", err, img.RGBAAt(130, 230), img.RGBAAt(104, 204), img.RGBAAt(160, 260), d.TilesSince(seq))
		}
		time.Sleep(500 * time.Millisecond) // any straggling tiles
		changed := image.Rect(96, 192, 192, 288)
		tiles := d.TilesSince(seq)
		area := 0
		for _, tl := range tiles {
			if !tl.Rect.In(changed) {
				t.Errorf("tile %v outside the changed area %v", tl.Rect, changed)
			}
			area += tl.Rect.Dx() * tl.Rect.Dy()
		}
		t.Logf("a 64x64 change sent %d tile(s) covering %d pixels", len(tiles), area)
		if len(tiles) == 0 {
			t.Fatal("no tile for the change")
		}
		px, py := pointer(t, xc)
		if mean, bad, _ := compareImages(d.Image(), framebuffer(t, xc), px, py); mean > 4 || bad > 0.005 {
			t.Fatalf("after the change the frame differs: mean %.2f, %.3f%% off", mean, 100*bad)
		}
	})

	t.Run("input", func(t *testing.T) {
		if err := d.Mouse(ctx, sessionclient.MouseMove, 123, 45); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "pointer at 123,45", func() bool { x, y := pointer(t, xc); return x == 123 && y == 45 })

		// A window that receives keys and clicks, focused.
		ec := x.conn(t)
		win := window(t, ec, 500, 100, 200, 150, 0x808080, xproto.EventMaskKeyPress|xproto.EventMaskButtonPress)
		if err := xproto.SetInputFocusChecked(ec, xproto.InputFocusPointerRoot, win, 0).Check(); err != nil {
			t.Fatal(err)
		}
		events := make(chan xgb.Event, 16)
		go func() {
			for {
				ev, err := ec.WaitForEvent()
				if ev == nil && err == nil {
					close(events)
					return
				}
				if ev != nil {
					events <- ev
				}
			}
		}()
		if err := d.Send(ctx, sessionclient.MouseCmd(sessionclient.MouseLeftDown, 550, 130), sessionclient.MouseCmd(sessionclient.MouseLeftUp, 550, 130)); err != nil {
			t.Fatal(err)
		}
		bp := nextEvent[xproto.ButtonPressEvent](t, events)
		if bp.Detail != 1 || bp.EventX != 50 || bp.EventY != 30 {
			t.Errorf("click arrived as %+v, want button 1 at 50,30 in the window", bp)
		}
		if err := d.Key(ctx, 'A'); err != nil {
			t.Fatal(err)
		}
		kp := nextEvent[xproto.KeyPressEvent](t, events)
		if ks := keysym(t, ec, kp.Detail); ks != 'a' {
			t.Errorf("KEY A arrived as keysym %#x", ks)
		}
		if err := d.Send(ctx, sessionclient.UnicodeCmd('z', true), sessionclient.UnicodeCmd('z', false)); err != nil {
			t.Fatal(err)
		}
		kp = nextEvent[xproto.KeyPressEvent](t, events)
		if ks := keysym(t, ec, kp.Detail); ks != 'z' {
			t.Errorf("KEY_UNICODE z arrived as keysym %#x", ks)
		}
	})
	d.Close()

	for _, webrtc := range []bool{false, true} {
		t.Run(fmt.Sprintf("screenshot webrtc=%v", webrtc), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "shot.png")
			args := []string{"screenshot", "--json", "-o", out}
			if webrtc {
				args = append(args, "--webrtc")
			}
			stdout, stderr, code := e.cli(args...)
			if code != 0 {
				t.Fatalf("screenshot: %d %s %s", code, stdout, stderr)
			}
			var r struct {
				Path          string
				Width, Height int
				Transport     string
			}
			json.Unmarshal([]byte(stdout), &r)
			if r.Width != 1280 || r.Height != 800 || (webrtc && r.Transport != "webrtc") {
				t.Fatalf("screenshot output %s", stdout)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			rgba := image.NewRGBA(img.Bounds())
			for y := 0; y < img.Bounds().Dy(); y++ {
				for x := 0; x < img.Bounds().Dx(); x++ {
					rgba.Set(x, y, img.At(x, y))
				}
			}
			px, py := pointer(t, xc)
			mean, bad, err := compareImages(rgba, framebuffer(t, xc), px, py)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot over %s: mean error %.2f, %.3f%% pixels off by >48", r.Transport, mean, 100*bad)
			if mean > 4 || bad > 0.005 {
				t.Fatalf("screenshot differs from the screen: mean %.2f, %.3f%% off", mean, 100*bad)
			}
		})
	}

	t.Run("screenshot bad display", func(t *testing.T) {
		_, stderr, code := e.cli("screenshot", "--display", "999", "-o", filepath.Join(t.TempDir(), "x.png"))
		if code != exitError || !strings.Contains(stderr, "no such display") {
			t.Fatalf("--display 999: %d %q", code, stderr)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// nextEvent returns the next X event of type E, skipping others.
func nextEvent[E any](t *testing.T, events <-chan xgb.Event) E {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("X connection closed")
			}
			if e, ok := ev.(E); ok {
				return e
			}
		case <-timeout:
			var zero E
			t.Fatalf("no %T event", zero)
			return zero
		}
	}
}

// keysym maps a keycode to its level-0 keysym in the current keymap.
func keysym(t *testing.T, c *xgb.Conn, k xproto.Keycode) uint32 {
	t.Helper()
	su := xproto.Setup(c)
	r, err := xproto.GetKeyboardMapping(c, su.MinKeycode, byte(int(su.MaxKeycode)-int(su.MinKeycode)+1)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(r.Keysyms[(int(k)-int(su.MinKeycode))*int(r.KeysymsPerKeycode)])
}

// shot is what `screenshot --json -o FILE` reported and wrote.
type shot struct {
	Width, Height int
	Display       int
	Displays      []int
	img           *image.RGBA
}

// screenshot runs the CLI's screenshot command against e's agent.
func screenshot(t *testing.T, e *liveEnv, args ...string) shot {
	t.Helper()
	out := filepath.Join(t.TempDir(), "shot.png")
	stdout, stderr, code := e.cli(append([]string{"screenshot", "--json", "-o", out}, args...)...)
	if code != 0 {
		t.Fatalf("screenshot %v: %d %s %s", args, code, stdout, stderr)
	}
	var s shot
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	s.img = image.NewRGBA(img.Bounds())
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			s.img.Set(x, y, img.At(x, y))
		}
	}
	return s
}

// TestScreenshotDisplays selects displays with screenshot --display on an
// X server with two RandR 1.5 monitors side by side: each monitor alone,
// then all of them (0xFFFF).
func TestScreenshotDisplays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Xvfb and a real agent")
	}
	x := startX(t, 1280, 480)
	xc := x.conn(t)
	if err := randr.Init(xc); err != nil {
		t.Skip("no RandR")
	}
	if r, err := randr.QueryVersion(xc, 1, 5).Reply(); err != nil || r.MinorVersion < 5 {
		t.Skip("RandR 1.5 monitors unsupported")
	}
	root := xproto.Setup(xc).DefaultScreen(xc).Root
	for i, name := range []string{"LEFT", "RIGHT"} {
		atom, err := xproto.InternAtom(xc, false, uint16(len(name)), name).Reply()
		if err != nil {
			t.Fatal(err)
		}
		m := randr.MonitorInfo{Name: atom.Atom, Primary: i == 1, X: int16(640 * i), Width: 640, Height: 480,
			WidthInMillimeters: 160, HeightInMillimeters: 120}
		if err := randr.SetMonitorChecked(xc, root, m).Check(); err != nil {
			t.Skipf("SetMonitor: %v", err)
		}
	}
	const left, right = 0x4080c0, 0xe0e0e0
	setBackground(t, xc, left)
	window(t, xc, 640, 0, 640, 480, right, 0)
	e := newLiveEnv(t, liveOptions{env: x.Env()})

	take := func(args ...string) shot { return screenshot(t, e, args...) }
	def := take()
	if len(def.Displays) != 3 || def.Displays[0] != 0xFFFF || def.Width != 640 || !near(def.img, 320, 240, right) {
		t.Fatalf("default screenshot: %dx%d display %d of %v", def.Width, def.Height, def.Display, def.Displays)
	}
	seen := map[uint32]bool{}
	for _, id := range def.Displays[1:] {
		s := take("--display", fmt.Sprint(id))
		if s.Display != id || s.Width != 640 || s.Height != 480 {
			t.Fatalf("--display %d: %dx%d display %d", id, s.Width, s.Height, s.Display)
		}
		for _, c := range []uint32{left, right} {
			if near(s.img, 10, 10, c) && near(s.img, 630, 470, c) {
				seen[c] = true
			}
		}
	}
	if !seen[left] || !seen[right] {
		t.Fatalf("the two monitors did not show the two halves: %v", seen)
	}
	all := take("--display", "65535")
	if all.Width != 1280 || !near(all.img, 100, 240, left) || !near(all.img, 1000, 240, right) {
		t.Fatalf("all displays: %dx%d", all.Width, all.Height)
	}
	t.Logf("displays %v: each monitor and all of them captured", def.Displays)
}

// openDesktop logs in as the admin and opens a desktop session to e's
// agent through server-lite's relay, as the CLI does; both end with t.
func openDesktop(t *testing.T, ctx context.Context, e *liveEnv) *sessionclient.Desktop {
	t.Helper()
	ctl, err := dial(ctx, &opts{url: e.url, user: "admin", pass: e.pass, timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.close)
	ch, err := sessionclient.Open(ctx, ctlCaller{ctl}, sessionclient.Relay{URL: e.url, NodeID: e.nodeID, Protocol: session.ProtoDesktop})
	if err != nil {
		t.Fatal(err)
	}
	d := sessionclient.NewDesktop(ch)
	t.Cleanup(func() { d.Close() })
	return d
}
