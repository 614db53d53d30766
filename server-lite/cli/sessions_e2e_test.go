//go:build linux

package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// The session commands end to end: an in-process server-lite (app plus the
// admin API, wired as main.go does) on 127.0.0.1, a real agent process
// (our meshagent binary or MeshCentral's C agent) connected to it, and the
// CLI's own code path (run) for every operation.

func TestMain(m *testing.M) {
	code := m.Run()
	agentbin.Cleanup()
	os.Exit(code)
}

type liveEnv struct {
	t      testing.TB
	app    *servertest.Server
	url    string
	pass   string
	nodeID string
	dir    string // scratch space on the agent's machine (this one)
}

// liveOptions choose the agent.
type liveOptions struct {
	cAgent bool     // MeshCentral's C agent with its meshcore.js, else ours
	env    []string // extra environment for our agent (DISPLAY, XAUTHORITY)
}

func newLiveEnv(t testing.TB, lo liveOptions) *liveEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real agent")
	}
	var o servertest.Options
	if lo.cAgent {
		// The C agent's files and terminal live in MeshCentral's core; the
		// built-in tiny core has neither.
		o.CoreFile = filepath.Join(mctest.Install(t), "agents", "meshcore.js")
	}
	srv := servertest.Start(t, o)
	e := &liveEnv{t: t, app: srv, url: srv.URL, pass: srv.AdminPass, dir: t.TempDir()}
	if lo.cAgent {
		mctest.StartCAgent(t, srv.Msh())
	} else {
		srv.StartAgent(lo.env)
	}
	e.nodeID = srv.WaitCore(60 * time.Second).NodeID
	return e
}

func tail(s string, n int) string { return servertest.Tail(s, n) }

// cli runs a subcommand through the CLI's code path against this server
// and device.
func (e *liveEnv) cli(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{args[0], "--url", e.url, "--pass", e.pass, "--id", e.nodeID}, args[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code := run(ctx, full, &out, &errb)
	return out.String(), errb.String(), code
}

// randomFile writes size pseudo-random bytes and returns the path and
// their SHA-256.
func randomFile(t testing.TB, dir string, size int) (string, [32]byte) {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{42}).Read(data)
	p := filepath.Join(dir, "random.bin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256(data)
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

type transferJSON struct {
	Path       string  `json:"path"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MiBps      float64 `json:"mibPerSecond"`
	Transport  string  `json:"transport"`
	RelayBytes int64   `json:"relayBytes"`
}

// roundTrip uploads a 50 MiB random file into a fresh remote folder and
// downloads it back, checking SHA-256 both ways, over the relay or WebRTC.
func (e *liveEnv) roundTrip(t *testing.T, webrtc bool) {
	const size = 50 << 20
	local := t.TempDir()
	src, want := randomFile(t, local, size)
	remote := filepath.Join(e.dir, fmt.Sprintf("remote-%v", webrtc))
	if err := os.MkdirAll(remote, 0o755); err != nil {
		t.Fatal(err)
	}
	extra := []string{"--json"}
	if webrtc {
		extra = append(extra, "--webrtc")
	}
	out, errs, code := e.cli(append(append([]string{"upload"}, extra...), src, remote)...)
	if code != 0 {
		t.Fatalf("upload: %d %s %s", code, out, errs)
	}
	var up transferJSON
	if err := json.Unmarshal([]byte(out), &up); err != nil {
		t.Fatalf("upload output %q: %v", out, err)
	}
	if got := fileSum(t, filepath.Join(remote, "random.bin")); got != want {
		t.Fatal("uploaded file differs")
	}
	back := filepath.Join(local, "back.bin")
	out, errs, code = e.cli(append(append([]string{"download"}, extra...), filepath.Join(remote, "random.bin"), back)...)
	if code != 0 {
		t.Fatalf("download: %d %s %s", code, out, errs)
	}
	var down transferJSON
	if err := json.Unmarshal([]byte(out), &down); err != nil {
		t.Fatalf("download output %q: %v", out, err)
	}
	if got := fileSum(t, back); got != want || down.Bytes != size {
		t.Fatalf("downloaded file differs (%d bytes)", down.Bytes)
	}
	wantTransport := "relay"
	if webrtc {
		wantTransport = "webrtc"
	}
	for _, r := range []transferJSON{up, down} {
		if r.Transport != wantTransport {
			t.Errorf("%s went over %s, want %s", r.Path, r.Transport, wantTransport)
		}
		if webrtc && r.RelayBytes > 1<<20 {
			t.Errorf("%s: %d bytes crossed the relay despite WebRTC", r.Path, r.RelayBytes)
		}
	}
	t.Logf("upload 50 MiB over %s: %.2f s (%.1f MiB/s), %d bytes on the relay", up.Transport, up.Seconds, up.MiBps, up.RelayBytes)
	t.Logf("download 50 MiB over %s: %.2f s (%.1f MiB/s), %d bytes on the relay", down.Transport, down.Seconds, down.MiBps, down.RelayBytes)
	// No temporary files left beside the download.
	if ms, _ := filepath.Glob(filepath.Join(local, ".*part*")); len(ms) > 0 {
		t.Errorf("temporary files left: %v", ms)
	}
}

// missingDownload checks that a missing remote file fails at once, clearly,
// and leaves no local file.
func (e *liveEnv) missingDownload(t *testing.T) {
	local := filepath.Join(t.TempDir(), "nothing.bin")
	start := time.Now()
	out, errs, code := e.cli("download", filepath.Join(e.dir, "no-such-file.bin"), local)
	el := time.Since(start)
	if code != exitError || !strings.Contains(errs, "remote file cannot be opened") {
		t.Fatalf("download of a missing file: %d %q %q", code, out, errs)
	}
	if el > 10*time.Second {
		t.Errorf("download of a missing file took %v", el)
	}
	if _, err := os.Stat(local); err == nil {
		t.Error("a local file was created for a missing remote file")
	}
	if ms, _ := filepath.Glob(filepath.Join(filepath.Dir(local), ".*")); len(ms) > 0 {
		t.Errorf("temporary files left: %v", ms)
	}
	t.Logf("missing file refused in %v: %s", el.Round(time.Millisecond), strings.TrimSpace(errs))
}

// lsShows checks ls (plain and --json) lists name with its size.
func (e *liveEnv) lsShows(t *testing.T, dir, name string, size int64) {
	out, errs, code := e.cli("ls", dir)
	if code != 0 {
		t.Fatalf("ls: %d %q", code, errs)
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 4 && f[3] == name && f[0] == "file" && f[1] == fmt.Sprint(size) {
			found = true
		}
	}
	if !found {
		t.Fatalf("ls %s does not show %s (%d bytes):\n%s", dir, name, size, out)
	}
	out, _, code = e.cli("ls", "--json", dir)
	var es []map[string]any
	if err := json.Unmarshal([]byte(out), &es); code != 0 || err != nil {
		t.Fatalf("ls --json: %d %q %v", code, out, err)
	}
	found = false
	for _, x := range es {
		if x["name"] == name && x["type"] == "file" && x["size"] == float64(size) {
			found = true
		}
	}
	if !found {
		t.Fatalf("ls --json does not show %s: %s", name, out)
	}
	if _, errs, code := e.cli("ls", filepath.Join(e.dir, "no-such-dir")); code != exitError || !strings.Contains(errs, "cannot be read") {
		t.Errorf("ls of a missing folder: %d %q", code, errs)
	}
}

// TestSessionsOurAgent drives our agent binary through server-lite with the
// session commands: shell --run, 50 MiB upload and download over the relay
// and over WebRTC, a missing file, ls.
func TestSessionsOurAgent(t *testing.T) {
	e := newLiveEnv(t, liveOptions{})

	t.Run("shell", func(t *testing.T) {
		out, errs, code := e.cli("shell", "--run", "echo hello-$((6*7)); echo second line")
		if code != 0 || out != "hello-42\nsecond line\n" {
			t.Fatalf("shell --run: %d %q %q", code, out, errs)
		}
		out, errs, code = e.cli("shell", "--json", "--run", "printf 'no newline'; exit_code() { return 3; }; exit_code")
		var r struct {
			Output string
			Status int
		}
		if json.Unmarshal([]byte(out), &r); code != exitError || r.Output != "no newline" || r.Status != 3 || !strings.Contains(errs, "status 3") {
			t.Fatalf("shell --run with status 3: %d %q %q", code, out, errs)
		}
	})
	t.Run("shell piped", func(t *testing.T) {
		sessionStdin = strings.NewReader("echo piped-$((1+2))\n")
		defer func() { sessionStdin = os.Stdin }()
		start := time.Now()
		out, errs, code := e.cli("shell")
		if code != 0 || !strings.Contains(out, "piped-3") {
			t.Fatalf("shell with piped stdin: %d %q %q", code, out, errs)
		}
		if el := time.Since(start); el > 20*time.Second {
			t.Fatalf("the shell did not end with its input (%v)", el)
		}
	})
	t.Run("shell tty", e.ttyShell)
	t.Run("relay", func(t *testing.T) { e.roundTrip(t, false) })
	t.Run("webrtc", func(t *testing.T) { e.roundTrip(t, true) })
	t.Run("missing", e.missingDownload)
	t.Run("ls", func(t *testing.T) { e.lsShows(t, filepath.Join(e.dir, "remote-false"), "random.bin", 50<<20) })
	t.Run("download to stdout", func(t *testing.T) {
		remote := filepath.Join(e.dir, "remote-false", "random.bin")
		out, errs, code := e.cli("download", remote, "-")
		if code != 0 || sha256.Sum256([]byte(out)) != fileSum(t, remote) {
			t.Fatalf("download to stdout: %d, %d bytes, %q", code, len(out), errs)
		}
	})
	t.Run("offline", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"ls", "--url", e.url, "--pass", e.pass, "--id", strings.Repeat("A", 64), "/"}, &out, &errb)
		if code != exitError || !strings.Contains(errb.String(), "unable to route") {
			t.Fatalf("unknown device: %d %q", code, errb.String())
		}
	})
}

// TestSessionsCAgent does the same transfers with MeshCentral's C agent
// running MeshCentral's meshcore.js, pushed by server-lite.
func TestSessionsCAgent(t *testing.T) {
	e := newLiveEnv(t, liveOptions{cAgent: true})
	t.Run("shell", func(t *testing.T) {
		out, errs, code := e.cli("shell", "--run", "echo hello-$((6*7))")
		if code != 0 || out != "hello-42\n" {
			t.Fatalf("shell --run: %d %q %q", code, out, errs)
		}
	})
	t.Run("relay", func(t *testing.T) { e.roundTrip(t, false) })
	t.Run("missing", e.missingDownload)
	t.Run("ls", func(t *testing.T) { e.lsShows(t, filepath.Join(e.dir, "remote-false"), "random.bin", 50<<20) })
}

// BenchmarkSessionTransfer times whole CLI upload and download commands
// (login, relay session, transfer, commit) of a 32 MiB file with our agent,
// over the relay and over WebRTC on loopback.
//
//	go test ./server-lite/cli -run '^$' -bench SessionTransfer -benchtime 3x
func BenchmarkSessionTransfer(b *testing.B) {
	const size = 32 << 20
	e := newLiveEnv(b, liveOptions{})
	local := b.TempDir()
	src, _ := randomFile(b, local, size)
	remote := filepath.Join(e.dir, "bench")
	os.MkdirAll(remote, 0o755)
	// Downloads need the file even when only they run (-bench .../download).
	if data, err := os.ReadFile(src); err != nil || os.WriteFile(filepath.Join(remote, "random.bin"), data, 0o600) != nil {
		b.Fatal("cannot place the remote file")
	}
	for _, rtc := range []bool{false, true} {
		transport := "relay"
		var extra []string
		if rtc {
			transport, extra = "webrtc", []string{"--webrtc"}
		}
		b.Run("upload/"+transport, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				if out, errs, code := e.cli(append(append([]string{"upload"}, extra...), src, remote)...); code != 0 {
					b.Fatalf("upload: %s %s", out, errs)
				}
			}
		})
		b.Run("download/"+transport, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				if out, errs, code := e.cli(append(append([]string{"download"}, extra...), filepath.Join(remote, "random.bin"), filepath.Join(local, "back.bin"))...); code != 0 {
					b.Fatalf("download: %s %s", out, errs)
				}
			}
		})
	}
}
