package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/agent/files"
	"github.com/meshgo/meshagent/agent/script"
	"github.com/meshgo/meshagent/agent/terminal"
	"github.com/meshgo/meshagent/internal/memtrim"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/webrtc"
	"github.com/meshgo/meshagent/scripts"
)

// scriptHost ties the script runtime to the agent: the runtime sends JSON
// and opens tunnels through the agent, which exists only after the host is
// made, hence the late binding.
type scriptHost struct {
	host        *script.Host
	defaultCore []byte
	agent       *core.Agent
}

func newScriptHost(log *slog.Logger, settings *core.MSH, mshPath string, id *core.Identity, dataDir string, us *userSession) *scriptHost {
	s := &scriptHost{defaultCore: scripts.DefaultCore}
	srv, _ := settings.Servers()
	url := ""
	if len(srv) > 0 {
		url = srv[0].URL
	}
	s.host = script.New(script.Config{
		Send:        func(msg []byte) error { return s.agent.SendJSON(msg) },
		OpenTunnel:  func(req []byte) error { return s.agent.OpenTunnel(req) },
		Tunnels:     func() []script.Tunnel { return scriptTunnels(s.agent.Sessions()) },
		Clipboard:   us.clipboard(),
		Notify:      us.notifier(),
		RunAsUser:   us.runAsUser(),
		PowerAction: powerAction(log),
		SetSetting: func(key, value string, remove bool) error {
			return core.EditMSHFile(mshPath, key, value, remove)
		},
		Uninstall: uninstallSelf(log),
		Logger:    log,
		Agent: script.AgentInfo{
			NodeID: id.NodeIDString(), ServerURL: url, MeshID: settings.Get(core.MSHMeshID),
			AgentID: int(core.DefaultAgentID()), Version: version, DataDir: dataDir,
			Caps:        coreCaps(),
			CapsNow:     coreCaps,
			Settings:    settings.Map(),
			ServiceName: runningAsService,
		},
	})
	if memGovernor != nil {
		memGovernor.LeanWhen(s.host.Quiet)
	}
	return s
}

// coreCaps is what the core reports in coreinfo: terminal, files and
// console, plus desktop where a desktop can be served, so MeshCentral's
// web UI shows the Desktop tab (control.md §4.10).
func coreCaps() int {
	caps := handshake.CapTerminal | handshake.CapFiles | handshake.CapConsole
	if desktop.Available() {
		caps |= handshake.CapDesktop
	}
	return int(caps)
}

// scriptTunnels gives the script API's tunnel list the core's registry of
// open sessions.
func scriptTunnels(open []core.OpenSession) []script.Tunnel {
	out := make([]script.Tunnel, len(open))
	for i, o := range open {
		out[i] = script.Tunnel{ID: o.ID, Protocol: o.Protocol, Kind: o.Kind, UserID: o.UserID,
			Username: o.Username, RemoteAddr: o.RemoteAddr, Started: o.Started}
	}
	return out
}

// sessionHandlers maps relay protocols to the capability packages, each
// with its own WebRTC upgrade policy.
// agent gives the handlers the agent, made after them, for the server's
// event log.
func sessionHandlers(log *slog.Logger, agent func() *core.Agent, us *userSession, dataDir string) map[int]core.Session {
	term := core.Session{Serve: func(ctx context.Context, ch session.Channel, info session.Info) error {
		return terminal.Serve(ctx, ch, info, terminal.Options{Logger: log})
	}}
	fileSession := core.Session{Serve: func(ctx context.Context, ch session.Channel, info session.Info) error {
		serverLog := func(msgid int, args []any, msg string) { agent().ServerLog(info, msgid, args, msg) }
		return files.Serve(ctx, ch, info, files.Options{Logger: log, ServerLog: serverLog})
	}, WebRTC: files.WebRTC}
	return map[int]core.Session{
		session.ProtoTerminal:   term,
		session.ProtoPowerShell: term,
		session.ProtoUserShell:  term,
		session.ProtoUserPS:     term,
		session.ProtoFiles:      fileSession,
		// The user's session: directly, or through a session worker when
		// the agent is the Windows service (usersession_*.go).
		session.ProtoDesktop: {Serve: func(ctx context.Context, ch session.Channel, info session.Info) error {
			return us.serveDesktop(ctx, ch, info, desktop.Options{Logger: log, StateDir: dataDir,
				LogEvent: func(id int) { agent().LogEvent(info, id) }})
		}, WebRTC: desktop.WebRTC},
		// Protocol 10 is an HTTP download on its own tunnel: it stays on
		// the relay, as before.
		session.ProtoFileTransfer: {Serve: fileSession.Serve},
	}
}

// trimAfterActivity returns an event hook that gives memory back to the
// OS once start-up or a session's burst of work has settled, so an idle
// agent stays small. It trims once per quiet period, never periodically:
// paged-out code the agent still needs costs a fault to bring back. A
// session that starts while a trim is still pending trims at once
// (trimPolicy), before its own work.
func trimAfterActivity() func(core.Event) {
	var mu sync.Mutex
	var t *time.Timer
	var p trimPolicy
	return func(e core.Event) {
		mu.Lock()
		act := p.event(e.Kind, time.Now())
		switch act {
		case trimArm:
			if t != nil {
				t.Stop()
			}
			t = time.AfterFunc(trimQuiet, func() {
				mu.Lock()
				p.trimmed(time.Now())
				mu.Unlock()
				memtrim.Trim()
			})
		case trimNow:
			t.Stop()
		}
		mu.Unlock()
		// Outside the lock, as the timer's trim is: a trim is a forced
		// collection, and other sessions' events must not wait for it.
		if act == trimNow {
			memtrim.Trim()
		}
	}
}

// trimQuiet is how long the agent waits after activity before it trims.
const trimQuiet = 5 * time.Second

// trimAction is what trimPolicy decides for one event.
type trimAction int

const (
	trimNone trimAction = iota
	trimArm             // (re)start the quiet-period timer
	trimNow             // stop the pending timer and trim at once
)

// trimPolicy decides when the agent trims. Start-up, authentication and a
// session's end arm a trim trimQuiet later. A session that starts while
// that trim is pending trims at once instead, so what start-up or the last
// session left resident (the heap's free pages, the executable's pages
// mapped meanwhile) does not add to the new session's peak: a download
// started 0.1 s after an upload ended peaked at 14.2-14.4 MB with it and
// 15.7 MB without (interop BenchmarkSessions, release build, one run
// without). At most one such trim per trimQuiet, so a burst of short
// sessions does not page the agent's code out for each of them.
type trimPolicy struct {
	pending  bool
	lastTrim time.Time
}

func (p *trimPolicy) event(k core.EventKind, now time.Time) trimAction {
	switch k {
	case core.EventCoreStarted, core.EventAuthenticated, core.EventSessionEnded:
		p.pending = true
		return trimArm
	case core.EventSessionStarted:
		if p.pending && (p.lastTrim.IsZero() || now.Sub(p.lastTrim) >= trimQuiet) {
			p.trimmed(now)
			return trimNow
		}
	}
	return trimNone
}

// trimmed records a trim done at now.
func (p *trimPolicy) trimmed(now time.Time) {
	p.pending = false
	p.lastTrim = now
}

// Settings (.msh keys) for the WebRTC upgrade of desktop and files
// sessions. MeshCentral gives browsers its settings.webrtcConfig; an agent
// gets the same ICE servers from its .msh. WebRTCLoopbackOnly=1 keeps ICE
// on 127.0.0.1 (tests).
const (
	mshWebRTCICEServers   = "WebRTCICEServers"   // JSON array of {urls, username, credential}
	mshWebRTCLoopbackOnly = "WebRTCLoopbackOnly" // "1": loopback candidates only
	mshWebRTCDisabled     = "WebRTCDisabled"     // "1": never answer offers
)

// mshSessionWorker "1" makes a Windows agent that is not LocalSystem use
// the service's session-worker route anyway (usersession_windows.go).
const mshSessionWorker = "SessionWorker"

// sessionUpgrader returns the wrapper that lets a client move a session
// whose handler allows it onto a WebRTC data channel, or nil when disabled.
func sessionUpgrader(log *slog.Logger, settings *core.MSH) (func(session.Channel, session.UpgradePolicy) session.Channel, error) {
	if settings.Get(mshWebRTCDisabled) == "1" {
		return nil, nil
	}
	var ice []webrtc.ICEServer
	if v := settings.Get(mshWebRTCICEServers); v != "" {
		if err := json.Unmarshal([]byte(v), &ice); err != nil {
			return nil, fmt.Errorf("%s: %w", mshWebRTCICEServers, err)
		}
	}
	loopback := settings.Get(mshWebRTCLoopbackOnly) == "1"
	return func(relay session.Channel, p session.UpgradePolicy) session.Channel {
		return webrtc.Upgradable(relay, webrtc.Config{ICEServers: ice, LoopbackOnly: loopback, Logger: log, FragmentBinary: p.FragmentBinary})
	}, nil
}
