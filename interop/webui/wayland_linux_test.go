package webui

import (
	"testing"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/waylandtest"
)

// TestDesktopViewerWayland: MeshCentral's own desktop viewer, in headless
// Chromium, shows a headless sway (wlroots) desktop through our agent,
// which runs as root and finds the compositor from WAYLAND_DISPLAY: the
// canvas has the output's size and the colours a Wayland client painted.
func TestDesktopViewerWayland(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	sw := waylandtest.StartSway(t, knownScene.w, knownScene.h)
	win, err := waylandtest.OpenWindow(sw.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(win.Close)
	if w, h := win.Size(); w != knownScene.w || h != knownScene.h {
		t.Fatalf("test window %dx%d, want the whole %dx%d output", w, h, knownScene.w, knownScene.h)
	}
	if err := win.Paint(func(x, y int) uint32 {
		c := knownScene.colourAt(x, y)
		return uint32(c[0])<<16 | uint32(c[1])<<8 | uint32(c[2])
	}); err != nil {
		t.Fatal(err)
	}
	// sway draws its cursor into the output: park it in the corner, off
	// the sampled pixels.
	if out, err := sw.Msg("seat", "*", "cursor", "set", "1279", "799"); err != nil {
		t.Logf("swaymsg cursor set: %v %s", err, out)
	}
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-wayland")
	_, node := startOurAgent(t, srv, srv.MSH(t, mesh), "WAYLAND_DISPLAY="+sw.Socket, "DISPLAY=")
	desktopCheck(t, srv, node, "&webrtc=0", true, ourAgentShowsConnect)
}

// TestDesktopViewerGNOME: MeshCentral's own desktop viewer, in headless
// Chromium, shows a headless GNOME compositor (mutter with PipeWire and
// WirePlumber on its own session bus, as an unprivileged user) through our
// agent, which runs as root, is told nothing, and finds the session from
// mutter's process: the canvas has the monitor's size and the colours a
// Wayland client painted.
func TestDesktopViewerGNOME(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	m := waylandtest.StartMutter(t, knownScene.w, knownScene.h)
	win, err := waylandtest.OpenFullscreenWindow(m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(win.Close)
	if w, h := win.Size(); w != knownScene.w || h != knownScene.h {
		t.Fatalf("test window %dx%d, want the whole %dx%d monitor", w, h, knownScene.w, knownScene.h)
	}
	if err := win.Paint(func(x, y int) uint32 {
		c := knownScene.colourAt(x, y)
		return uint32(c[0])<<16 | uint32(c[1])<<8 | uint32(c[2])
	}); err != nil {
		t.Fatal(err)
	}
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-gnome")
	_, node := startOurAgent(t, srv, srv.MSH(t, mesh), "WAYLAND_DISPLAY=", "DISPLAY=", "XDG_RUNTIME_DIR=", "DBUS_SESSION_BUS_ADDRESS=")
	desktopCheck(t, srv, node, "&webrtc=0", true, ourAgentShowsConnect)
}
