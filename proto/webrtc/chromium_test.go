//go:build linux

package webrtc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/proto/session"
)

// browserPage plays the MeshCentral viewer's side of the switch-over with a
// real browser's RTCPeerConnection: it sends frames on the WebSocket, makes
// a non-trickle offer with a "DataChannel" channel, moves its output to the
// channel the moment it opens (the browser's timing, §5.4), sends
// webrtc0/webrtc1 once the channel is open and the agent said webrtc0, and
// answers the agent's webrtc1 with webrtc2. The agent echoes every binary
// frame; the page checks that the echoes come back complete and in order
// across both transports and reports on the WebSocket.
const browserPage = `<!doctype html><meta charset="utf-8"><title>rtc</title><script>
const N = 3000, ctrl = '"ctrlChannel":"102938"';
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.binaryType = "arraybuffer";
let pc, dc, open = false, agentReady = false, switched = false, next = 0, expect = 0, viaDC = 0, done = false;
function frame(i) { const b = new Uint8Array(256); new DataView(b.buffer).setUint32(0, i); return b.buffer; }
function report(msg) { if (!done) { done = true; ws.send(JSON.stringify({ctrlChannel: "102938", type: "result", msg: msg})); } }
function trySwitch() {
  if (open && agentReady && !switched) {
    switched = true;
    ws.send("{" + ctrl + ',"type":"webrtc0"}');
    ws.send("{" + ctrl + ',"type":"webrtc1"}');
  }
}
function pump() {
  while (next < N && dc.bufferedAmount < 1 << 20) dc.send(frame(next++));
  if (next < N) setTimeout(pump, 1);
}
function onData(buf, fromDC) {
  const i = new DataView(buf).getUint32(0);
  if (i !== expect) { report("echo " + i + " arrived when " + expect + " was expected"); return; }
  expect++;
  if (fromDC) viaDC++;
  if (expect === N) report("ok " + viaDC);
}
ws.onopen = () => {
  for (; next < 200; ) ws.send(frame(next++));
  pc = new RTCPeerConnection({iceServers: []});
  dc = pc.createDataChannel("DataChannel", {});
  dc.binaryType = "arraybuffer";
  dc.onopen = () => { open = true; trySwitch(); pump(); };
  dc.onmessage = (e) => { if (typeof e.data !== "string") onData(e.data, true); };
  dc.onclose = () => report("data channel closed");
  pc.oniceconnectionstatechange = () => { if (pc.iceConnectionState === "failed") report("ICE failed"); };
  pc.onicecandidate = (e) => { if (!e.candidate) ws.send(JSON.stringify(pc.localDescription)); };
  pc.createOffer().then((o) => pc.setLocalDescription(o)).catch((e) => report("offer: " + e));
  setTimeout(() => report("timeout at " + expect + " open=" + open + " agentReady=" + agentReady), 90000);
};
ws.onmessage = (e) => {
  if (typeof e.data !== "string") { onData(e.data, false); return; }
  let m; try { m = JSON.parse(e.data); } catch (x) { return; }
  if (m.ctrlChannel != "102938") return;
  if (m.type === "answer") pc.setRemoteDescription(m).catch((x) => report("answer: " + x));
  else if (m.type === "webrtc0") { agentReady = true; trySwitch(); }
  else if (m.type === "webrtc1") ws.send("{" + ctrl + ',"type":"webrtc2"}');
};
</script>`

// findChromium returns a Chromium binary, or "" when none is installed.
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chromiumFlags run headless Chromium for a loopback-only WebRTC test.
// Findings with Chromium 156: its offer carries only the default-route
// host addresses (192.0.2.2 and fd00::2 here), as mDNS ".local" names unless
// WebRtcHideLocalIpsWithMdns is disabled, and no 127.0.0.1 candidate even
// with --allow-loopback-in-peer-connection. It connects anyway: the agent's
// answer offers 127.0.0.1, Chromium's wildcard-bound sockets send their
// checks there, and the agent learns a peer-reflexive 127.0.0.1 candidate
// (sessions.md §5.3); the agent drops the other candidates (LoopbackOnly).
// Neither WebRTC flag is needed for that; disabling the mDNS feature keeps
// Chromium from multicasting mDNS announcements, the loopback flag is kept
// for Chromium builds whose socket binding differs, and the rest keep it
// from talking to anything else.
var chromiumFlags = []string{
	"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--allow-loopback-in-peer-connection",
	"--disable-features=WebRtcHideLocalIpsWithMdns",
	"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--disable-extensions", "--metrics-recording-only",
}

// TestChromiumSwitchOver runs the agent side against headless Chromium:
// Chromium's offer must be answered, its data channel accepted, and an echo
// stream must survive the switch complete and in order both ways. Skipped
// when no Chromium is installed (CI installs the chromium package).
func TestChromiumSwitchOver(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no chromium installed")
	}
	result := make(chan string, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(browserPage))
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ch := Upgradable(session.WebSocket(ws), testConfig())
		defer ch.Close()
		echoAgent(context.Background(), ch, func(text []byte) {
			var m struct{ Type, Msg string }
			if json.Unmarshal(text, &m) == nil && m.Type == "result" {
				select {
				case result <- m.Msg:
				default:
				}
			}
		})
	}))
	defer srv.Close()

	runChromium(t, bin, srv.URL+"/")
	msg := await(t, result, 120*time.Second, "a result from Chromium") // past the page's own 90 s
	if !strings.HasPrefix(msg, "ok ") {
		t.Fatalf("browser: %s", msg)
	}
	var n int
	for _, c := range strings.TrimPrefix(msg, "ok ") {
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		t.Fatalf("no echo came back on the data channel: %s", msg)
	}
	t.Logf("Chromium: all echoes in order, %d of them on the data channel", n)
}

// runChromium starts headless Chromium on url with a fresh profile until
// the test or benchmark ends, extra flags before the URL, and returns its
// process group (a benchmark reads the group's CPU).
func runChromium(tb testing.TB, bin, url string, extra ...string) int {
	tb.Helper()
	cmd := chromiumCommand(bin, tb.TempDir(), url, extra...)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	tb.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group we created
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// await returns the next value from c, failing tb when none comes within d.
func await[T any](tb testing.TB, c <-chan T, d time.Duration, what string) T {
	tb.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(d):
		tb.Fatalf("no %s within %v", what, d)
	}
	panic("unreachable")
}

// redirServer serves page and MeshCentral's agent-redir-ws.js (script) and,
// on /meshrelay.ashx, plays the relay's and the agent's negotiation ("c",
// then the viewer's protocol number 5, sessions.md §1.6-1.7) before handing
// the relay WebSocket to agent, which is the agent side until it returns.
// With useTLS the server speaks TLS like MeshCentral's relay.
func redirServer(tb testing.TB, script, page string, useTLS bool, agent func(ctx context.Context, relay session.Channel)) *httptest.Server {
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/agent-redir-ws.js":
			http.ServeFile(w, r, script)
			return
		case "/meshrelay.ashx":
		default:
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(page))
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		relay := session.WebSocket(ws)
		ctx := context.Background()
		if relay.Write(ctx, session.Frame{Data: []byte("c")}) != nil {
			return
		}
		for {
			f, err := relay.Read(ctx)
			if err != nil {
				return
			}
			if !f.Binary && string(f.Data) == "5" {
				break
			}
		}
		agent(ctx, relay)
	})
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// echoAgent is the agent side of the echo tests: every binary frame on ch
// goes back, every text frame goes to text, until ch ends.
func echoAgent(ctx context.Context, ch session.Channel, text func([]byte)) {
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return
		}
		if !f.Binary {
			text(f.Data)
		} else if ch.Write(ctx, f) != nil {
			return
		}
	}
}

// chromiumCommand is headless Chromium on url with a fresh profile in
// userDir, in a process group of its own so that its helpers end with it;
// extra flags go before the URL.
func chromiumCommand(bin, userDir, url string, extra ...string) *exec.Cmd {
	flags := chromiumFlags
	if drop := os.Getenv("CHROMIUM_DROP_FLAG"); drop != "" { // to show which flags matter
		flags = slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return f == drop })
	}
	args := append(slices.Clone(flags), extra...)
	cmd := exec.Command(bin, append(args, "--user-data-dir="+userDir, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// redirScript is MeshCentral's own viewer transport, agent-redir-ws.js,
// served to the browser at test time from a MeshCentral install (it is not
// part of this repository).
func redirScript() string {
	if p := os.Getenv("MESHCENTRAL_REDIR_JS"); p != "" {
		return p
	}
	// The harness's own install (.ci/run pre-installs it); never installed
	// from here, so a machine without it skips rather than runs npm.
	dir, err := mctest.CacheDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(dir, "node_modules", "meshcentral", "public", "scripts", "agent-redir-ws-0.1.1.js")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// redirPage drives agent-redir-ws.js as MeshCentral's files/desktop pages
// do, with WebRTC enabled: a module receives binary data and sends frames
// through the redirect object, which picks the transport itself.
const redirPage = `<!doctype html><meta charset="utf-8"><title>redir</title>
<script>var urlargs = {};</script><script src="/agent-redir-ws.js"></script><script>
const N = 3000;
let next = 0, expect = 0, done = false, redir;
function report(msg) {
  if (done) return;
  done = true;
  redir.sendCtrlMsg(JSON.stringify({ctrlChannel: "102938", type: "result", msg: msg, webrtc: redir.webRtcActive}));
}
function frame(i) { const b = new Uint8Array(200); new DataView(b.buffer).setUint32(0, i); return b; }
function pump() {
  for (let k = 0; k < 20 && next < N; k++) redir.send(frame(next++));
  if (next < N) setTimeout(pump, 2);
}
const mod = {
  protocol: 5,
  xxStateChange: function (s) { if (s === 3) pump(); },
  ProcessData: function (d) {},
  ProcessBinaryData: function (b) {
    const i = new DataView(b.buffer, b.byteOffset).getUint32(0);
    if (i !== expect) { report("echo " + i + " arrived when " + expect + " was expected"); return; }
    if (++expect === N) report("ok");
  },
};
redir = CreateAgentRedirect(null, mod, null, null, null, "/");
redir.attemptWebRTC = true;
redir.webrtcconfig = {iceServers: []};
redir.Start("node//test");
setTimeout(() => report("timeout at " + expect), 90000);
</script>`

// TestMeshCentralRedirInChromium runs MeshCentral's browser transport
// (agent-redir-ws.js with attemptWebRTC) in headless Chromium against the
// agent side: the viewer must switch to the data channel by itself and get
// every echo back in order. Skipped without Chromium or MeshCentral's
// script.
func TestMeshCentralRedirInChromium(t *testing.T) {
	bin, script := findChromium(), redirScript()
	if bin == "" || script == "" {
		t.Skip("needs chromium and MeshCentral's agent-redir-ws.js")
	}
	result := make(chan struct {
		Msg    string
		WebRTC bool
	}, 1)
	var agentSwitched atomic.Bool
	srv := redirServer(t, script, redirPage, false, func(ctx context.Context, relay session.Channel) {
		cfg := testConfig()
		cfg.OnSwitched = func() { agentSwitched.Store(true) }
		ch := Upgradable(relay, cfg)
		defer ch.Close()
		echoAgent(ctx, ch, func(text []byte) {
			var m struct {
				Type, Msg string
				WebRTC    bool
			}
			if json.Unmarshal(text, &m) == nil && m.Type == "result" {
				result <- struct {
					Msg    string
					WebRTC bool
				}{m.Msg, m.WebRTC}
			}
		})
	})
	runChromium(t, bin, srv.URL+"/")
	r := await(t, result, 120*time.Second, "result from agent-redir-ws") // past the page's own 90 s
	if r.Msg != "ok" || !r.WebRTC || !agentSwitched.Load() {
		t.Fatalf("agent-redir-ws: %q, webRtcActive=%v, agent output switched=%v", r.Msg, r.WebRTC, agentSwitched.Load())
	}
	t.Log("agent-redir-ws switched to WebRTC; all echoes in order")
}
