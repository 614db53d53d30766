//go:build linux

package webui

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/winetest"
)

// winWindow is where internal/winetest/cmd/paintwin puts its window on
// wine's 1024x768 desktop, and its colour; the EDIT control takes the
// window's top 20..52 rows, so the probes stay below them.
var winWindow = rect{x: 200, y: 160, w: 560, h: 400, rgb: [3]uint8{0xe0, 0x3c, 0x28}}

const wineDesktopW, wineDesktopH = 1024, 768

// startWine runs exe (a host path inside p's C: drive) with args in p
// and returns its combined output; the process ends with the test.
func startWine(t *testing.T, p *winetest.Prefix, exe string, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	cmd := p.Command(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 3 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return &out
}

// startWindowsAgent runs our Windows agent in p (C:\meshgo) joined to
// mesh with msh's extra lines appended to its .msh, waits until
// MeshCentral lists it online with the desktop capability, and returns
// its output and node id (without "node//").
func startWindowsAgent(t *testing.T, p *winetest.Prefix, srv *mctest.Server, mesh, msh string) (*syncBuffer, string) {
	t.Helper()
	win, err := agentbin.BuildWindows()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(win)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(p.Dir, "drive_c", "meshgo")
	os.MkdirAll(dataDir, 0o755)
	exe := filepath.Join(dataDir, "meshagent.exe")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "meshagent.msh"), append(srv.MSH(t, mesh), msh...), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := startWine(t, p, exe, "run", "--msh", `C:\meshgo\meshagent.msh`, "--log-level", "debug")
	if !waitOutput(agent, "core started", 2*time.Minute) {
		t.Fatalf("the Windows agent did not authenticate and start its core:\n%s", agent.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	idCmd := p.Command(ctx, exe, "-nodeid", "--data", `C:\meshgo`)
	idCmd.WaitDelay = 2 * time.Second
	out, _ := idCmd.Output()
	id := strings.TrimSpace(string(out))
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("-nodeid: %q", out)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == "node//"+id && d.Online() && d.Agent.Caps&1 != 0 }, time.Minute)
	return agent, id
}

func waitOutput(b *syncBuffer, s string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if strings.Contains(b.String(), s) {
			return true
		}
	}
	return false
}

// TestDesktopViewerWindows: MeshCentral's desktop viewer, in headless
// Chromium, against our Windows agent running under wine: Connect
// reaches "Connected" (through the userSessions question the page asks
// a Windows device first), the canvas has wine's desktop size and shows
// the window a Windows test program painted in a known colour, and keys
// typed in the viewer reach that program's focused EDIT control (the
// program writes the control's text to a file this test reads).
func TestDesktopViewerWindows(t *testing.T) {
	RequireBrowserTools(t, "web UI", "node", "npm")
	p := winetest.TestPrefix(t)
	driveC := filepath.Join(p.Dir, "drive_c")

	paint := filepath.Join(driveC, "paintwin.exe")
	build := exec.Command("go", "build", "-o", paint, "github.com/meshgo/meshagent/internal/winetest/cmd/paintwin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=windows", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build paintwin: %v\n%s", err, out)
	}
	typed := filepath.Join(driveC, "paintwin.txt")
	pw := startWine(t, p, paint, "-x", strconv.Itoa(winWindow.x), "-y", strconv.Itoa(winWindow.y), "-w", strconv.Itoa(winWindow.w), "-h", strconv.Itoa(winWindow.h),
		"-color", "e03c28", "-out", `C:\paintwin.txt`)
	if !waitOutput(pw, "ready", 2*time.Minute) {
		t.Fatalf("paintwin did not open its window: %s", pw.String())
	}

	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-windows")
	agent, id := startWindowsAgent(t, p, srv, mesh, "")
	defer func() {
		if t.Failed() {
			t.Logf("windows agent log:\n%s", agent.String())
			t.Logf("paintwin:\n%s", pw.String())
		}
	}()

	// Probes inside the window, below the EDIT control.
	cx, cy := winWindow.x+winWindow.w/2, winWindow.y+winWindow.h/2+40
	probes := []probe{
		{X: cx, Y: cy, RGB: winWindow.rgb},
		{X: winWindow.x + 30, Y: winWindow.y + winWindow.h - 30, RGB: winWindow.rgb},
		{X: winWindow.x + winWindow.w - 30, Y: winWindow.y + 100, RGB: winWindow.rgb},
	}
	const text = "meshgo42"
	r := runUI(t, srv, id, uiConfig{
		URLArgs: "&webrtc=0",
		Desktop: &desktopCfg{ExpectW: wineDesktopW, ExpectH: wineDesktopH, Probes: probes, Tol: jpegTol, TypeText: text, TypedFile: typed,
			Click: &point{winWindow.x + winWindow.w/2, winWindow.y + 36}}, // the EDIT control
	})
	d := r.Desktop
	if d == nil {
		t.Fatal("the browser did not get to the desktop tab")
	}
	t.Logf("viewer status %q, canvas %dx%d, probes matched: %v", d.Status, d.Width, d.Height, d.ProbesMatched)
	t.Logf("viewer screenshot: %s; canvas dump: %s; after typing: %s", d.Screenshot, d.CanvasPNG, d.TypedShot)
	if !d.ConnectButtonShown {
		t.Error("the desktop tab hid its Connect button (agent.caps without the desktop bit)")
	}
	if !strings.HasPrefix(d.Status, "Connected") {
		t.Errorf("desktop status %q, want Connected", d.Status)
	}
	if d.Width != wineDesktopW || d.Height != wineDesktopH {
		t.Errorf("canvas is %dx%d, wine's desktop %dx%d", d.Width, d.Height, wineDesktopW, wineDesktopH)
	}
	if !d.ProbesMatched {
		t.Error("the canvas never showed paintwin's window colour at the probes")
	}
	if d.CanvasPNG != "" {
		img := readPNG(t, d.CanvasPNG)
		near := func(x, y int) bool {
			r, g, b, _ := img.At(x, y).RGBA()
			got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
			for i := range 3 {
				if dd := got[i] - int(winWindow.rgb[i]); dd > jpegTol || dd < -jpegTol {
					return false
				}
			}
			return true
		}
		in, out := 0, 0
		for y := winWindow.y + 70; y < winWindow.y+winWindow.h-10; y += 23 {
			for x := winWindow.x + 10; x < winWindow.x+winWindow.w-10; x += 29 {
				if !near(x, y) {
					out++
				}
				in++
			}
		}
		t.Logf("window area: %d sampled pixels, %d off its colour", in, out)
		if out != 0 {
			t.Errorf("%d of %d pixels of the window area are not its colour", out, in)
		}
		// Outside the window the desktop is wine's, not the window's colour
		// (a canvas of one colour would pass the probes alone).
		if near(40, wineDesktopH-40) && near(wineDesktopW-40, 40) {
			t.Error("the canvas has the window's colour outside the window too")
		}
	}
	got, _ := os.ReadFile(typed)
	if !bytes.Equal(got, []byte(text)) {
		t.Errorf("the EDIT control holds %q, want %q (typed in the viewer)", got, text)
	}
}
