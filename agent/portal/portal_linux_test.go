//go:build linux

package portal

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/meshgo/meshagent/agent/mutter"
	"github.com/meshgo/meshagent/internal/logindtest"
	"github.com/meshgo/meshagent/internal/waylandtest"
)

// TestPortalScreenCastSway drives the real xdg-desktop-portal 1.16 with
// its wlroots backend on headless sway, from root as the agent runs: the
// helper-dialled connection is served (a uid-switched one is refused),
// a ScreenCast session with persist_mode 2 starts and returns a restore
// token, the PipeWire remote fd reaches gst's pipewiresrc and frames of
// the output's size arrive, and a second session started with the token
// is granted again and returns a token. On this machine it stops at
// Start (xdg-desktop-portal-wlr 0.7 needs a dmabuf format, so a GPU) and
// skips saying so; TestPortalRestoreGNOME covers the rest.
func TestPortalScreenCastSway(t *testing.T) {
	ps := waylandtest.StartPortalSway(t, 640, 480)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The uid-switched connection mutter uses: the bus accepts it, the
	// portal refuses its requests (it cannot open the root peer's /proc).
	if c, err := mutter.Dial(ps.Bus, ps.UID); err == nil {
		v, err := Probe(ctx, c)
		if err != nil {
			t.Fatalf("probe over the uid-switched connection: %v", err)
		}
		if _, err := Start(ctx, c, v, Options{}); err == nil {
			t.Errorf("portal served a root process's connection; the helper would not be needed")
		} else {
			t.Logf("uid-switched connection refused, as expected: %v", err)
		}
		c.Close()
	}

	c, err := DialAs(ps.Bus, ps.UID, ps.GID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := Probe(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("portal versions: %+v", v)
	if v.RemoteDesktop != 0 {
		t.Logf("RemoteDesktop version %d offered (devices %#x)", v.RemoteDesktop, v.Devices)
	}
	pending := false
	s, err := Start(ctx, c, v, Options{Persist: true, CursorMode: CursorHidden, OnPending: func() { pending = true }})
	if !pending {
		t.Fatalf("CreateSession/SelectSources (persist_mode 2) not accepted: %v\n%s", err, ps.Logs())
	}
	if err != nil {
		// xdg-desktop-portal-wlr 0.7 starts a cast only when screencopy
		// offers both a shm and a dmabuf format; sway's pixman renderer
		// on a machine without a GPU offers no dmabuf.
		if b, _ := os.ReadFile(filepath.Join(ps.Dir, "xdpw.log")); strings.Contains(string(b), "unable to receive a valid format from wlr_screencopy") {
			t.Skipf("the portal accepted CreateSession and SelectSources with persist_mode 2 from the helper-dialled root agent; "+
				"Start failed in xdg-desktop-portal-wlr, which needs a dmabuf screencopy format (no GPU here): %v", err)
		}
		t.Fatalf("%v\n%s", err, ps.Logs())
	}
	if len(s.Streams) != 1 || s.Streams[0].Node == 0 {
		t.Fatalf("streams %+v", s.Streams)
	}
	t.Logf("stream %+v, restore token %q", s.Streams[0], s.RestoreToken)
	if err := s.PointerButton(0x110, true); err == nil {
		t.Error("input on a view-only session did not fail")
	}
	fd, err := s.OpenPipeWireRemote()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + ps.Runtime, "PATH=/usr/bin:/bin", "HOME=/nonexistent",
		"GST_REGISTRY=" + filepath.Join(ps.Runtime, "gst-registry.bin")}
	fr, err := mutter.StartFramesRemote(s.Streams[0].Node, fd, &syscall.Credential{Uid: uint32(ps.UID), Gid: uint32(ps.GID)}, env)
	fd.Close()
	if err != nil {
		t.Fatal(err)
	}
	w, h, err := fr.Size()
	if err != nil {
		t.Fatalf("%v\n%s", err, ps.Logs())
	}
	if w != 640 || h != 480 {
		t.Errorf("stream %dx%d, want 640x480", w, h)
	}
	buf := make([]byte, w*h*4)
	if err := fr.Read(buf); err != nil {
		t.Fatal(err)
	}
	fr.Close()
	<-fr.Done()
	s.Close()

	if v.CanPersistView() {
		if s.RestoreToken == "" {
			t.Fatal("persist_mode 2 on ScreenCast version >= 4 returned no restore_token")
		}
		s2, err := Start(ctx, c, v, Options{Persist: true, RestoreToken: s.RestoreToken})
		if err != nil {
			t.Fatalf("second session with the restore token: %v", err)
		}
		if s2.RestoreToken == "" {
			t.Error("second session returned no restore token")
		}
		t.Logf("second session: %+v, token %q", s2.Streams, s2.RestoreToken)
		s2.Close()
	}
}

// TestTokens: stored per uid and kind, owner-only, and removed by an
// empty token; a corrupt file is replaced, not fatal.
func TestTokens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tk := Tokens{Dir: dir}
	if got, err := tk.Load(1000, "remote-desktop"); err != nil || got != "" {
		t.Fatalf("empty store: %q, %v", got, err)
	}
	if err := tk.Save(1000, "remote-desktop", "tok-a"); err != nil {
		t.Fatal(err)
	}
	if err := tk.Save(1000, "screencast", "tok-b"); err != nil {
		t.Fatal(err)
	}
	if err := tk.Save(1001, "remote-desktop", "tok-c"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		uid        int
		kind, want string
	}{{1000, "remote-desktop", "tok-a"}, {1000, "screencast", "tok-b"}, {1001, "remote-desktop", "tok-c"}, {1001, "screencast", ""}} {
		if got, err := tk.Load(tc.uid, tc.kind); err != nil || got != tc.want {
			t.Errorf("Load(%d, %s) = %q, %v; want %q", tc.uid, tc.kind, got, err, tc.want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "portal-1000.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", di.Mode().Perm())
	}
	if err := tk.Save(1000, "remote-desktop", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := tk.Load(1000, "remote-desktop"); got != "" {
		t.Errorf("removed token still loads: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "portal-1000.json"), []byte("{not json"), 0o600)
	if _, err := tk.Load(1000, "screencast"); err == nil {
		t.Error("corrupt file loaded without error")
	}
	if err := tk.Save(1000, "screencast", "tok-d"); err != nil {
		t.Fatal(err)
	}
	if got, _ := tk.Load(1000, "screencast"); got != "tok-d" {
		t.Errorf("after replacing a corrupt file: %q", got)
	}
}

// TestParseResponse: a Response body is (u a{sv}); anything else is an
// error, not a panic.
func TestParseResponse(t *testing.T) {
	if _, _, err := parseResponse([]any{uint32(0)}); err == nil {
		t.Error("short body accepted")
	}
	if _, _, err := parseResponse([]any{"0", map[string]any{}}); err == nil {
		t.Error("string code accepted")
	}
	if c, _, err := parseResponse([]any{uint32(1), map[string]dbus.Variant{}}); err != nil || c != 1 {
		t.Errorf("good body: %d, %v", c, err)
	}
}

// TestPortalRestoreGNOME: the restore-token path against the real
// xdg-desktop-portal 1.16 and its GNOME backend on headless mutter, from
// root through the helper. A ScreenCast session asked with persist_mode 2
// shows the Screen Share dialog ("Remember this selection" ticked); the
// person at the screen picks the monitor and shares; Start returns a
// restore token, and the stream's frames arrive through the
// OpenPipeWireRemote fd. A second session with that token starts with
// nobody clicking anything (a dialog would leave Start waiting until the
// deadline) and hands back a token for the next.
func TestPortalRestoreGNOME(t *testing.T) {
	m := waylandtest.StartMutterPortal(t, 800, 600)
	op := m.Operator(t)
	c, err := DialAs(m.Bus, m.UID, m.GID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	v, err := Probe(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !v.CanPersistView() {
		t.Fatalf("ScreenCast version %d cannot persist", v.ScreenCast)
	}
	type started struct {
		s   *Session
		err error
	}
	got := make(chan started, 1)
	go func() {
		s, err := Start(ctx, c, v, Options{Persist: true, CursorMode: CursorHidden})
		got <- started{s, err}
	}()
	// The Screen Share dialog: "Remember this selection" ticked (a blue
	// check box), the monitor row to pick, then Share turns blue.
	const checkX, checkY, rowX, rowY, shareBG, shareX, shareY = 306, 266, 400, 326, 577, 612, 173
	if err := op.WaitPixel(checkX, checkY, 60*time.Second, waylandtest.Blue); err != nil {
		shot := filepath.Join(os.TempDir(), "portal-restore-dialog.png")
		op.SavePNG(shot)
		t.Fatalf("no Screen Share dialog with Remember ticked (screen in %s): %v\n%s", shot, err, m.PortalLogs())
	}
	for i := 0; ; i++ {
		if err := op.Click(rowX, rowY); err != nil {
			t.Fatal(err)
		}
		if op.WaitPixel(shareBG, shareY, 5*time.Second, waylandtest.Blue) == nil {
			break
		}
		if i == 4 {
			t.Fatal("picking the monitor did not enable Share")
		}
	}
	if err := op.Click(shareX, shareY); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, m.PortalLogs())
	}
	s := r.s
	if s.RestoreToken == "" {
		t.Fatal("no restore_token after a persistent grant")
	}
	if len(s.Streams) != 1 || s.Streams[0].W != 800 || s.Streams[0].H != 600 {
		t.Fatalf("streams %+v, want one 800x600", s.Streams)
	}
	fd, err := s.OpenPipeWireRemote()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + m.Runtime, "PATH=/usr/bin:/bin", "HOME=/nonexistent",
		"GST_REGISTRY=" + filepath.Join(m.Runtime, "gst-registry.bin")}
	fr, err := mutter.StartFramesRemote(s.Streams[0].Node, fd, &syscall.Credential{Uid: uint32(m.UID), Gid: uint32(m.GID)}, env)
	fd.Close()
	if err != nil {
		t.Fatal(err)
	}
	if w, h, err := fr.Size(); err != nil || w != 800 || h != 600 {
		t.Fatalf("frames through the portal's PipeWire fd: %dx%d, %v", w, h, err)
	}
	buf := make([]byte, 800*600*4)
	if err := fr.Read(buf); err != nil {
		t.Fatal(err)
	}
	fr.Close()
	<-fr.Done()
	s.Close()

	tok := s.RestoreToken
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	t0 := time.Now()
	s2, err := Start(ctx2, c, v, Options{Persist: true, RestoreToken: tok})
	if err != nil {
		shot := filepath.Join(os.TempDir(), "portal-restore-second.png")
		op.SavePNG(shot)
		t.Fatalf("second session with the restore token (screen in %s): %v\n%s", shot, err, m.PortalLogs())
	}
	t.Logf("second session granted without a dialog in %s: %+v", time.Since(t0).Round(time.Millisecond), s2.Streams)
	// 1.16 hands the same token back for a persistent grant; a newer
	// portal may hand a new one. Either way one must come back.
	if s2.RestoreToken == "" {
		t.Errorf("second session returned no token (first %q): the grant would not outlive it", tok)
	}
	s2.Close()
}

// TestDialAsLeavesOtherFilesAlone: connections made with DialAs and
// closed again leave every file opened afterwards open through garbage
// collection. DialAs once closed the passed bus socket with a raw close
// while an *os.File still owned the number, so a later GC's finalizer
// closed whatever file had that number by then: in the package run the
// Operator's frame pipe of the next test, whose gst then died (the
// reason TestPortalRestoreGNOME failed only after TestPortalScreenCastSway).
func TestDialAsLeavesOtherFilesAlone(t *testing.T) {
	bus := logindtest.Start(t)
	for i := 0; i < 3; i++ {
		c, err := DialAs(bus.Address, os.Geteuid(), os.Getegid())
		if err != nil {
			t.Fatal(err)
		}
		var id string
		if err := c.BusObject().Call("org.freedesktop.DBus.GetId", 0).Store(&id); err != nil || id == "" {
			t.Fatalf("call over the helper-dialled connection: %q, %v", id, err)
		}
		c.Close()
	}
	// New files take the lowest free numbers: those just freed among them.
	type opened struct {
		f        *os.File
		dev, ino uint64
	}
	var files []opened
	for i := 0; i < 16; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*os.File{r, w} {
			defer f.Close()
			var st syscall.Stat_t
			if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			files = append(files, opened{f, st.Dev, st.Ino})
		}
	}
	// A finalizer runs some time after the GC that finds its object
	// unreachable; give several GCs the chance.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		runtime.GC()
		for _, o := range files {
			var st syscall.Stat_t
			if err := syscall.Fstat(int(o.f.Fd()), &st); err != nil || st.Dev != o.dev || st.Ino != o.ino {
				t.Fatalf("fd %d (a pipe opened after DialAs's connections closed) was closed behind its File: %v", o.f.Fd(), err)
			}
		}
	}
}
