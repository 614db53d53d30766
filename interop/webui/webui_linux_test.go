//go:build linux

package webui

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// knownScene is the Xvfb screen every desktop test shows: a blue
// background, a large red and a green rectangle, and a yellow one in the
// top-left corner (so a shifted or flipped canvas fails).
var knownScene = scene{
	w: 1280, h: 800,
	bg: [3]uint8{0x33, 0x66, 0xcc},
	rects: []rect{
		{x: 200, y: 150, w: 400, h: 300, rgb: [3]uint8{0xe0, 0x3c, 0x28}},
		{x: 1100, y: 650, w: 150, h: 120, rgb: [3]uint8{0x28, 0xb4, 0x3c}},
		{x: 0, y: 0, w: 64, h: 48, rgb: [3]uint8{0xf0, 0xdc, 0x32}},
	},
}

// jpegTol is how far a pixel of a flat area may be from its colour after
// the viewer's JPEG (quality 40 by default) and the canvas.
const jpegTol = 24

func sceneProbes(s scene) []probe {
	ps := []probe{{X: 900, Y: 200, RGB: s.bg}, {X: 640, Y: 700, RGB: s.bg}}
	for _, r := range s.rects {
		ps = append(ps, probe{X: r.x + r.w/2, Y: r.y + r.h/2, RGB: r.rgb})
	}
	return ps
}

// ourAgentShowsConnect says whether the desktop tab shows its Connect
// button for our agent. MeshCentral shows it only when the device's
// agent.caps has bit 1 (desktop), set from the core's coreinfo message
// (cmd/meshagent coreCaps). When false, the test only logs a hidden
// button and unhides it to go on.
const ourAgentShowsConnect = true

// ourAgentOpensDeviceFile says whether our agent serves the files tab's
// Download button and file links. Those go through devicefile.ashx: the
// server asks the agent for a tunnel to "*/devicefile.ashx?id=…&rauth=…"
// (meshdevicefile.js), which agent/core resolveRelayURL refuses because
// the path does not end in meshrelay.ashx. Set it to true with the fix.
const ourAgentOpensDeviceFile = true

// ourAgentDownloadsOneBlockAhead says whether our agent, like the C
// agent, sends a files-protocol download one block per startack/ack. The
// page hands messages of 16000 bytes or more to an asynchronous
// FileReader and smaller ones straight on (agent-redir-ws-0.1.1.js
// xxOnMessage), and saves the file when the block with the end flag is
// processed. With several full blocks in flight the short last block
// overtakes those still being read, and they are lost (the editor and
// in-tunnel downloads of files over 16 KB; relay or WebRTC alike). The
// C agent's meshcore.js sets sendNextBlock = 8 on startack but sends one
// block per command (an if, not a loop), so it never has more than one
// in flight; agent/files sends defaultWindow = 8. Set this to true with
// the fix.
const ourAgentDownloadsOneBlockAhead = true

// desktopCheck opens the device's desktop tab in the real viewer, connects
// and compares the #Desk canvas with the known screen. requireConnect
// fails the test when the tab hides its Connect button.
func desktopCheck(t *testing.T, srv *mctest.Server, node, urlArgs string, webrtc, requireConnect bool, wantWebP ...bool) uiResult {
	t.Helper()
	r := runUI(t, srv, node, uiConfig{
		URLArgs: urlArgs,
		Desktop: &desktopCfg{ExpectW: knownScene.w, ExpectH: knownScene.h, Probes: sceneProbes(knownScene), Tol: jpegTol, WebRTC: webrtc,
			WantWebP: len(wantWebP) > 0 && wantWebP[0]},
	})
	d := r.Desktop
	if d == nil {
		t.Fatal("the browser did not get to the desktop tab")
	}
	if !d.ConnectButtonShown {
		caps := -1
		if d.AgentCaps != nil {
			caps = *d.AgentCaps
		}
		msg := fmt.Sprintf("the desktop tab hid its Connect button: the device's agent.caps is %d, without the desktop bit 1", caps)
		if requireConnect {
			t.Error(msg)
		} else {
			t.Logf("KNOWN BUG (reported): %s; unhid the button to go on", msg)
		}
	}
	t.Logf("viewer status %q, canvas %dx%d, probes matched in the page: %v, tiles drawn by format: %v", d.Status, d.Width, d.Height, d.ProbesMatched, d.TileKinds)
	t.Logf("viewer screenshot: %s", d.Screenshot)
	t.Logf("canvas dump: %s", d.CanvasPNG)
	if !strings.HasPrefix(d.Status, "Connected") {
		t.Errorf("desktop status %q, want Connected", d.Status)
	}
	if d.Width != knownScene.w || d.Height != knownScene.h {
		t.Errorf("canvas is %dx%d, the Xvfb screen %dx%d", d.Width, d.Height, knownScene.w, knownScene.h)
	}
	if d.CanvasPNG != "" {
		checkCanvas(t, readPNG(t, d.CanvasPNG), knownScene, jpegTol)
	}
	return r
}

// TestDesktopViewer: MeshCentral's own desktop viewer, in headless
// Chromium, shows our agent's Xvfb screen (found through the X server's
// -auth argument, as with a display manager) over the relay: the canvas
// has the screen's size and its colours.
func TestDesktopViewer(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	x := startXvfb(t, knownScene.w, knownScene.h)
	x.paint(t, knownScene)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-desktop")
	_, node := startOurAgent(t, srv, srv.MSH(t, mesh), x.Env()...)
	r := desktopCheck(t, srv, node, "&webrtc=0", false, ourAgentShowsConnect, true)
	// The page asks for WebP (agentencoding 4) and the scene is flat, so
	// our agent (a cgo build, libwebp7 installed from .ci/packages.txt)
	// sends lossless WebP tiles, which the checks above saw drawn right.
	if k := r.Desktop.TileKinds; k["webp"] == 0 || k["other"] != 0 {
		t.Errorf("tiles drawn by format %v: want WebP tiles from our agent and nothing unknown", k)
	}
}

// TestDesktopViewerCAgent is the same check with the real C agent, for
// comparison. The C agent only looks for X servers started with -auth
// during its first minutes, so Xvfb starts first.
func TestDesktopViewerCAgent(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	if os.Getenv("MESHGO_WEBUI_CAGENT") != "1" {
		// The C agent cannot be told which X server to use: with another
		// one running (go test ./... runs the agent/desktop and interop
		// Xvfb tests at the same time) its KVM child exits ("KVM Child
		// process has unexpectedly exited") and the canvas stays 300x150;
		// shown by starting a second Xvfb beside this test's.
		t.Skip("comparison only, off by default (the C agent's desktop breaks when other tests' X servers run beside it); MESHGO_WEBUI_CAGENT=1 runs it")
	}
	if os.Geteuid() != 0 {
		t.Skip("the C agent finds the X server's cookie only as root")
	}
	x := startXvfb(t, knownScene.w, knownScene.h)
	x.paint(t, knownScene)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-desktop-c")
	a := mctest.StartCAgent(t, srv.MSH(t, mesh))
	node := strings.TrimPrefix(a.NodeID(t, 60*time.Second), "node//")
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == node && d.Online() }, 60*time.Second)
	desktopCheck(t, srv, node, "&webrtc=0", false, true)
}

// TestWebRTC: with settings.webRTC on, the files and desktop tabs switch
// their session from the relay to a WebRTC data channel to our agent (ICE
// on 127.0.0.1 only: WebRTCLoopbackOnly=1 in its .msh, and Chromium's
// loopback flags). The files tab then lists a folder, opens a text file
// in its editor and downloads a binary file through the data channel with
// the right checksum; the desktop tab shows the known screen.
func TestWebRTC(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	x := startXvfb(t, knownScene.w, knownScene.h)
	x.paint(t, knownScene)
	srv := mctest.Start(t, mctest.Options{WebRTC: true})
	mesh := srv.AddDeviceGroup(t, "webui-webrtc")
	msh := append(bytes.TrimRight(srv.MSH(t, mesh), "\r\n"), []byte("\r\nWebRTCLoopbackOnly=1\r\n")...)
	agent, node := startOurAgent(t, srv, msh, x.Env()...)

	// switchedLog checks our agent's debug log for one more complete
	// switch-over: offer, answer, data channel, then the move after the
	// webrtc0/webrtc1/webrtc2 exchange ("switched to the data channel" is
	// logged when the browser's webrtc2 arrives).
	steps := []string{"offer received", "answered offer", "data channel open", "switched to the data channel"}
	counts := func() []int {
		var n []int
		for _, s := range steps {
			n = append(n, len(agent.lines(s)))
		}
		return n
	}
	switchedLog := func(t *testing.T, before []int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			now, ok := counts(), true
			for i := range steps {
				ok = ok && now[i] > before[i]
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				for i, s := range steps {
					if now[i] <= before[i] {
						t.Errorf("our agent's log has no new %q line", s)
					}
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, s := range steps {
			l := agent.lines(s)
			t.Logf("agent: %s", l[len(l)-1])
		}
	}

	t.Run("Files", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "webui files")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		text := "meshgo: files tab over WebRTC\nsecond line, ünïcödé\n"
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// The editor shows the raw bytes, one character each, until its
		// encoding button switches to UTF-8.
		var raw strings.Builder
		for _, b := range []byte(text) {
			raw.WriteRune(rune(b))
		}
		// small.bin fits one 16 KB block; payload.bin takes 65 blocks.
		payloads := map[string][]byte{"small.bin": make([]byte, 15000), "payload.bin": make([]byte, 1<<20+12345)}
		for name, b := range payloads {
			rand.Read(b)
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		before := counts()
		r := runUI(t, srv, node, uiConfig{Files: &filesCfg{
			Dir:  dir,
			Text: namedFile{Name: "notes.txt", Content: raw.String()},
			Binary: []namedFile{
				{Name: "small.bin", Size: len(payloads["small.bin"])},
				{Name: "payload.bin", Size: len(payloads["payload.bin"])},
			},
			WebRTC: true,
		}})
		f := r.Files
		if f == nil {
			t.Fatal("the browser did not get to the files tab")
		}
		t.Logf("files tab status %q, screenshot %s", f.Status, f.Screenshot)
		if !f.Switched || !strings.Contains(f.Status, "WebRTC") {
			t.Errorf("the files session did not switch to WebRTC (switched=%v, status %q)", f.Switched, f.Status)
		}
		switchedLog(t, before)
		if !f.Listed {
			t.Error("the test folder was not listed")
		}
		if !f.EditorMatched {
			t.Errorf("the editor shows %q, want %q", f.EditorValue, raw.String())
		}
		if len(f.Tunnel) != len(payloads) {
			t.Fatalf("%d in-tunnel downloads, want %d", len(f.Tunnel), len(payloads))
		}
		for _, d := range f.Tunnel {
			want := payloads[d.Name]
			sum := sha256.Sum256(want)
			// What crossed the data channel, reassembled from its messages.
			if d.DCDataLen != len(want) || d.DCDataSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: the data channel carried %d bytes in %d messages, SHA-256 %s; want %d bytes, %x",
					d.Name, d.DCDataLen, d.DCBlocks, d.DCDataSHA256, len(want), sum)
			} else {
				t.Logf("%s: %d bytes in %d data-channel messages, SHA-256 matches", d.Name, d.DCDataLen, d.DCBlocks)
			}
			if !d.StillWebRTC {
				t.Errorf("%s: the files session left WebRTC during the download", d.Name)
			}
			// What the page saved (saveAs → browser download).
			got, err := os.ReadFile(d.Path)
			if d.Error != "" || err != nil {
				t.Errorf("%s: browser download: %s %v", d.Name, d.Error, err)
				continue
			}
			if bytes.Equal(got, want) {
				t.Logf("%s: browser download through the tab's tunnel: %d bytes, SHA-256 matches (%s)", d.Name, len(got), d.Path)
				continue
			}
			if missing, ok := wholeBlocksMissing(want, got, 16380); ok && !ourAgentDownloadsOneBlockAhead {
				t.Logf("KNOWN BUG (reported): %s: the page saved the file without data blocks %v, which the data channel delivered (SHA-256 above): our agent sends 8 blocks ahead", d.Name, missing)
				continue
			}
			t.Errorf("%s: browser download has %d bytes, want %d (SHA-256 %x)", d.Name, len(got), len(want), sum)
		}
		want := payloads[f.Link.Name]
		got, err := os.ReadFile(f.Link.Path)
		switch {
		case f.Link.Error == "" && err == nil && bytes.Equal(got, want):
			t.Logf("download through the file list's link (devicefile.ashx): %d bytes, SHA-256 matches", len(got))
			if !ourAgentOpensDeviceFile {
				t.Log("devicefile.ashx downloads work now: set ourAgentOpensDeviceFile to true")
			}
		case !ourAgentOpensDeviceFile && len(agent.lines("devicefile.ashx")) > 0:
			t.Logf("KNOWN BUG (reported): the file list's link (devicefile.ashx) gave %d bytes (%s): our agent refused the server's tunnel request: %s",
				len(got), f.Link.Error, agent.lines("devicefile.ashx")[0])
		default:
			t.Errorf("download through the file list's link (%s): got %d bytes (%s %v), want %d; our agent: %q",
				f.Link.Href, len(got), f.Link.Error, err, len(want), agent.lines("files transfer"))
		}
	})

	t.Run("Desktop", func(t *testing.T) {
		before := counts()
		r := desktopCheck(t, srv, node, "", true, ourAgentShowsConnect)
		if d := r.Desktop; d != nil && (!d.WebRTCActive || !strings.Contains(d.Status, "WebRTC")) {
			t.Errorf("the desktop session did not switch to WebRTC (status %q)", d.Status)
		}
		switchedLog(t, before)
	})
}

// wholeBlocksMissing reports whether got is want with some of its
// block-sized pieces left out (in order), and which.
func wholeBlocksMissing(want, got []byte, block int) ([]int, bool) {
	var missing []int
	p := 0
	for i := 0; i*block < len(want); i++ {
		b := want[i*block : min(len(want), (i+1)*block)]
		if bytes.HasPrefix(got[p:], b) {
			p += len(b)
		} else {
			missing = append(missing, i)
		}
	}
	return missing, p == len(got) && len(missing) > 0
}
