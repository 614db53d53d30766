package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

type testEnv struct {
	t      *testing.T
	app    *servertest.Server
	url    string
	pass   string
	nodeID string
}

// newEnv starts an in-process server-lite with the admin API and one
// simulated agent that answers runcommands like the C agent's core.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{Quiet: true})
	e := &testEnv{t: t, app: srv, url: srv.URL, pass: srv.AdminPass}
	sim := srv.ConnectSim(servertest.NewIdentity(t), "sim1")
	conn := sim.Conn
	e.nodeID = sim.NodeID
	go func() {
		for {
			_, msg, err := conn.WS.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if !handshake.IsJSON(msg) || json.Unmarshal(msg, &m) != nil {
				continue
			}
			if m["action"] == "runcommands" && m["reply"] == true {
				b, _ := json.Marshal(map[string]any{"action": "msg", "type": "runcommands", "result": "out: " + m["cmds"].(string) + "\n",
					"sessionid": m["sessionid"], "responseid": m["responseid"]})
				conn.WS.WriteMessage(websocket.TextMessage, b)
			}
		}
	}()
	return e
}

// cli runs a subcommand and returns stdout, stderr and the status.
func (e *testEnv) cli(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{args[0], "--url", e.url, "--pass", e.pass}, args[1:]...)
	code := run(context.Background(), full, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCLI(t *testing.T) {
	e := newEnv(t)

	out, errs, code := e.cli("devices")
	if code != 0 || !strings.HasPrefix(out, e.nodeID+"\tsim1\tDefault\tonline") {
		t.Fatalf("devices: %d %q %q", code, out, errs)
	}
	out, _, _ = e.cli("devices", "--json")
	var devs []map[string]any
	if err := json.Unmarshal([]byte(out), &devs); err != nil || len(devs) != 1 || devs[0]["groupname"] != "Default" {
		t.Fatalf("devices --json: %q %v", out, err)
	}
	out, _, _ = e.cli("groups")
	if !strings.Contains(out, e.app.DefaultGroup.ID+"\tDefault") {
		t.Fatalf("groups: %q", out)
	}

	out, errs, code = e.cli("run", "--id", e.nodeID, "--reply", "echo", "hi")
	if code != 0 || out != "out: echo hi\n" {
		t.Fatalf("run --reply: %d %q %q", code, out, errs)
	}
	out, _, code = e.cli("run", "--all", "uptime")
	if code != 0 || out != e.nodeID+"\tsim1\tOK\n" {
		t.Fatalf("run --all: %d %q", code, out)
	}
	if _, _, code = e.cli("run", "uptime"); code != exitUsage {
		t.Fatalf("run without target: %d", code)
	}

	script := filepath.Join(t.TempDir(), "core.js")
	os.WriteFile(script, []byte("// test core\n"), 0o600)
	out, errs, code = e.cli("push-script", "--id", strings.TrimPrefix(e.nodeID, "node//"), script)
	if code != 0 || out != e.nodeID+"\tsim1\tok\n" {
		t.Fatalf("push-script: %d %q %q", code, out, errs)
	}
	out, _, _ = e.cli("cores")
	f := strings.Split(strings.TrimSpace(out), "\t")
	if len(f) != 6 || f[0] != e.nodeID || f[2] != "online" || len(f[5]) != 96 {
		t.Fatalf("cores: %q", out)
	}

	mshFile := filepath.Join(t.TempDir(), "x.msh")
	if _, errs, code = e.cli("msh", "--group", "Default", "-o", mshFile); code != 0 {
		t.Fatalf("msh: %q", errs)
	}
	b, _ := os.ReadFile(mshFile)
	want, _ := os.ReadFile(e.app.MshPath)
	if !bytes.Equal(b, want) {
		t.Fatalf("msh differs:\n%s\nwant\n%s", b, want)
	}

	out, _, _ = e.cli("events")
	if !strings.Contains(out, "runcommands\tuser//admin\t"+e.nodeID+"\t127.0.0.1\t") {
		t.Fatalf("events: %q", out)
	}
	out, _, _ = e.cli("events", "--json", "--limit", "1")
	if n := strings.Count(out, "\n"); n != 1 {
		t.Fatalf("events --json --limit 1: %q", out)
	}

	if _, errs, code = e.cli("devices", "--pass", "wrong"); code != exitError || !strings.Contains(errs, "login refused") {
		t.Fatalf("bad password: %d %q", code, errs)
	}
	if _, _, code = e.cli("nonsense"); code != exitUsage {
		t.Fatalf("unknown command: %d", code)
	}
}

func TestCLIFollow(t *testing.T) {
	e := newEnv(t)
	var out lockedBuf
	var errb lockedBuf
	done := make(chan int)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		code := run(ctx, []string{"events", "--url", e.url, "--pass", e.pass, "--follow", "--limit", "1"}, pw, &errb)
		pw.Close()
		done <- code
	}()
	// Drain output in the background and wait for a live event to appear.
	lines := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				out.Write(buf[:n])
				lines <- string(buf[:n])
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // the follower is connected by then
	if _, _, code := e.cli("run", "--id", e.nodeID, "marker-command"); code != 0 {
		t.Fatal("run failed")
	}
	deadline := time.After(10 * time.Second)
	for !strings.Contains(out.String(), "marker-command") {
		select {
		case _, ok := <-lines:
			if !ok {
				t.Fatalf("follower ended: %q %q", out.String(), errb.String())
			}
		case <-deadline:
			t.Fatalf("no live event: %q %q", out.String(), errb.String())
		}
	}
	cancel() // as an interrupt would
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("follower exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follower did not end")
	}
}

// lockedBuf is a bytes.Buffer safe to write from one goroutine while
// another reads it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
