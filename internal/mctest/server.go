package mctest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options tunes a MeshCentral server started by Start.
type Options struct {
	// WebRTC enables settings.webRTC (the default is off, so no STUN traffic).
	WebRTC bool
	// AgentIdleTimeout sets settings.agentIdleTimeout (whole seconds): the
	// server closes an agent connection idle for that long. Zero keeps the
	// default of 150 s.
	AgentIdleTimeout time.Duration
	// AgentPing, when non-zero, makes the server send a JSON ping to agents
	// at this interval (settings.agentPing, whole seconds).
	AgentPing time.Duration
	// AgentPong, when non-zero, makes the server send a JSON pong to agents
	// at this interval (settings.agentPong, whole seconds).
	AgentPong time.Duration
	// Settings are merged into config.json "settings" last, overriding the
	// harness's values; keys match case-insensitively, as in MeshCentral.
	Settings map[string]any
	// Domain is merged into the default domain ("") of config.json.
	Domain map[string]any
	// SSH turns on the domain's "ssh": MeshCentral's own SSH client
	// (Web-SSH link, the Terminal tab's "SSH Connect", the Files tab's
	// "SFTP Connect"), which reaches the device's SSH port through a
	// port-forwarding tunnel of its agent. The npm ssh2 module it needs is
	// installed beside MeshCentral's cache (installSSH2) and given to the
	// server as NODE_PATH, so MeshCentral never npm-installs it itself.
	SSH bool
	// Domains are further domains besides the default one (""), by id
	// (lower case), each with its config.json settings: MeshCentral serves
	// one under /ID/ with its own accounts, device groups and settings
	// (iplocation, for one, is per domain). Each gets an administrator with
	// the same name and password; Domain gives the server as seen there.
	Domains map[string]map[string]any
	// AdminUser is the administrator's user name (default "admin").
	AdminUser string
	// AdminPass is the administrator's password (default: random).
	AdminPass string
	// StartTimeout bounds the wait for the server to serve HTTPS (default 3 min;
	// a first start takes 10-15 s on an idle 2-core machine, over a minute
	// under heavy load, mostly RSA key generation and Windows agent signing).
	StartTimeout time.Duration
}

// Server is a running MeshCentral server on 127.0.0.1.
type Server struct {
	mcDir   string // node_modules/meshcentral
	root    string // holds meshcentral-data, meshcentral-files
	dataDir string
	port    int
	user    string
	pass    string
	logPath string
	opts    Options
	env     []string // MeshCentral's environment: loopbackEnv, NODE_PATH for ssh2

	// domain is the domain this view of the server is in ("" the
	// default), base the Server that owns the process (nil: this one).
	domain string
	base   *Server

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// URL returns the server's WebSocket base URL, wss://127.0.0.1:PORT (with
// /ID for a Domain view), as meshctrl's --url wants it.
func (s *Server) URL() string { return "wss://127.0.0.1:" + strconv.Itoa(s.port) + s.domainPath() }

// HTTPSURL returns https://127.0.0.1:PORT (with /ID for a Domain view).
func (s *Server) HTTPSURL() string {
	return "https://127.0.0.1:" + strconv.Itoa(s.port) + s.domainPath()
}

func (s *Server) domainPath() string {
	if s.domain == "" {
		return ""
	}
	return "/" + s.domain
}

// owner is the Server that runs the process.
func (s *Server) owner() *Server {
	if s.base != nil {
		return s.base
	}
	return s
}

// Domain returns the server as seen in its domain id (one of
// Options.Domains): its URLs are under /ID, and meshctrl, control.ashx and
// the helpers built on them (AddDeviceGroup, MSH, ListDevices, Events, ...)
// act as that domain's administrator. Stop and Restart act on the server.
func (s *Server) Domain(t testing.TB, id string) *Server {
	t.Helper()
	o := s.owner()
	if _, ok := o.opts.Domains[id]; !ok || id == "" {
		t.Fatalf("mctest: the server has no domain %q (Options.Domains)", id)
	}
	return &Server{mcDir: o.mcDir, root: o.root, dataDir: o.dataDir, port: o.port, user: o.user, pass: o.pass,
		logPath: o.logPath, opts: o.opts, env: o.env, domain: id, base: o}
}

// Port returns the HTTPS/WebSocket port the server listens on (127.0.0.1 only).
func (s *Server) Port() int { return s.port }

// DataDir returns the server's meshcentral-data directory (config.json,
// certificates, databases and the harness's log file meshcentral.log).
func (s *Server) DataDir() string { return s.dataDir }

// MeshCentralDir returns the node_modules/meshcentral directory the server runs from.
func (s *Server) MeshCentralDir() string { return s.mcDir }

// AdminUser returns the administrator's user name.
func (s *Server) AdminUser() string { return s.user }

// AdminPass returns the administrator's password.
func (s *Server) AdminPass() string { return s.pass }

// LogPath returns the file holding MeshCentral's stdout and stderr.
func (s *Server) LogPath() string { return s.logPath }

// LogTail returns the last n lines of MeshCentral's output.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", s.logPath, err)
	}
	return tail(string(b), n)
}

// Start starts the real MeshCentral on 127.0.0.1 on a free port, with a
// fresh data directory under t.TempDir(), the loopback-only configuration and
// an administrator account, waits until it serves HTTPS, and registers a
// cleanup that stops it (and prints its log tail if the test failed).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	mcDir := Install(t)
	s, err := start(mcDir, t.TempDir(), opts, t.Logf)
	if err != nil {
		t.Fatalf("mctest: start MeshCentral: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mctest: MeshCentral log tail (%s):\n%s", s.logPath, s.LogTail(60))
		}
		if err := s.stop(); err != nil {
			t.Logf("mctest: stop MeshCentral: %v", err)
		}
	})
	return s
}

func start(mcDir, root string, opts Options, logf func(string, ...any)) (*Server, error) {
	s := &Server{
		mcDir:   mcDir,
		root:    root,
		dataDir: filepath.Join(root, "meshcentral-data"),
		user:    opts.AdminUser,
		pass:    opts.AdminPass,
		opts:    opts,
	}
	if s.user == "" {
		s.user = "admin"
	}
	if s.pass == "" {
		s.pass = "P" + randomHex(12) + "!x"
	}
	s.env = loopbackEnv()
	if opts.SSH {
		nm, err := installSSH2(logf)
		if err != nil {
			return nil, err
		}
		s.env = append(s.env, "NODE_PATH="+nm)
	}
	s.logPath = filepath.Join(s.dataDir, "meshcentral.log")
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	begin := time.Now()
	var lastErr error
	// The free port we pick can be taken by another test binary before
	// MeshCentral binds it (exactPorts makes it fail then): retry with another.
	for attempt := 0; attempt < 4; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.port = port
		if err := s.writeConfig(); err != nil {
			return nil, err
		}
		if attempt == 0 {
			if err := s.createAdmin(); err != nil {
				return nil, err
			}
		}
		lastErr = s.launch(timeout)
		if lastErr == nil {
			logf("mctest: MeshCentral %s up on %s in %s (data %s)", Version, s.URL(), time.Since(begin).Round(time.Millisecond), s.dataDir)
			return s, nil
		}
		s.stop()
		if !strings.Contains(s.LogTail(30), "EADDRINUSE") {
			break
		}
		logf("mctest: port %d was taken, retrying: %v", port, lastErr)
	}
	return nil, fmt.Errorf("%w\nMeshCentral log tail (%s):\n%s", lastErr, s.logPath, s.LogTail(40))
}

// config returns the loopback-only config.json content.
func (s *Server) config() map[string]any {
	settings := map[string]any{
		"cert":                    "127.0.0.1",
		"WANonly":                 true,
		"amtScanner":              false,
		"meshScanner":             false,
		"amtManager":              false,
		"port":                    s.port,
		"portBind":                "127.0.0.1",
		"exactPorts":              true,
		"redirPort":               0,
		"mpsPort":                 0,
		"agentTimeStampServer":    false,
		"selfUpdate":              false,
		"autoBackup":              false,
		"publicPushNotifications": false,
		"no2FactorAuth":           true,
		"webRTC":                  s.opts.WebRTC,
		"userAllowedIP":           "127.0.0.1,::1",
		"agentAllowedIP":          "127.0.0.1,::1",
		"noAgentUpdate":           1,
		"filesPath":               filepath.Join(s.root, "meshcentral-files"),
	}
	if d := s.opts.AgentIdleTimeout; d > 0 {
		settings["agentIdleTimeout"] = max(1, int(d.Round(time.Second)/time.Second))
	}
	if d := s.opts.AgentPing; d > 0 {
		settings["agentPing"] = max(1, int(d.Round(time.Second)/time.Second))
	}
	if d := s.opts.AgentPong; d > 0 {
		settings["agentPong"] = max(1, int(d.Round(time.Second)/time.Second))
	}
	mergeFold(settings, s.opts.Settings)
	domain := map[string]any{
		"newAccounts":  false,
		"agentNoProxy": true,
	}
	if s.opts.SSH {
		domain["ssh"] = true
	}
	mergeFold(domain, s.opts.Domain)
	domains := map[string]any{"": domain}
	for id, d := range s.opts.Domains {
		domains[id] = maps.Clone(d)
	}
	return map[string]any{
		"settings": settings,
		"domains":  domains,
	}
}

// mergeFold copies src into dst, replacing keys that differ only in case
// (MeshCentral lowercases config keys).
func mergeFold(dst, src map[string]any) {
	for k, v := range src {
		for dk := range maps.Clone(dst) {
			if strings.EqualFold(dk, k) {
				delete(dst, dk)
			}
		}
		dst[k] = v
	}
}

func (s *Server) writeConfig() error {
	b, err := json.MarshalIndent(s.config(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode config.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dataDir, "config.json"), b, 0o644); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

// createAdmin runs MeshCentral's own --createaccount and --adminaccount while
// the server is stopped.
func (s *Server) createAdmin() error {
	runs := [][]string{
		{"--createaccount", s.user, "--pass", s.pass},
		{"--adminaccount", s.user},
	}
	for _, id := range slices.Sorted(maps.Keys(s.opts.Domains)) {
		runs = append(runs, []string{"--createaccount", s.user, "--pass", s.pass, "--domain", id},
			[]string{"--adminaccount", s.user, "--domain", id})
	}
	for _, args := range runs {
		out, err := s.runMeshCentralCmd(time.Minute, args...)
		if err != nil {
			return fmt.Errorf("meshcentral %s: %w\n%s", args[0], err, out)
		}
		if !strings.Contains(out, "Done.") {
			return fmt.Errorf("meshcentral %s did not report Done:\n%s", args[0], out)
		}
	}
	return nil
}

func (s *Server) runMeshCentralCmd(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{filepath.Join(s.mcDir, "meshcentral.js"), "--datapath", s.dataDir}, args...)
	cmd := exec.CommandContext(ctx, "node", full...)
	cmd.Dir = s.root
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// launch starts the server process and waits until it answers HTTPS.
func (s *Server) launch(timeout time.Duration) error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fmt.Fprintf(logf, "---- mctest: starting MeshCentral on 127.0.0.1:%d at %s\n", s.port, time.Now().Format(time.RFC3339))
	cmd := exec.Command("node", filepath.Join(s.mcDir, "meshcentral.js"), "--datapath", s.dataDir)
	cmd.Dir = s.root
	cmd.Env = s.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	setupProc(cmd, sigInt)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start node meshcentral.js: %w", err)
	}
	logf.Close()
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd = cmd
	s.done = done
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		close(done)
	}()

	client := insecureClient(2 * time.Second)
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("MeshCentral exited before serving HTTPS: %v", s.exitErr())
		default:
		}
		resp, err := client.Get(s.HTTPSURL() + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MeshCentral did not serve HTTPS on %s within %s: %w", s.HTTPSURL(), timeout, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

func (s *Server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

// stop ends the server: SIGINT to the parent process started by the harness
// (it stops its worker), then SIGKILL to that process's group if anything
// is left after a grace period.
func (s *Server) stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	select {
	case <-done:
	default:
		cmd.Process.Signal(sigInt)
	}
	var err error
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		err = errors.New("MeshCentral ignored SIGINT for 10 s; killed")
	}
	// The worker (--launch) and meshaccelerator children are in the same group.
	for i := 0; i < 30 && signalGroup(pgid, 0); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if signalGroup(pgid, sigKill) {
		err = errors.Join(err, errors.New("MeshCentral children outlived the parent; killed its process group"))
	}
	<-done
	return err
}

// Stop stops the server now (it is also stopped by the cleanup Start
// registered). Further calls do nothing. Do not call it on the server
// Shared returns: other tests use it.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.owner().stop(); err != nil {
		t.Logf("mctest: %v", err)
	}
}

// Restart stops the server and starts it again on the same port with the
// same data directory (same certificates, accounts and devices). On the
// server Shared returns, only do this in tests that do not run in parallel.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s = s.owner()
	if err := s.stop(); err != nil {
		t.Logf("mctest: %v", err)
	}
	timeout := s.opts.StartTimeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	begin := time.Now()
	if err := s.launch(timeout); err != nil {
		t.Fatalf("mctest: restart MeshCentral: %v\nlog tail:\n%s", err, s.LogTail(40))
	}
	t.Logf("mctest: MeshCentral restarted in %s", time.Since(begin).Round(time.Millisecond))
}

// insecureClient returns an HTTP client for the loopback server's
// self-signed certificate.
func insecureClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // loopback test server, self-signed
			DisableKeepAlives: true,
			Proxy:             nil, // never go through a proxy: loopback only
		},
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loopbackEnv is the environment for MeshCentral, meshctrl and the C agent:
// the test's own without proxy variables. Everything they talk to is on
// loopback, and MeshCentral would otherwise try to `npm install`
// https-proxy-agent into the shared install at start-up.
func loopbackEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return env
}
