package desktop

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

func mouseCmd(button byte, x, y uint16) []byte {
	b := kvm.Encode(kvm.Mouse, 0, x, y)
	b[4], b[5] = 0, button
	return b
}

func keyCmd(action, vk byte) []byte { return []byte{0, kvm.Key, 0, 6, action, vk} }

func unicodeCmd(action byte, ch uint16) []byte {
	return []byte{0, kvm.KeyUnicode, 0, 7, action, byte(ch >> 8), byte(ch)}
}

func TestServeCapturesScreen(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	c := x.conn(t)
	setRoot(t, c, 0x2040c0)
	ctx := context.Background()
	s := serve(t, ctx, x, fullRights)
	v := s.v
	v.until(ctx, "screen size", func() bool { return v.canvas != nil })
	if v.w != 1280 || v.h != 800 {
		t.Fatalf("SCREEN %dx%d, want 1280x800", v.w, v.h)
	}
	v.until(ctx, "full frame", func() bool {
		return v.near(0, 0, 0x2040c0) && v.near(1279, 799, 0x2040c0) && v.near(640, 400, 0x2040c0)
	})
	if len(v.display) == 0 || v.display[0] != 0 {
		t.Errorf("display list %v, want count 0 for one monitor", v.display)
	}
	// Only the changed part must be sent: a 64x64 window is at most 9 tiles
	// of 32 pixels, whatever its alignment.
	tiles := v.tiles
	fillRect(t, c, 100, 200, 64, 64, 0xff0000)
	v.until(ctx, "changed rectangle", func() bool { return v.near(130, 230, 0xff0000) && v.near(108, 208, 0xff0000) })
	if v.near(180, 230, 0xff0000) || !v.near(180, 230, 0x2040c0) {
		t.Error("pixels right of the window are wrong")
	}
	time.Sleep(300 * time.Millisecond) // let any straggling tiles arrive
	if n := v.tiles - tiles; n > 9 {
		t.Errorf("a 64x64 change sent %d tiles", n)
	}
	// Refresh resends everything.
	tiles = v.tiles
	v.send(ctx, kvm.Encode(kvm.Refresh))
	v.until(ctx, "refresh", func() bool { return v.tiles > tiles+0 && v.near(1279, 799, 0x2040c0) })
}

func TestServeScalingAndQuality(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	c := x.conn(t)
	setRoot(t, c, 0x00ff00)
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "first frame", func() bool { return v.near(10, 10, 0x00ff00) })
	// quality 20, scale 50 %, 30 ms frames
	v.send(ctx, kvm.Encode(kvm.Compression, 0x0114, 512, 30))
	v.until(ctx, "scaled screen", func() bool { return v.w == 640 && v.h == 400 && v.near(639, 399, 0x00ff00) })
	fillRect(t, c, 400, 400, 200, 200, 0x0000ff)
	v.until(ctx, "scaled window", func() bool { return v.near(250, 250, 0x0000ff) && !v.near(190, 190, 0x0000ff) })
	// Mouse coordinates are in the scaled space.
	v.send(ctx, mouseCmd(0, 300, 100))
	waitPointer(t, c, 600, 200)
}

func waitPointer(t *testing.T, c *xgb.Conn, x, y int) {
	t.Helper()
	conn := c
	scr := xproto.Setup(conn).DefaultScreen(conn)
	var gx, gy int16
	for i := 0; i < 100; i++ {
		r, err := xproto.QueryPointer(conn, scr.Root).Reply()
		if err != nil {
			t.Fatal(err)
		}
		gx, gy = r.RootX, r.RootY
		if int(gx) == x && int(gy) == y {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pointer at %d,%d, want %d,%d", gx, gy, x, y)
}

func TestServeInput(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	c := x.conn(t)
	win := fillRect(t, c, 0, 0, 400, 300, 0xffffff)
	xproto.SetInputFocusChecked(c, xproto.InputFocusPointerRoot, win, 0).Check()
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "first frame", func() bool { return v.near(10, 10, 0xffffff) })

	v.send(ctx, mouseCmd(0, 123, 45))
	waitPointer(t, c, 123, 45)

	v.send(ctx, mouseCmd(0x02, 50, 60), mouseCmd(0x04, 50, 60)) // two commands, one message
	ev := waitEvent(t, c, func(e interface{}) bool { _, ok := e.(xproto.ButtonPressEvent); return ok })
	if bp := ev.(xproto.ButtonPressEvent); bp.Detail != 1 || bp.EventX != 50 || bp.EventY != 60 {
		t.Errorf("button press %+v", bp)
	}
	// wheel down: len-12 mouse command with a negative delta
	wh := kvm.Encode(kvm.Mouse, 0, 50, 60, uint16(0x10000-120))
	v.send(ctx, wh)
	ev = waitEvent(t, c, func(e interface{}) bool { b, ok := e.(xproto.ButtonPressEvent); return ok && b.Detail >= 4 })
	if ev.(xproto.ButtonPressEvent).Detail != 5 {
		t.Errorf("wheel down gave button %d", ev.(xproto.ButtonPressEvent).Detail)
	}

	km := keymap(t, c)
	v.send(ctx, keyCmd(0, 'A'), keyCmd(1, 'A'))
	ev = waitEvent(t, c, func(e interface{}) bool { _, ok := e.(xproto.KeyPressEvent); return ok })
	if got := km(ev.(xproto.KeyPressEvent).Detail); got != 'a' {
		t.Errorf("KEY A typed keysym %#x", got)
	}
	// A character the US keymap lacks: a spare keycode is remapped.
	v.send(ctx, unicodeCmd(0, 0x20ac), unicodeCmd(1, 0x20ac))
	ev = waitEvent(t, c, func(e interface{}) bool { _, ok := e.(xproto.KeyPressEvent); return ok })
	km = keymap(t, c)
	if got := km(ev.(xproto.KeyPressEvent).Detail); got != 0x010020ac {
		t.Errorf("unicode euro typed keysym %#x", got)
	}
	// A plain ASCII character through KEY_UNICODE.
	v.send(ctx, unicodeCmd(0, 'q'), unicodeCmd(1, 'q'))
	ev = waitEvent(t, c, func(e interface{}) bool { _, ok := e.(xproto.KeyPressEvent); return ok })
	if got := km(ev.(xproto.KeyPressEvent).Detail); got != 'q' {
		t.Errorf("unicode q typed keysym %#x", got)
	}
}

func TestServeViewOnlyInjectsNothing(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	c := x.conn(t)
	setRoot(t, c, 0x808080)
	ctx := context.Background()
	for _, info := range []session.Info{
		{Protocol: 2, Rights: session.RightRemoteViewOnly},
		{Protocol: 2, Rights: session.RightRemoteControl, ViewOnly: true},
	} {
		s := serve(t, ctx, x, info)
		v := s.v
		v.until(ctx, "first frame", func() bool { return v.near(5, 5, 0x808080) })
		scr := xproto.Setup(c).DefaultScreen(c)
		before, _ := xproto.QueryPointer(c, scr.Root).Reply()
		v.send(ctx, mouseCmd(0, 700, 500), mouseCmd(0x02, 700, 500), mouseCmd(0x04, 700, 500))
		// Refresh still works for a view-only viewer, and proves the input
		// before it was processed.
		tiles := v.tiles
		v.send(ctx, kvm.Encode(kvm.Refresh))
		v.until(ctx, "refresh", func() bool { return v.tiles > tiles })
		after, _ := xproto.QueryPointer(c, scr.Root).Reply()
		if after.RootX != before.RootX || after.RootY != before.RootY {
			t.Errorf("rights %#x viewonly %v: pointer moved to %d,%d", info.Rights, info.ViewOnly, after.RootX, after.RootY)
		}
	}
}

func TestServeDeniedWithoutRights(t *testing.T) {
	a, b := session.Pipe(4)
	defer b.Close()
	err := Serve(context.Background(), a, session.Info{Protocol: 2, Rights: session.RightRemoteControl | session.RightNoDesktop}, Options{})
	if err != ErrDenied {
		t.Fatalf("Serve = %v, want ErrDenied", err)
	}
}

func TestDiscoverFindsXvfbByAuthArg(t *testing.T) {
	x := startXvfb(t, 640, 480)
	t.Setenv("DISPLAY", "")
	t.Setenv("XAUTHORITY", "")
	found := false
	for _, tg := range discoverX(Options{}) {
		if tg.display == x.Name && tg.authority == x.AuthFile && tg.source == "xserver" {
			found = true
		}
	}
	if !found {
		t.Fatalf("discovery did not list %s with -auth %s: %+v", x.Name, x.AuthFile, discoverX(Options{}))
	}
	// And the cookie from that file is accepted.
	c, err := connectX(xTarget{display: x.Name, authority: x.AuthFile})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Without the cookie the server refuses us.
	if c, err := connectX(xTarget{display: x.Name}); err == nil {
		c.Close()
		t.Error("connected without a cookie")
	}
}

func TestServeFindsDisplayThatAppearsLater(t *testing.T) {
	// No X server yet: Serve reports it, keeps looking, and streams once
	// the display comes up.
	empty := t.TempDir()
	old := procRoot
	procRoot = empty // no X servers or sessions to find but ours
	defer func() { procRoot = old }()
	t.Setenv("DISPLAY", "")
	n := freeDisplay(t, 300+int(time.Now().UnixNano()%50))
	auth := filepath.Join(t.TempDir(), "xauth")
	ctx := context.Background()
	a, b := session.Pipe(64)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Serve(sctx, a, fullRights, Options{Display: fmt.Sprintf(":%d", n), XAuthority: auth}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	v := newViewer(t, b)
	v.until(ctx, "no-display notice", func() bool { return len(v.errors) > 0 })
	x := startXvfbOn(t, n, auth, 800, 600)
	if x == nil {
		t.Skip("display number taken meanwhile")
	}
	setRoot(t, x.conn(t), 0xc08000)
	v.until(ctx, "frame from the late display", func() bool { return v.w == 800 && v.near(400, 300, 0xc08000) })
}

func TestServeCursorShape(t *testing.T) {
	x := startXvfb(t, 640, 480)
	c := x.conn(t)
	win := fillRect(t, c, 0, 0, 320, 240, 0xffffff)
	// A named cursor, as toolkits create them through libXcursor.
	if err := initExt(c, "XFIXES", xfixes.Init); err != nil {
		t.Skip("no XFIXES")
	}
	xfixes.QueryVersion(c, 5, 0).Reply()
	font, _ := c.NewId()
	xproto.OpenFont(c, xproto.Font(font), uint16(len("cursor")), "cursor")
	cid, _ := c.NewId()
	cur := xproto.Cursor(cid)
	const xcXterm = 152
	xproto.CreateGlyphCursor(c, cur, xproto.Font(font), xproto.Font(font), xcXterm, xcXterm+1, 0, 0, 0, 0xffff, 0xffff, 0xffff)
	xfixes.SetCursorName(c, cur, uint16(len("xterm")), "xterm")
	if err := xproto.ChangeWindowAttributesChecked(c, win, xproto.CwCursor, []uint32{uint32(cur)}).Check(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "first frame", func() bool { return v.near(10, 10, 0xffffff) })
	v.send(ctx, mouseCmd(0, 500, 400))
	v.until(ctx, "arrow cursor", func() bool { return v.cursor == 0 })
	v.send(ctx, mouseCmd(0, 100, 100))
	v.until(ctx, "text cursor", func() bool { return v.cursor == 5 })
}

func TestServeMultipleMonitors(t *testing.T) {
	x := startXvfb(t, 1280, 480)
	c := x.conn(t)
	if err := initExt(c, "RANDR", randr.Init); err != nil {
		t.Skip("no RandR")
	}
	if r, err := randr.QueryVersion(c, 1, 5).Reply(); err != nil || r.MinorVersion < 5 {
		t.Skip("RandR 1.5 monitors unsupported")
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	for i, name := range []string{"LEFT", "RIGHT"} {
		atom, err := xproto.InternAtom(c, false, uint16(len(name)), name).Reply()
		if err != nil {
			t.Fatal(err)
		}
		m := randr.MonitorInfo{Name: atom.Atom, Primary: i == 1, X: int16(640 * i), Width: 640, Height: 480,
			WidthInMillimeters: 160, HeightInMillimeters: 120}
		if err := randr.SetMonitorChecked(c, root, m).Check(); err != nil {
			t.Skipf("SetMonitor: %v", err)
		}
	}
	const left, right = 0x4080c0, 0xe0e0e0
	setRoot(t, c, left)
	fillRect(t, c, 640, 0, 640, 480, right)
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "display list", func() bool { return len(v.display) > 0 })
	if len(v.display) != 5 || v.display[0] != 3 || v.display[1] != kvm.AllDisplays {
		t.Fatalf("display list %v, want [3 ffff id id selected]", v.display)
	}
	v.until(ctx, "primary (right) monitor first", func() bool { return v.w == 640 && v.near(320, 240, right) })
	// Select each listed monitor, then all of them.
	ids := v.display[2:4]
	rightID := uint16(0)
	for _, id := range ids {
		v.send(ctx, kvm.Encode(kvm.SetDisplay, id))
		screens := v.screens
		v.until(ctx, fmt.Sprintf("monitor %d", id), func() bool {
			return v.screens > screens && v.w == 640 && (v.near(320, 240, left) || v.near(320, 240, right))
		})
		if v.near(320, 240, right) {
			rightID = id
		}
	}
	if rightID == 0 {
		t.Fatal("no monitor showed the right half")
	}
	v.send(ctx, kvm.Encode(kvm.SetDisplay, kvm.AllDisplays))
	v.until(ctx, "all monitors", func() bool { return v.w == 1280 && v.near(100, 240, left) && v.near(1000, 240, right) })
	// Input lands in the selected display's coordinates.
	v.send(ctx, kvm.Encode(kvm.SetDisplay, rightID))
	v.until(ctx, "right monitor again", func() bool { return v.w == 640 && v.near(320, 240, right) })
	v.send(ctx, mouseCmd(0, 10, 20))
	waitPointer(t, c, 650, 20)
}

func waitEvent(t *testing.T, c *xgb.Conn, match func(interface{}) bool) xgb.Event {
	t.Helper()
	got := make(chan xgb.Event, 1)
	go func() {
		for {
			ev, err := c.WaitForEvent()
			if ev == nil && err == nil {
				close(got)
				return
			}
			if ev != nil && match(ev) {
				got <- ev
				return
			}
		}
	}()
	select {
	case ev, ok := <-got:
		if !ok {
			t.Fatal("connection closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no matching X event")
	}
	return nil
}

// keymap returns a keycode→level-0 keysym lookup of the current map.
func keymap(t *testing.T, c *xgb.Conn) func(xproto.Keycode) uint32 {
	t.Helper()
	su := xproto.Setup(c)
	r, err := xproto.GetKeyboardMapping(c, su.MinKeycode, byte(int(su.MaxKeycode)-int(su.MinKeycode)+1)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return func(k xproto.Keycode) uint32 {
		return uint32(r.Keysyms[(int(k)-int(su.MinKeycode))*int(r.KeysymsPerKeycode)])
	}
}

func TestClipboardRoundTrip(t *testing.T) {
	x := startXvfb(t, 320, 240)
	opts := Options{Display: x.Name, XAuthority: x.AuthFile}
	ctx := context.Background()
	if s, err := ReadClipboard(ctx, opts); err != nil || s != "" {
		t.Fatalf("empty clipboard: %q %v", s, err)
	}
	want := "héllo, clipboard €"
	if err := WriteClipboard(ctx, opts, want); err != nil {
		t.Fatal(err)
	}
	if s, err := ReadClipboard(ctx, opts); err != nil || s != want {
		t.Fatalf("read back %q %v", s, err)
	}
	if err := WriteClipboard(ctx, opts, "second"); err != nil {
		t.Fatal(err)
	}
	if s, err := ReadClipboard(ctx, opts); err != nil || s != "second" {
		t.Fatalf("read back %q %v", s, err)
	}
}

func TestServeControlMessages(t *testing.T) {
	old := procRoot
	procRoot = t.TempDir() // nothing to discover: the session waits for a display
	defer func() { procRoot = old }()
	t.Setenv("DISPLAY", "")
	a, b := session.Pipe(16)
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), a, session.Info{Protocol: 2, Rights: session.RightRemoteControl},
			Options{Display: ":398", XAuthority: "/nonexistent", Logger: slog.New(slog.DiscardHandler)})
	}()
	ctx := context.Background()
	read := func(binary bool) []byte {
		t.Helper()
		for {
			f, err := b.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Binary == binary {
				return f.Data
			}
		}
	}
	if m := read(true); binary.BigEndian.Uint16(m) != kvm.Error {
		t.Fatalf("first message %x, want ERROR", m)
	}
	b.Write(ctx, session.Frame{Data: []byte(`{"ctrlChannel":102938,"type":"rtt","time":1700000000123}`)})
	if m := string(read(false)); m != `{"ctrlChannel":"102938","type":"rtt","time":1700000000123}` {
		t.Fatalf("rtt reply %s", m)
	}
	b.Write(ctx, session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"ping"}`)})
	if m := string(read(false)); m != `{"ctrlChannel":"102938","type":"pong"}` {
		t.Fatalf("ping reply %s", m)
	}
	b.Write(ctx, session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"close"}`)})
	if err := <-done; err != nil {
		t.Fatalf("Serve after close: %v", err)
	}
}

func TestServeSurvivesXServerRestart(t *testing.T) {
	old := procRoot
	procRoot = t.TempDir() // only the configured display
	defer func() { procRoot = old }()
	t.Setenv("DISPLAY", "")
	x := startXvfb(t, 640, 480)
	setRoot(t, x.conn(t), 0x00c000)
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "first frame", func() bool { return v.near(320, 240, 0x00c000) })
	x.Stop()
	v.until(ctx, "lost-display notice", func() bool { return len(v.errors) > 0 })
	n, _ := strconv.Atoi(x.Name[1:])
	x2 := startXvfbOn(t, n, x.AuthFile, 800, 600)
	if x2 == nil {
		t.Skip("display number taken meanwhile")
	}
	setRoot(t, x2.conn(t), 0xc000c0)
	v.until(ctx, "frame after restart", func() bool { return v.w == 800 && v.near(400, 300, 0xc000c0) })
}

// switchable is a pipe end whose transport "moves" when the test says, as
// proto/webrtc's upgradable channel reports through session.Switcher.
type switchable struct {
	session.Channel
	moved chan struct{}
}

func (s switchable) Switched() <-chan struct{} { return s.moved }

// After a WebRTC switch-over the desktop sends SCREEN and a whole frame on
// the new path by itself (sessions.md §5.2), with no REFRESH from the
// viewer.
func TestServeRefreshesAfterSwitch(t *testing.T) {
	x := startXvfb(t, 320, 200)
	setRoot(t, x.conn(t), 0x2040c0)
	ctx, cancel := context.WithCancel(context.Background())
	a, b := session.Pipe(64)
	sw := switchable{Channel: a, moved: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sw, fullRights, Options{Display: x.Name, XAuthority: x.AuthFile}) }()
	defer func() {
		cancel()
		b.Close()
		<-done
	}()
	v := newViewer(t, b)
	v.until(ctx, "first full frame", func() bool { return v.screens == 1 && v.near(319, 199, 0x2040c0) })
	time.Sleep(300 * time.Millisecond) // the screen is static: nothing more comes
	screens, tiles := v.screens, v.tiles
	close(sw.moved)
	v.until(ctx, "SCREEN and a full frame after the switch", func() bool {
		return v.screens > screens && v.tiles > tiles && v.near(319, 199, 0x2040c0) && v.near(0, 0, 0x2040c0)
	})
}
