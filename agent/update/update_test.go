package update

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/agentupdate"
	"github.com/meshgo/meshagent/proto/handshake"
)

var (
	keyOnce sync.Once
	keys    [2]*rsa.PrivateKey
	certs   [2][]byte
)

func testKeys(t *testing.T) {
	keyOnce.Do(func() {
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent-server"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
			if err != nil {
				panic(err)
			}
			keys[i], certs[i] = k, der
		}
	})
}

// fakeServer plays server-lite's side of one connection: it answers block
// requests from binary, optionally corrupting or cutting.
type fakeServer struct {
	t       *testing.T
	u       *Updater
	binary  []byte
	reqs    chan agentupdate.Request
	mu      sync.Mutex
	json    []agentupdate.Message
	corrupt int64 // offset to flip, -1 none
	cutAt   int   // close after this many blocks, 0 never
	sent    int
	closed  bool
	done    chan struct{}
}

func newFake(t *testing.T, u *Updater, binary []byte) *fakeServer {
	f := &fakeServer{t: t, u: u, binary: binary, reqs: make(chan agentupdate.Request, 64), corrupt: -1, done: make(chan struct{})}
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

func (f *fakeServer) serve() {
	for {
		select {
		case <-f.done:
			return
		case r := <-f.reqs:
			end := min(uint64(len(f.binary)), r.Offset+agentupdate.BlockSize)
			data := bytes.Clone(f.binary[r.Offset:end])
			if f.corrupt >= int64(r.Offset) && f.corrupt < int64(end) {
				data[f.corrupt-int64(r.Offset)] ^= 0xff
			}
			f.mu.Lock()
			f.sent++
			cut := f.cutAt > 0 && f.sent > f.cutAt
			f.mu.Unlock()
			if cut {
				f.close()
				f.u.Disconnected(f)
				return
			}
			f.u.HandleBlock(f, agentupdate.EncodeBlock(r.Offset, data))
		}
	}
}

func (f *fakeServer) SendJSON(v any) error {
	b, _ := json.Marshal(v)
	m, err := agentupdate.ParseMessage(b)
	if err != nil {
		f.t.Errorf("agent sent an unparsable update message: %v", err)
	}
	f.mu.Lock()
	f.json = append(f.json, m)
	f.mu.Unlock()
	return nil
}

func (f *fakeServer) SendBinary(msg []byte) error {
	r, err := agentupdate.DecodeRequest(msg)
	if err != nil {
		f.t.Errorf("agent sent a bad block request: %v", err)
		return err
	}
	select {
	case f.reqs <- r:
	case <-f.done:
		return io.ErrClosedPipe
	}
	return nil
}

func (f *fakeServer) ServerID() [handshake.HashLen]byte { return handshake.NodeID(&keys[0].PublicKey) }

func (f *fakeServer) states() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, m := range f.json {
		if m.Op == agentupdate.OpStatus {
			s = append(s, m.State)
		}
	}
	return s
}

func (f *fakeServer) waitState(want string) agentupdate.Message {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		for _, m := range f.json {
			if m.Op == agentupdate.OpStatus && m.State == want {
				f.mu.Unlock()
				return m
			}
		}
		f.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("no %q status; got %v", want, f.states())
	return agentupdate.Message{}
}

func (f *fakeServer) offer(key int, m agentupdate.Manifest) {
	o, err := agentupdate.Sign(keys[key], certs[key], "rollout-1", m)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := json.Marshal(agentupdate.OfferMessage(o))
	f.u.HandleJSON(f, b)
}

func manifestFor(b []byte) agentupdate.Manifest {
	h := sha512.Sum384(b)
	return agentupdate.Manifest{V: 1, Platform: runtime.GOOS + "/" + runtime.GOARCH, Version: "2.0.0", Size: int64(len(b)), SHA384: hex.EncodeToString(h[:]), Trial: 30}
}

type env struct {
	dir, exe string
	old, new []byte
	u        *Updater
	restarts int
	spawned  []string
	spawnErr error
	noAck    bool // the spawned "watchdog" never reports
	mu       sync.Mutex
}

// newEnv lays out an "installed" binary (a copy of this test binary) and a
// "new version" (the same with bytes appended: still an executable for
// this platform, with another hash).
func newEnv(t *testing.T, service string) *env {
	testKeys(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: t.TempDir(), old: old, new: append(bytes.Clone(old), []byte("\nversion 2 trailer\n")...)}
	e.exe = filepath.Join(e.dir, "meshagent")
	if runtime.GOOS == "windows" {
		e.exe += ".exe"
	}
	if err := os.WriteFile(e.exe, old, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Exe: e.exe, DataDir: e.dir, Version: "1.0.0", Service: service,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Spawn: func(exe string, args []string) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.spawnErr != nil {
				return e.spawnErr
			}
			e.spawned = append(e.spawned, exe)
			if e.noAck {
				return nil
			}
			// What the watchdog does first: record itself in the state.
			st, err := ReadState(e.dir)
			if err != nil || st == nil {
				return fmt.Errorf("no state for the watchdog: %v", err)
			}
			st.Watchdog = 12345
			return WriteState(e.dir, st)
		},
		Restart: func() { e.mu.Lock(); e.restarts++; e.mu.Unlock() },
	}
	if e.u, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) checkUnchanged(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(e.exe)
	if err != nil || !bytes.Equal(b, e.old) {
		t.Errorf("binary changed (err %v)", err)
	}
	ents, _ := os.ReadDir(e.dir)
	for _, x := range ents {
		if strings.Contains(x.Name(), ".update-") || strings.Contains(x.Name(), "previous") {
			t.Errorf("left behind: %s", x.Name())
		}
	}
	if e.restarts != 0 {
		t.Errorf("restarted %d times", e.restarts)
	}
}

func TestUpdateInstalls(t *testing.T) {
	e := newEnv(t, "meshagent")
	f := newFake(t, e.u, e.new)
	f.offer(0, manifestFor(e.new))
	f.waitState(agentupdate.StateRestarting)
	if got := strings.Join(f.states(), ","); got != "downloading,downloaded,installed,restarting" {
		t.Errorf("statuses %s", got)
	}
	if b, _ := os.ReadFile(e.exe); !bytes.Equal(b, e.new) {
		t.Error("new binary not in place")
	}
	prev := PreviousPath(e.exe)
	if b, _ := os.ReadFile(prev); !bytes.Equal(b, e.old) {
		t.Error("previous binary not kept")
	}
	if len(e.spawned) != 1 || e.spawned[0] != prev || e.restarts != 1 {
		t.Errorf("watchdog %v, restarts %d", e.spawned, e.restarts)
	}
	st, err := ReadState(e.dir)
	if err != nil || st.State != Trial || st.To.Version != "2.0.0" || st.From.Version != "1.0.0" {
		t.Fatalf("state %+v %v", st, err)
	}

	// The new binary starts: in trial until authenticated, then confirmed.
	u2, _ := New(Config{Exe: e.exe, DataDir: e.dir, Version: "2.0.0", Service: "meshagent", Restart: func() {}})
	if !u2.Boot() {
		t.Fatal("new binary does not see its trial")
	}
	u2.Authenticated()
	if st, _ := ReadState(e.dir); st.State != agentupdate.StateConfirmed {
		t.Errorf("after authentication: %s", st.State)
	}
	if runtime.GOOS != "windows" {
		if _, err := os.Stat(prev); err == nil {
			t.Error("previous binary kept after the confirmation")
		}
	}
	// The watchdog finds nothing to do.
	svc := &fakeService{}
	if err := Watch(context.Background(), e.dir, svc, slog.Default(), 10*time.Millisecond); err != nil || svc.calls != "" {
		t.Errorf("watchdog after confirmation: %v %q", err, svc.calls)
	}
	// A query answers with the version and the outcome.
	f2 := newFake(t, u2, nil)
	u2.HandleJSON(f2, []byte(`{"action":"meshgoupdate","op":"query"}`))
	if len(f2.json) != 1 || f2.json[0].Version != "2.0.0" || !f2.json[0].Updatable || f2.json[0].Last == nil || f2.json[0].Last.State != agentupdate.StateConfirmed {
		t.Errorf("info %+v", f2.json)
	}
}

func TestUpdateRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		service string
		key     int
		f       func(*env, *fakeServer, *agentupdate.Manifest)
		want    string // in the refusal
	}{
		{"wrongly signed", "meshagent", 1, nil, "not the pinned ServerID"},
		{"other platform in manifest", "meshagent", 0, func(e *env, f *fakeServer, m *agentupdate.Manifest) { m.Platform = "plan9/mips" }, "this agent runs on"},
		{"corrupted in transfer", "meshagent", 0, func(e *env, f *fakeServer, m *agentupdate.Manifest) { f.corrupt = int64(len(e.new)) / 2 }, "SHA-384"},
		{"binary for another platform", "meshagent", 0, func(e *env, f *fakeServer, m *agentupdate.Manifest) {
			f.binary = append([]byte("#!/bin/sh\necho not an executable of ours\n"), make([]byte, 1000)...)
			*m = manifestFor(f.binary)
		}, "binary is not for"},
		{"not a service", "", 0, nil, "not running as a service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.service)
			f := newFake(t, e.u, e.new)
			m := manifestFor(e.new)
			if tc.f != nil {
				tc.f(e, f, &m)
			}
			f.offer(tc.key, m)
			r := f.waitState(agentupdate.StateRefused)
			if !strings.Contains(r.Msg, tc.want) {
				t.Errorf("refusal %q, want %q", r.Msg, tc.want)
			}
			time.Sleep(50 * time.Millisecond)
			for _, s := range f.states() {
				if s == agentupdate.StateInstalled || s == agentupdate.StateRestarting {
					t.Errorf("status %s after a refusal", s)
				}
			}
			e.checkUnchanged(t)
		})
	}
}

// A connection cut mid-download leaves only a hidden, non-executable
// partial file; the next offer resumes it and the result is whole.
func TestUpdateCutResumes(t *testing.T) {
	e := newEnv(t, "meshagent")
	f := newFake(t, e.u, e.new)
	f.cutAt = 3
	m := manifestFor(e.new)
	f.offer(0, m)
	<-f.done
	time.Sleep(50 * time.Millisecond)
	if b, _ := os.ReadFile(e.exe); !bytes.Equal(b, e.old) {
		t.Fatal("binary changed by a cut download")
	}
	part := tempPath(e.exe, m.SHA384)
	st, err := os.Stat(part)
	if err != nil {
		t.Fatalf("partial file: %v", err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o111 != 0 {
		t.Errorf("partial file is executable: %v", st.Mode())
	}
	if st.Size() == 0 || st.Size() >= m.Size {
		t.Errorf("partial size %d of %d", st.Size(), m.Size)
	}
	if e.restarts != 0 {
		t.Fatal("restarted after a cut")
	}
	f2 := newFake(t, e.u, e.new)
	f2.offer(0, m)
	d := f2.waitState(agentupdate.StateDownloading)
	if !strings.Contains(d.Msg, "resuming at") {
		t.Errorf("second offer did not resume: %q", d.Msg)
	}
	f2.waitState(agentupdate.StateRestarting)
	if b, _ := os.ReadFile(e.exe); !bytes.Equal(b, e.new) {
		t.Error("resumed download not in place whole")
	}
	if _, err := os.Stat(part); err == nil {
		t.Error("partial file left")
	}
}

func TestUpdateWatchdogStartFails(t *testing.T) {
	e := newEnv(t, "meshagent")
	e.spawnErr = io.ErrUnexpectedEOF
	f := newFake(t, e.u, e.new)
	f.offer(0, manifestFor(e.new))
	r := f.waitState(agentupdate.StateFailed)
	if !strings.Contains(r.Msg, "watchdog") {
		t.Errorf("failure %q", r.Msg)
	}
	e.checkUnchanged(t)
	if st, _ := ReadState(e.dir); st == nil || st.State != agentupdate.StateFailed {
		t.Errorf("state %+v", st)
	}
}

// A watchdog that starts but never reports (it found no service to
// restore) stops the update.
func TestUpdateWatchdogSilent(t *testing.T) {
	defer func(d time.Duration) { WatchdogWait = d }(WatchdogWait)
	WatchdogWait = time.Second
	e := newEnv(t, "meshagent")
	e.noAck = true
	f := newFake(t, e.u, e.new)
	f.offer(0, manifestFor(e.new))
	r := f.waitState(agentupdate.StateFailed)
	if !strings.Contains(r.Msg, "did not report") {
		t.Errorf("failure %q", r.Msg)
	}
	e.checkUnchanged(t)
}

type fakeService struct {
	mu    sync.Mutex
	calls string
}

func (s *fakeService) Stop(context.Context) error {
	s.mu.Lock()
	s.calls += "stop,"
	s.mu.Unlock()
	return nil
}
func (s *fakeService) Start(context.Context) error {
	s.mu.Lock()
	s.calls += "start,"
	s.mu.Unlock()
	return nil
}

func TestWatchdogRollsBack(t *testing.T) {
	e := newEnv(t, "meshagent")
	f := newFake(t, e.u, e.new)
	m := manifestFor(e.new)
	m.Trial = agentupdate.MinTrial
	f.offer(0, m)
	f.waitState(agentupdate.StateRestarting)
	// The new binary never comes online (it crashes at start): nothing
	// confirms, and the watchdog restores the previous binary.
	svc := &fakeService{}
	start := time.Now()
	if err := Watch(context.Background(), e.dir, svc, slog.Default(), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 3*time.Second {
		t.Errorf("rolled back after %v, before the trial ended", time.Since(start))
	}
	if svc.calls != "stop,start," {
		t.Errorf("service calls %q", svc.calls)
	}
	if b, _ := os.ReadFile(e.exe); !bytes.Equal(b, e.old) {
		t.Error("previous binary not restored")
	}
	st, _ := ReadState(e.dir)
	if st.State != agentupdate.StateRolledBack || !strings.Contains(st.Msg, "did not come online") {
		t.Errorf("state %+v", st)
	}
	// The restored binary reports it.
	u, _ := New(Config{Exe: e.exe, DataDir: e.dir, Version: "1.0.0", Service: "meshagent", Restart: func() {}})
	if u.Boot() {
		t.Error("restored binary thinks it is in trial")
	}
	f2 := newFake(t, u, nil)
	u.HandleJSON(f2, []byte(`{"action":"meshgoupdate","op":"query"}`))
	if len(f2.json) != 1 || f2.json[0].Last == nil || f2.json[0].Last.State != agentupdate.StateRolledBack || f2.json[0].Version != "1.0.0" {
		t.Errorf("info %+v", f2.json)
	}
	if _, err := os.Stat(PreviousPath(e.exe)); err == nil {
		t.Error("previous path still exists after the restore")
	}
}

// MeshCentral's command 14 (a block nobody asked for) is ignored.
func TestUnaskedBlockIgnored(t *testing.T) {
	e := newEnv(t, "meshagent")
	f := newFake(t, e.u, nil)
	e.u.HandleBlock(f, agentupdate.EncodeBlock(0, []byte("MZ...")))
	e.checkUnchanged(t)
}

func FuzzHandleJSON(f *testing.F) {
	f.Add([]byte(`{"action":"meshgoupdate","op":"query"}`))
	f.Add([]byte(`{"action":"meshgoupdate","op":"offer","manifest":"e30=","sig":"AA==","cert":"AA=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		exe := filepath.Join(dir, "meshagent")
		os.WriteFile(exe, []byte("x"), 0o755)
		u, _ := New(Config{Exe: exe, DataDir: dir, Version: "1", Service: "s", Restart: func() { t.Fatal("restarted") }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Spawn: func(string, []string) error { t.Fatal("spawned"); return nil }})
		u.HandleJSON(nopConn{}, b)
	})
}

type nopConn struct{}

func (nopConn) SendJSON(any) error                { return nil }
func (nopConn) SendBinary([]byte) error           { return nil }
func (nopConn) ServerID() [handshake.HashLen]byte { return [handshake.HashLen]byte{} }
