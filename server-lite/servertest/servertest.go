// Package servertest runs a whole server-lite in-process for tests, in the
// spirit of tailscale's testcontrol: the real composition root (app.New)
// on 127.0.0.1:0 with a temporary data directory, the first
// administrator's credentials, and agents to connect to it: simulated ones
// (internal/simagent) or our real agent binary (built by internal/agentbin).
//
// It is an ordinary package so that every server-lite test package (and
// the interop tests) share one environment instead of rebuilding it; only
// tests import it. It imports nothing under agent/: the real agent runs as
// the binary a user would run.
package servertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/app"
)

// Options choose how the server is configured.
type Options struct {
	// CoreFile is the core pushed to JavaScript agents ("" = built-in).
	CoreFile string
	// Configure, when set, may change the configuration before New
	// (agent.ashx or relay limits, event retention).
	Configure func(*app.Config)
	// LogLevel of the server log (nil: Debug). The log is kept in memory
	// and printed when the test fails.
	LogLevel slog.Leveler
	// Quiet discards the server log.
	Quiet bool
}

// Server is a started server-lite. The embedded App gives every part
// (Agents, Store, API, Accounts, Relay...).
type Server struct {
	*app.App
	t testing.TB
	// URL is the admin and agent base, wss://127.0.0.1:PORT.
	URL string
	// AdminUser and AdminPass are the first administrator's credentials.
	AdminUser, AdminPass string
	logs                 *lockedBuf
}

// Start builds and starts server-lite (RSA-2048 agent key, to keep the
// first start fast) and stops it at the end of the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	logs := &lockedBuf{}
	var level slog.Leveler = slog.LevelDebug
	if o.LogLevel != nil {
		level = o.LogLevel
	}
	var logger *slog.Logger
	if o.Quiet {
		logger = slog.New(slog.DiscardHandler)
	} else {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server-lite log:\n%s", Tail(logs.String(), 80))
			}
		})
	}
	cfg := app.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AgentKeyBits: 2048, CoreFile: o.CoreFile, Logger: logger}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.FirstAdmin == nil {
		a.Close()
		t.Fatal("servertest: no first administrator on a fresh data directory")
	}
	a.Start()
	t.Cleanup(func() { a.Close() })
	return &Server{App: a, t: t, URL: "wss://" + a.Addr(), AdminUser: a.FirstAdmin.Name, AdminPass: a.FirstAdmin.Password, logs: logs}
}

// Logs returns the server log so far.
func (s *Server) Logs() string { return s.logs.String() }

// MeshID is the default group's id as agents send it.
func (s *Server) MeshID() [handshake.HashLen]byte {
	s.t.Helper()
	var id [handshake.HashLen]byte
	b, err := s.DefaultGroup.MeshIDBytes()
	if err != nil {
		s.t.Fatal(err)
	}
	copy(id[:], b)
	return id
}

// NewIdentity makes a fresh simulated agent identity (RSA-2048).
func NewIdentity(t testing.TB) simagent.Identity {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id, err := simagent.NewIdentity(key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// SimAgent is a simulated agent connected to the server.
type SimAgent struct {
	*simagent.Conn
	Identity simagent.Identity
	NodeID   string
}

// ConnectSim connects a simulated agent with identity id (see NewIdentity)
// to the default group and waits until the registry lists it. The
// connection is closed at the end of the test.
func (s *Server) ConnectSim(id simagent.Identity, hostname string) *SimAgent {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := simagent.Connect(ctx, simagent.Options{URL: s.AgentURL(), ServerID: s.Certs.ServerID, MeshID: s.MeshID(), Identity: id, Hostname: hostname})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.WS.Close() })
	nodeID := NodeID(id)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := s.Agents.Agent(nodeID); ok {
			break
		}
		if time.Now().After(end) {
			s.t.Fatalf("servertest: simulated agent %s not registered", hostname)
		}
	}
	return &SimAgent{Conn: conn, Identity: id, NodeID: nodeID}
}

// NodeID is the server's id for an agent identity.
func NodeID(id simagent.Identity) string {
	n := handshake.NodeID(&id.Key.PublicKey)
	return "node//" + handshake.EncodeID(n[:])
}

// WaitCore waits until exactly one agent is connected and running its core
// (its coreinfo arrived) and returns it.
func (s *Server) WaitCore(timeout time.Duration) agentconn.AgentInfo {
	s.t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ags := s.Agents.Agents(); len(ags) == 1 && ags[0].CoreName != "" {
			return ags[0]
		}
	}
	s.t.Fatal("servertest: the agent did not come online with its core")
	return agentconn.AgentInfo{}
}

// Msh is the default group's .msh as written in the data directory.
func (s *Server) Msh() []byte {
	s.t.Helper()
	b, err := os.ReadFile(s.MshPath)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// StartAgent runs our agent binary (`meshagent run --msh F --data D`,
// loopback-only WebRTC) against this server with extra environment env
// (e.g. DISPLAY), in its own process group, and stops it by PID at the end
// of the test. Its log is printed if the test fails.
func (s *Server) StartAgent(env []string) {
	t := s.t
	t.Helper()
	bin := agentbin.MustBuild(t)
	dir := t.TempDir()
	mshPath := filepath.Join(dir, "meshagent.msh")
	msh := append(bytes.TrimRight(s.Msh(), "\r\n"), []byte("\nWebRTCLoopbackOnly=1\n")...)
	if err := os.WriteFile(mshPath, msh, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--msh", mshPath, "--data", filepath.Join(dir, "data"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = agentbin.Env(env...)
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			killProcessGroup(pid) // the group we created for it
			<-exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", Tail(string(b), 60))
		}
	})
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// lockedBuf collects the server log.
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

// Meshctrl runs MeshCentral's real CLI (meshctrl.js from the interop
// harness's install) against this server as the first administrator and
// returns its combined output.
func (s *Server) Meshctrl(args ...string) string {
	s.t.Helper()
	return s.MeshctrlAs(s.AdminUser, s.AdminPass, args...)
}

// MeshctrlAs is Meshctrl as user/pass; a run over 30 s fails the test.
func (s *Server) MeshctrlAs(user, pass string, args ...string) string {
	s.t.Helper()
	return s.meshctrl(append(args, "--loginuser", user, "--loginpass", pass)...)
}

// MeshctrlKey is Meshctrl as user with meshctrl's --loginkeyfile, using the
// login key file in the data directory.
func (s *Server) MeshctrlKey(user string, args ...string) string {
	s.t.Helper()
	return s.meshctrl(append(args, "--loginuser", user, "--loginkeyfile", filepath.Join(filepath.Dir(s.MshPath), adminapi.LoginKeyFile))...)
}

func (s *Server) meshctrl(args ...string) string {
	s.t.Helper()
	p := filepath.Join(mctest.Install(s.t), "meshctrl.js")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{p}, args...)
	full = append(full, "--url", s.URL)
	out, err := exec.CommandContext(ctx, "node", full...).CombinedOutput()
	if ctx.Err() != nil {
		s.t.Fatalf("meshctrl %s timed out; output:\n%s", args[0], out)
	}
	if err != nil {
		s.t.Logf("meshctrl %s: %v", args[0], err)
	}
	return string(out)
}
