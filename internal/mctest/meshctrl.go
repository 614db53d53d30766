package mctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CtrlOptions tunes one meshctrl run.
type CtrlOptions struct {
	// Timeout ends meshctrl after this long (default 2 min).
	Timeout time.Duration
	// RelayRetries is how many times to run the command again when its
	// output is exactly the known relay-cookie failure (see
	// IsRelayCookieFailure). Only use it with commands safe to repeat.
	RelayRetries int
	// TTY runs meshctrl under `script` so that it has a terminal (the
	// shell command needs one).
	TTY bool
	// Stdin, if set, is fed to meshctrl's standard input.
	Stdin []byte
	// Dir is meshctrl's working directory (default: the server's data root).
	Dir string
}

// Meshctrl runs `node meshctrl.js ARGS --url wss://127.0.0.1:PORT
// --loginuser U --loginpass P` with a 2-minute timeout and returns its
// combined output. meshctrl exits 0 on most errors, so callers must check
// the text; the error is only for failures to run, timeouts and non-zero
// exits.
func (s *Server) Meshctrl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return s.MeshctrlWith(t, CtrlOptions{}, args...)
}

// MeshctrlWith is Meshctrl with options (timeout, relay retries, TTY, stdin).
func (s *Server) MeshctrlWith(t testing.TB, o CtrlOptions, args ...string) (string, error) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		start := time.Now()
		stdout, stderr, err := s.runMeshctrl(o, args...)
		out := stdout + stderr
		t.Logf("mctest: meshctrl %s (%s, err=%v)", strings.Join(redact(args), " "), time.Since(start).Round(time.Millisecond), err)
		if err == nil && attempt < o.RelayRetries && IsRelayCookieFailure(out) {
			t.Logf("mctest: meshctrl hit the known $$ relay-cookie failure; retrying (%d/%d)", attempt+1, o.RelayRetries)
			continue
		}
		return out, err
	}
}

// runMeshctrl runs meshctrl and returns its stdout and stderr separately.
func (s *Server) runMeshctrl(o CtrlOptions, args ...string) (string, string, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{filepath.Join(s.mcDir, "meshctrl.js")}, args...)
	full = append(full, "--url", s.URL(), "--loginuser", s.user, "--loginpass", s.pass)
	var cmd *exec.Cmd
	if o.TTY {
		cmd = exec.CommandContext(ctx, "script", "-qfec", shellJoin(append([]string{"node"}, full...)), "/dev/null")
	} else {
		cmd = exec.CommandContext(ctx, "node", full...)
	}
	cmd.Dir = o.Dir
	if cmd.Dir == "" {
		cmd.Dir = s.root
	}
	cmd.Env = loopbackEnv()
	if o.Stdin != nil {
		cmd.Stdin = bytes.NewReader(o.Stdin)
	}
	setupProc(cmd, sigKill)
	// Kill the whole group on timeout (script starts node as a child).
	cmd.Cancel = func() error {
		signalGroup(cmd.Process.Pid, sigKill)
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	// meshctrl ends with process.exit() right after printing, and node
	// writes to a pipe asynchronously: output over the pipe's 64 KiB
	// buffer is cut off (a long listevents --json ends mid-record). Writes
	// to a file are synchronous in node, so stdout goes to one.
	outFile, err := os.CreateTemp("", "mctest-meshctrl-*.out")
	if err != nil {
		return "", "", fmt.Errorf("meshctrl %s: output file: %w", firstArg(args), err)
	}
	defer os.Remove(outFile.Name())
	defer outFile.Close()
	var stderr bytes.Buffer
	cmd.Stdout = outFile
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("meshctrl %s timed out after %s: %w", firstArg(args), timeout, ctx.Err())
	} else if err != nil {
		err = fmt.Errorf("meshctrl %s: %w", firstArg(args), err)
	}
	stdout, rerr := os.ReadFile(outFile.Name())
	if rerr != nil && err == nil {
		err = fmt.Errorf("meshctrl %s: read output: %w", firstArg(args), rerr)
	}
	return string(stdout), stderr.String(), err
}

// IsRelayCookieFailure reports whether meshctrl output is the known
// meshctrl 1.1.55 relay failure: it turns "$$" in its relay auth cookie into
// "$", the server rejects the relay, and meshctrl prints "Waiting for
// Agent..." then, 30 s later, "Connection Closed." without ever printing
// "Connected.".
func IsRelayCookieFailure(out string) bool {
	if !strings.Contains(out, "Waiting for Agent...") || !strings.Contains(out, "Connection Closed.") {
		return false
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Connected") {
			return false
		}
	}
	return true
}

// AddDeviceGroup creates an agent device group (mesh type 2) named name and
// returns its id, "mesh//..." ("mesh/ID/..." in a Domain view; 64
// characters after the prefix).
func (s *Server) AddDeviceGroup(t testing.TB, name string) string {
	t.Helper()
	out, err := s.Meshctrl(t, "adddevicegroup", "--name", name)
	if err != nil {
		t.Fatalf("mctest: adddevicegroup %q: %v\n%s", name, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if id, ok := strings.CutPrefix(line, "ok "); ok && strings.HasPrefix(id, "mesh/"+s.domain+"/") {
			return id
		}
	}
	t.Fatalf("mctest: adddevicegroup %q: unexpected output:\n%s", name, out)
	return ""
}

// MSH returns the .msh agent settings file of the group meshID ("mesh//..."
// or the bare id), fetched from GET /meshsettings?id=... exactly as
// MeshCentral serves it (CRLF line ends, leading empty line).
func (s *Server) MSH(t testing.TB, meshID string) []byte {
	t.Helper()
	b, err := s.msh(meshID)
	if err != nil {
		t.Fatalf("mctest: %v", err)
	}
	return b
}

func (s *Server) msh(meshID string) ([]byte, error) {
	id := strings.TrimPrefix(meshID, "mesh/"+s.domain+"/")
	u := s.HTTPSURL() + "/meshsettings?id=" + url.QueryEscape(id)
	resp, err := insecureClient(30 * time.Second).Get(u)
	if err != nil {
		return nil, fmt.Errorf("get meshsettings for %s: %w", meshID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read meshsettings for %s: %w", meshID, err)
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("get meshsettings for %s: HTTP %s: %.200s", meshID, resp.Status, b)
	}
	if !bytes.Contains(b, []byte("MeshServer=")) {
		return nil, fmt.Errorf("meshsettings for %s has no MeshServer line: %.300s", meshID, b)
	}
	return b, nil
}

// ParseMSH parses a .msh file into its key=value pairs (CRLF or LF line
// ends; blank lines ignored).
func ParseMSH(msh []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(msh), "\n") {
		line = strings.TrimRight(line, "\r")
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// Device is one device as `meshctrl listdevices --json` reports it.
type Device struct {
	ID        string    `json:"_id"` // "node//..."
	Name      string    `json:"name"`
	RName     string    `json:"rname"`
	MeshID    string    `json:"meshid"` // "mesh//..."
	GroupName string    `json:"groupname"`
	Conn      int       `json:"conn"` // bit 0: agent connected
	Pwr       int       `json:"pwr"`
	Icon      int       `json:"icon"`
	OSDesc    string    `json:"osdesc"`
	IP        string    `json:"ip"`
	Agent     AgentInfo `json:"agent"`
	// Raw holds every field meshctrl printed for the device.
	Raw map[string]any `json:"-"`
}

// AgentInfo is the "agent" object of a device.
type AgentInfo struct {
	ID   int    `json:"id"`   // agent type (ARCHID), 6 for Linux x86-64
	Caps int    `json:"caps"` // capability bits
	Core string `json:"core"` // running core's name, empty when none
	Ver  int    `json:"ver"`
	Root bool   `json:"root"`
}

// Online reports whether the agent is connected (conn & 1).
func (d Device) Online() bool { return d.Conn&1 != 0 }

// ShortID returns the node id without its "node//" (or "node/ID/") prefix, the form
// meshctrl's shell, upload and download commands need.
func (d Device) ShortID() string { return d.ID[strings.LastIndexByte(d.ID, '/')+1:] }

// ListDevices returns all devices (`meshctrl listdevices --json`).
func (s *Server) ListDevices(t testing.TB) []Device {
	t.Helper()
	devs, err := s.listDevices()
	if err != nil {
		t.Fatalf("mctest: %v", err)
	}
	return devs
}

func (s *Server) listDevices() ([]Device, error) {
	stdout, stderr, err := s.runMeshctrl(CtrlOptions{Timeout: time.Minute}, "listdevices", "--json")
	if err != nil {
		return nil, fmt.Errorf("%w\n%s%s", err, stdout, stderr)
	}
	trimmed := strings.TrimSpace(stdout)
	if trimmed == "" || trimmed == "None" {
		return nil, nil
	}
	var raws []map[string]any
	if err := decodeJSON(stdout, &raws); err != nil {
		return nil, fmt.Errorf("listdevices --json: %w", err)
	}
	devs := make([]Device, 0, len(raws))
	for _, r := range raws {
		b, _ := json.Marshal(r)
		var d Device
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("listdevices --json: decode device: %w", err)
		}
		d.Raw = r
		devs = append(devs, d)
	}
	return devs, nil
}

// OnlineIn returns a WaitDevice condition: the device's agent is connected
// and it belongs to group meshID.
func OnlineIn(meshID string) func(Device) bool {
	return func(d Device) bool { return d.Online() && d.MeshID == meshID }
}

// WaitDevice polls ListDevices until a device satisfies cond and returns it;
// it fails the test after timeout, showing the last list.
func (s *Server) WaitDevice(t testing.TB, cond func(Device) bool, timeout time.Duration) Device {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []Device
	var lastErr error
	for {
		devs, err := s.listDevices()
		if err == nil {
			last, lastErr = devs, nil
			for _, d := range devs {
				if cond(d) {
					return d
				}
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, d := range last {
				fmt.Fprintf(&b, "  %s name=%q mesh=%s conn=%d agent=%+v\n", d.ID, d.Name, d.MeshID, d.Conn, d.Agent)
			}
			t.Fatalf("mctest: no device matched within %s (last error: %v); devices:\n%s", timeout, lastErr, b.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// DeviceInfo returns `meshctrl deviceinfo --id NODEID --json` decoded
// (nodeID with or without "node//").
func (s *Server) DeviceInfo(t testing.TB, nodeID string) map[string]any {
	t.Helper()
	stdout, stderr, err := s.runMeshctrl(CtrlOptions{}, "deviceinfo", "--id", nodeID, "--json")
	if err != nil {
		t.Fatalf("mctest: deviceinfo %s: %v\n%s%s", nodeID, err, stdout, stderr)
	}
	var m map[string]any
	if err := decodeJSON(stdout, &m); err != nil {
		t.Fatalf("mctest: deviceinfo %s --json: %v", nodeID, err)
	}
	return m
}

// Events returns the server's events (`meshctrl listevents --json`).
func (s *Server) Events(t testing.TB) []map[string]any {
	t.Helper()
	stdout, stderr, err := s.runMeshctrl(CtrlOptions{}, "listevents", "--json")
	if err != nil {
		t.Fatalf("mctest: listevents: %v\n%s%s", err, stdout, stderr)
	}
	if strings.TrimSpace(stdout) == "" {
		return nil
	}
	var evs []map[string]any
	if err := decodeJSON(stdout, &evs); err != nil {
		t.Fatalf("mctest: listevents --json: %v", err)
	}
	return evs
}

// decodeJSON decodes the JSON value that starts at the first '[' or '{' of
// out (meshctrl may print other lines first) and reports meshctrl's text if
// there is none.
func decodeJSON(out string, v any) error {
	i := strings.IndexAny(out, "[{")
	if i < 0 {
		return fmt.Errorf("no JSON in meshctrl output: %.300q", out)
	}
	dec := json.NewDecoder(strings.NewReader(out[i:]))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode meshctrl JSON: %w (output %.300q)", err, out)
	}
	return nil
}

func redact(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i+1 < len(out); i++ {
		if strings.EqualFold(out[i], "--loginpass") || strings.EqualFold(out[i], "--pass") {
			out[i+1] = "***"
		}
	}
	return out
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// shellJoin quotes words for /bin/sh.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
