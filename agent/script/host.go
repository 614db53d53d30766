// Package script hosts the agent's JavaScript core: one goja runtime on its
// own goroutine with an event loop, native modules reached with require(),
// and containment (per-turn time budget, heap watchdog, crash restart with
// backoff) so that a broken or hostile core can never take the agent down.
//
// The package API is Go-only: nothing outside agent/script sees goja, so the
// rest of the agent does not depend on the engine.
package script

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APIVersion is the version of the JavaScript surface described in
// scripts/README.md (require('mesh').version). Bump the minor number when
// adding functions, the major number when changing existing ones.
const APIVersion = "1.3"

// AgentInfo describes this agent to scripts (require('mesh').info).
type AgentInfo struct {
	NodeID    string            // MeshCentral @/$ base64 node id
	ServerURL string            // control channel URL
	MeshID    string            // device group id
	AgentID   int               // architecture number (control.md 8), e.g. 6 = Linux x86-64
	Caps      int               // coreinfo caps the core reports; 0 = 14 (terminal, files, console)
	Hostname  string            // device name
	Version   string            // agent version string
	DataDir   string            // where the agent keeps its state
	Settings  map[string]string // .msh keys
	// ServiceName is the service this agent process runs as ("" when it
	// runs in the foreground), for the console's `service status|restart`.
	ServiceName string
	// CapsNow, when set, gives the capabilities as they are now
	// (mesh.caps()): a desktop can appear after the agent started (an X
	// server or a Wayland session starting later), and the core then
	// re-advertises the Desktop capability. Nil: always Caps.
	CapsNow func() int
}

// Tunnel describes one open relay session, as require('tunnel').list()
// reports it.
type Tunnel struct {
	ID         int       // sequence number, unique while the agent runs
	Protocol   int       // relay protocol number (1 terminal, 2 desktop, 5 files, ...)
	Kind       string    // readable protocol name, e.g. "terminal"
	UserID     string    // e.g. "user//admin"
	Username   string    // may be empty
	RemoteAddr string    // the user's address as the server saw it
	Started    time.Time // when the session's handler started
}

// Clipboard reads and writes the desktop clipboard's text.
type Clipboard interface {
	Read(ctx context.Context) (string, error)
	Write(ctx context.Context, text string) error
}

// UserCommand is a command Config.RunAsUser runs as User.
type UserCommand struct {
	User    string
	File    string
	Args    []string
	Stdin   string
	Dir     string
	Timeout time.Duration
}

// UserCommandResult is what a UserCommand did.
type UserCommandResult struct {
	Stdout, Stderr      string
	Code                int
	TimedOut, Truncated bool
}

// Config wires a Host to the rest of the agent.
type Config struct {
	// Send transmits one JSON object to the server as a text frame on the
	// control channel. It must be safe to call from any goroutine and
	// return an error when disconnected.
	Send func(msg []byte) error
	// OpenTunnel hands a server {"action":"msg","type":"tunnel",...}
	// request to the native relay client.
	OpenTunnel func(req []byte) error
	// Tunnels lists the relay sessions open now (require('tunnel').list()).
	// It must be safe to call from any goroutine. Nil: scripts get an
	// error, never an empty list that would pretend nothing is open.
	Tunnels func() []Tunnel
	// PowerAction performs a power action (control.md 6.7 actiontype).
	// Nil disables power actions: scripts get an error instead. Kept
	// injectable so tests and development runs can never power off a host.
	PowerAction func(action int) error
	// ConsoleUser names the logged-in console user that runcommands with
	// runAsUser 1 or 2 runs as ("" when nobody is logged in). Nil: the
	// console user by agent/osuser's rule (the one terminals use too).
	// A hook for tests, which cannot log a user in.
	ConsoleUser func() (string, error)
	// Clipboard is the desktop clipboard the clipboard module (and so the
	// server's getclip/setclip) uses; cmd/meshagent gives it agent/desktop's
	// native X11 clipboard on Linux, which finds the display itself and so
	// works as a service with no DISPLAY. Nil: the platform's tools
	// (pbcopy/pbpaste, PowerShell, wl-clipboard/xclip/xsel with DISPLAY).
	Clipboard Clipboard
	// SetSetting writes key=value into the agent's .msh file, or removes
	// the key when remove is set (the console's `msh set|delete`); the
	// agent reads it at its next start. Nil: scripts get an error.
	SetSetting func(key, value string, remove bool) error
	// Uninstall starts the removal of the agent's own service, detached
	// so that it survives the service being stopped on the way, and
	// returns once it has started (MeshCentral's `uninstallagent`). Nil:
	// scripts get an error.
	Uninstall func() error
	// Notify shows a toast (kind "toast") or message box ("messagebox")
	// to the logged-in user and reports whether it was shown; cmd/meshagent
	// gives it agent/sessionworker's on Windows (through the session
	// worker when the agent is the service). Nil: the platform's tools
	// (osascript, msg.exe, notify-send).
	Notify func(ctx context.Context, kind, title, msg string) bool
	// RunAsUser runs proc.shell's {user} commands (runcommands' runAsUser)
	// somewhere else than in this process's own way: cmd/meshagent gives
	// it the Windows session worker when the agent is the service. Nil:
	// agent/osuser switches credentials for the child (Unix).
	RunAsUser func(ctx context.Context, c UserCommand) (UserCommandResult, error)
	Logger    *slog.Logger
	Agent     AgentInfo
	// MemoryLimit is the Go heap size (bytes of live objects, process-wide)
	// above which the running core is killed and restarted; 0 = 256 MiB.
	MemoryLimit uint64
	// TurnBudget is the longest one event-loop turn (a timer callback, one
	// delivered message, ...) may run before it is interrupted; 0 = 5 s.
	TurnBudget time.Duration
	// RestartDelay is the first back-off delay after a crash, doubled on
	// each further crash up to one minute; 0 = 1 s.
	RestartDelay time.Duration
}

const (
	defaultMemoryLimit  = 256 << 20
	defaultTurnBudget   = 5 * time.Second
	defaultRestartDelay = time.Second
	maxRestartDelay     = time.Minute
	// stableAfter: a core that ran this long without crashing resets the
	// back-off, so one crash a day does not end up delayed by a minute.
	stableAfter = time.Minute
	// inboxSize bounds queued server messages; beyond it messages are
	// dropped (and logged) rather than blocking the control channel.
	inboxSize = 512
)

// Host runs at most one script at a time and restarts it after crashes.
type Host struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	cur     *vm
	name    string
	src     []byte
	gen     uint64 // bumped by Start/Stop/Close; stale restarts are ignored
	delay   time.Duration
	closed  bool
	restart *time.Timer

	errMu     sync.Mutex // errorlog rate limit, see reportError
	errWindow time.Time
	errCount  int

	turning   atomic.Int32 // event-loop turns running now (0 or 1)
	lastTurn  atomic.Int64 // when the last turn ended, Unix nanoseconds
	lastCrash string       // the crash last reported for the current script; h.mu
}

const errorBurst = 20

// quietAfter is how long after its last turn the script runtime counts as
// quiet (see Quiet).
const quietAfter = time.Second

// Quiet reports whether no script turn is running and none ended within
// the last second. The agent's memory policy paces the collector for
// goja's allocation pattern only while the runtime is not quiet. It is
// cheap and safe to call from any goroutine.
func (h *Host) Quiet() bool {
	return h.turning.Load() == 0 && time.Now().UnixNano()-h.lastTurn.Load() > int64(quietAfter)
}

// New returns a Host with no script running.
func New(cfg Config) *Host {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = defaultMemoryLimit
	}
	if cfg.TurnBudget == 0 {
		cfg.TurnBudget = defaultTurnBudget
	}
	if cfg.RestartDelay == 0 {
		cfg.RestartDelay = defaultRestartDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Send == nil {
		cfg.Send = func([]byte) error { return errors.New("not connected") }
	}
	return &Host{cfg: cfg, log: cfg.Logger.With("component", "script"), delay: cfg.RestartDelay}
}

// Start (re)starts the runtime with src, replacing any running script. It
// returns an error only when src does not compile; runtime errors are
// reported to the server and handled by the restart policy.
func (h *Host) Start(name string, src []byte) error {
	prog, err := compile(name, src)
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("script host closed")
	}
	old := h.stopLocked()
	h.name, h.src = name, src
	h.lastCrash = ""
	h.delay = h.cfg.RestartDelay
	h.launchLocked(prog)
	h.mu.Unlock()
	if old != nil {
		old.wait()
	}
	return nil
}

// launchLocked starts a vm for the current script; h.mu held.
func (h *Host) launchLocked(prog *program) {
	v := newVM(h, h.gen, h.name, prog)
	h.cur = v
	go v.run()
}

// stopLocked stops the current vm and cancels pending restarts; h.mu held.
// It returns the stopped vm so the caller can wait for it unlocked.
func (h *Host) stopLocked() *vm {
	h.gen++
	if h.restart != nil {
		h.restart.Stop()
		h.restart = nil
	}
	v := h.cur
	h.cur = nil
	if v != nil {
		v.kill(errStopped)
	}
	return v
}

// Stop stops the script (the server cleared the core).
func (h *Host) Stop() {
	h.mu.Lock()
	old := h.stopLocked()
	h.name, h.src = "", nil
	h.mu.Unlock()
	if old != nil {
		old.wait()
	}
}

// Close stops the script for good; later Start calls fail.
func (h *Host) Close() {
	h.Stop()
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

// Running returns the name of the running (or restarting) script, "" if
// none.
func (h *Host) Running() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.name
}

// Deliver queues one JSON object from the server for the script. It never
// blocks: with no runtime up, or a full queue, the message is dropped and
// logged. msg is copied.
func (h *Host) Deliver(msg []byte) {
	h.mu.Lock()
	v := h.cur
	h.mu.Unlock()
	if v == nil {
		h.log.Warn("no script running, message dropped", "bytes", len(msg))
		return
	}
	m := append([]byte(nil), msg...)
	select {
	case v.inbox <- m:
	default:
		h.log.Warn("script inbox full, message dropped", "script", v.name, "bytes", len(msg))
	}
}

// exited is called by a vm's goroutine when it ends. Crashes of the current
// vm schedule a restart with exponential back-off.
func (h *Host) exited(v *vm, reason error, lived time.Duration) {
	if errors.Is(reason, errStopped) {
		return
	}
	h.mu.Lock()
	if h.cur != v || h.closed {
		h.mu.Unlock()
		return
	}
	h.cur = nil
	if lived > stableAfter {
		h.delay = h.cfg.RestartDelay
	}
	d := h.delay
	h.delay = min(h.delay*2, maxRestartDelay)
	h.log.Error("script crashed, restarting", "script", v.name, "err", reason, "in", d)
	gen := h.gen
	h.restart = time.AfterFunc(d, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.gen != gen || h.closed || h.src == nil {
			return
		}
		prog, err := compile(h.name, h.src)
		if err != nil { // cannot happen: it compiled at Start
			h.log.Error("recompile failed", "err", err)
			return
		}
		h.launchLocked(prog)
	})
	// A core that fails the same way on every restart (a core written for
	// another API fails at once, every time) is reported once, in one
	// line, not once per restart.
	why := crashText(v.name, reason)
	repeat := why == h.lastCrash
	h.lastCrash = why
	h.mu.Unlock()
	if repeat {
		return
	}
	// Outside h.mu: Send may block on the network, Deliver must not.
	h.reportError(fmt.Sprintf("%s; restarting in %s", why, d))
}

// meshcoreGlobals are names meshcore.js-style cores (MeshCentral's own)
// use that this agent's script API does not define.
var meshcoreGlobals = []string{"process", "Buffer", "MeshAgent", "_MSH", "setImmediate"}

// crashText says in one line why a core crashed; a core written for
// MeshCentral's meshcore.js API (the C agent's Duktape host) gets a line
// saying so, since that is the usual reason a pushed core fails here.
func crashText(name string, reason error) string {
	r := strings.Join(strings.Fields(fmt.Sprint(reason)), " ")
	for _, g := range meshcoreGlobals {
		if strings.Contains(r, "ReferenceError: "+g+" is not defined") || strings.Contains(r, fmt.Sprintf("module %q not found", g)) {
			return fmt.Sprintf("core %s failed: it is written for MeshCentral's meshcore.js API (%s), which this agent does not provide; "+
				"it runs cores written for its own script API (scripts/README.md) (%s)", name, g, r)
		}
	}
	return fmt.Sprintf("core %s crashed: %s", name, r)
}

// reportError sends an errorlog entry to the server (best effort). At most
// errorBurst entries per minute go out, so a core failing in a tight
// setInterval cannot flood the server's agent error log.
func (h *Host) reportError(text string) {
	now := time.Now()
	h.errMu.Lock()
	if now.Sub(h.errWindow) > time.Minute {
		h.errWindow, h.errCount = now, 0
	}
	h.errCount++
	n := h.errCount
	h.errMu.Unlock()
	if n > errorBurst {
		if n == errorBurst+1 {
			h.log.Warn("script error reports suppressed for the rest of the minute")
		}
		return
	}
	b := appendErrorLog(nil, text, now)
	if err := h.cfg.Send(b); err != nil {
		h.log.Debug("errorlog not sent", "err", err)
	}
}
