package core

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/script"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
)

// relayEnd is what a test relay saw of the agent's side of a session.
type relayEnd struct {
	frames []session.Frame
	closed bool
}

// TestTunnelThroughRelay drives a tunnel request end to end: the agent
// dials the relay on the control server with the pinned certificate,
// waits for "c", reads options and the protocol, checks rights and runs
// the handler; refused sessions never reach a handler.
func TestTunnelThroughRelay(t *testing.T) {
	tests := []struct {
		name    string
		rights  uint32
		proto   string
		consent uint32
		served  bool
		// consent: the local user's scripted answer (nil: no UI), the
		// server's soptions, who is logged in, and what must be seen.
		ui *scriptedUI
		// options: the viewer's options message (default without tsid);
		// askedIn: the session the UI must be told to ask in ("" none).
		options, askedIn string
		soptions         string
		users            []string
		logID            int    // a log entry with this msgid must arrive
		console          string // a console frame containing this must arrive
	}{
		{name: "admin files", rights: session.RightAdmin, proto: "5", served: true, logID: consent.MsgFilesQuiet},
		{name: "remote control files", rights: session.RightRemoteControl, proto: "5", served: true},
		{name: "no files right", rights: session.RightRemoteControl | session.RightNoFiles, proto: "5"},
		{name: "view-only user asks for files", rights: session.RightRemoteViewOnly, proto: "5"},
		{name: "files prompt with nobody to ask", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			users: []string{"bob"}, logID: consent.MsgFilesRejected, console: "cannot display a user dialog box"},
		{name: "files prompt accepted", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.Accepted}, users: []string{"bob"}, served: true, logID: consent.MsgFilesAccepted, console: consent.Waiting},
		{name: "files prompt denied", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.Denied}, users: []string{"bob"}, logID: consent.MsgFilesRejected, console: `"msg":"denied","msgid":2`},
		{name: "files prompt timed out", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.TimedOut}, logID: consent.MsgFilesRejected, console: `"msg":"timeout","msgid":2`},
		{name: "files prompt timed out, accept on timeout", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.TimedOut}, soptions: `{"consentAutoAccept":true}`, served: true, logID: consent.MsgFilesAccepted},
		{name: "files prompt, auto-accept with nobody logged in", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.Denied}, soptions: `{"consentAautoAcceptIfFileNoUser":true}`, served: true, logID: consent.MsgFilesQuiet},
		{name: "files prompt, auto-accept but bob is logged in", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.Denied}, users: []string{"bob"}, soptions: `{"consentAutoAcceptIfNoUser":true}`, logID: consent.MsgFilesRejected},
		{name: "files prompt in the viewer's chosen session", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesPrompt,
			ui: &scriptedUI{answer: consent.Accepted}, users: []string{"bob"}, options: `{"type":"options","consent":0,"tsid":3}`, askedIn: "3",
			served: true, logID: consent.MsgFilesAccepted, console: consent.Waiting},
		{name: "files notification", rights: session.RightAdmin, proto: "5", consent: session.ConsentFilesNotify,
			ui: &scriptedUI{}, served: true, logID: consent.MsgFilesNotified},
		{name: "protocol without handler", rights: session.RightAdmin, proto: "77"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			served := make(chan session.Info, 1)
			relaySaw := make(chan relayEnd, 1)
			fs := newFakeServer(t, "")
			mux := http.NewServeMux()
			mux.HandleFunc("/agent.ashx", fs.handle)
			mux.HandleFunc("/meshrelay.ashx", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("rauth") != "cookie$x@y" {
					t.Errorf("rauth arrived as %q", r.URL.Query().Get("rauth"))
				}
				ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer ws.Close()
				ws.WriteMessage(websocket.TextMessage, []byte("c"))
				ws.WriteMessage(websocket.TextMessage, []byte(cmp.Or(tc.options, `{"type":"options","consent":0}`)))
				ws.WriteMessage(websocket.TextMessage, []byte(tc.proto))
				ws.WriteMessage(websocket.BinaryMessage, []byte("ping-data"))
				var end relayEnd
				ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					typ, data, err := ws.ReadMessage()
					if err != nil {
						end.closed = !strings.Contains(err.Error(), "timeout")
						break
					}
					end.frames = append(end.frames, session.Frame{Binary: typ == websocket.BinaryMessage, Data: data})
				}
				relaySaw <- end
			})
			fs.srv.Config.Handler = mux
			tunnel, _ := json.Marshal(map[string]any{
				"action": "msg", "type": "tunnel", "value": "*/meshrelay.ashx?p=5&id=T1&rauth=cookie$x@y",
				"rights": tc.rights, "consent": tc.consent, "userid": "user//alice", "sessionid": "sess-1",
				"username": "alice", "realname": "Alice A", "soptions": json.RawMessage(cmp.Or(tc.soptions, "{}")),
			})
			fs.post = [][]byte{tunnel}
			key, _, _ := testKeys(t)
			sid := handshake.NodeID(&key.PublicKey)
			// No script host: the agent routes tunnels natively.
			var run atomic.Pointer[agentRun]
			listed := make(chan []OpenSession, 1)
			r := startAgent(t, fs.msh(sid[:]), t.TempDir(), func(c *Config) {
				c.Host = nil
				if tc.ui != nil {
					c.ConsentUI = tc.ui
				}
				c.Presence = fixedPresence(tc.users)
				c.Sessions = map[int]Session{
					session.ProtoFiles: {Serve: func(ctx context.Context, ch session.Channel, info session.Info) error {
						defer ch.Close()
						for run.Load() == nil {
							time.Sleep(time.Millisecond)
						}
						listed <- run.Load().agent.Sessions()
						served <- info
						f, err := ch.Read(ctx)
						if err != nil {
							return err
						}
						return ch.Write(ctx, session.Frame{Binary: true, Data: append([]byte("echo:"), f.Data...)})
					}},
				}
			})
			run.Store(r)
			var end relayEnd
			select {
			case end = <-relaySaw:
			case <-time.After(15 * time.Second):
				t.Fatal("relay never saw the agent")
			}
			select {
			case info := <-served:
				if !tc.served {
					t.Fatal("a refused session reached its handler")
				}
				if info.UserID != "user//alice" || info.Protocol != 5 || info.SessionID != "sess-1" || string(info.Options) != cmp.Or(tc.options, `{"type":"options","consent":0}`) {
					t.Errorf("handler got %+v", info)
				}
				if n := len(end.frames); n == 0 || string(end.frames[n-1].Data) != "echo:ping-data" || !end.frames[n-1].Binary {
					t.Errorf("relay got %v", end.frames)
				}
				// The one session registry lists the session while its
				// handler runs.
				l := <-listed
				if len(l) != 1 || l[0].Protocol != 5 || l[0].Kind != "files" || l[0].UserID != "user//alice" {
					t.Errorf("registry while serving: %+v", l)
				}
			default:
				if tc.served {
					t.Fatalf("session not served; relay saw %v", end.frames)
				}
				if !end.closed {
					t.Error("refused session left the relay socket open")
				}
			}
			if tc.console != "" {
				found := false
				for _, f := range end.frames {
					found = found || !f.Binary && strings.Contains(string(f.Data), tc.console)
				}
				if !found {
					t.Errorf("viewer never saw a console message with %q: %v", tc.console, end.frames)
				}
			}
			if tc.logID != 0 {
				want := fmt.Sprintf(`"msgid":%d`, tc.logID)
				deadline := time.Now().Add(5 * time.Second)
				for saw := false; !saw; time.Sleep(20 * time.Millisecond) {
					_, rec, _ := fs.snapshot()
					for _, m := range rec {
						saw = saw || strings.Contains(string(m), `"action":"log"`) && strings.Contains(string(m), want)
					}
					if !saw && time.Now().After(deadline) {
						t.Fatalf("server never logged %s", want)
					}
				}
			}
			if tc.ui != nil {
				wantAsked := tc.consent&session.ConsentFilesPrompt != 0 && !strings.Contains(tc.soptions, "NoUser") || strings.Contains(tc.name, "bob")
				if asked := tc.ui.asked.Load() > 0; asked != wantAsked {
					t.Errorf("prompt shown = %v, want %v", asked, wantAsked)
				}
				if got := tc.ui.askedIn.Load(); (got == nil) != (tc.askedIn == "") || got != nil && *got != tc.askedIn {
					t.Errorf("prompt asked in session %v, want %q (the viewer's tsid)", got, tc.askedIn)
				}
				if tc.consent&session.ConsentFilesNotify != 0 {
					for deadline := time.Now().Add(5 * time.Second); tc.ui.notified.Load() == 0; time.Sleep(10 * time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatal("no notification shown")
						}
					}
					if m := tc.ui.lastNote.Load(); m == nil || *m != "Alice A started a remote file session." {
						t.Errorf("notification %v", m)
					}
				}
			}
			if !tc.served {
				return
			}
			// The server hears about the session: counts and audit log.
			deadline := time.Now().Add(5 * time.Second)
			var sawSessions, sawLog bool
			for time.Now().Before(deadline) && !(sawSessions && sawLog) {
				_, rec, _ := fs.snapshot()
				for _, m := range rec {
					sawSessions = sawSessions || strings.Contains(string(m), `"action":"sessions"`) && strings.Contains(string(m), `"user//alice":1`)
					sawLog = sawLog || strings.Contains(string(m), `"action":"log"`) && strings.Contains(string(m), "Started files session")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !sawSessions || !sawLog {
				t.Errorf("server saw sessions=%v log=%v", sawSessions, sawLog)
			}
			for deadline := time.Now().Add(5 * time.Second); len(r.agent.Sessions()) != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("registry after the session ended: %+v", r.agent.Sessions())
				}
			}
		})
	}
}

// scriptedUI is a consent.UI that answers as told: a stand-in for the
// person at the screen in core tests (the X11 UI itself is tested against
// Xvfb in agent/desktop, and end to end in interop/webui).
type scriptedUI struct {
	answer   consent.Answer
	asked    atomic.Int32
	notified atomic.Int32
	lastNote atomic.Pointer[string]
	askedIn  atomic.Pointer[string] // the session Ask was told to ask in
}

func (u *scriptedUI) Ask(ctx context.Context, p consent.Prompt) (consent.Answer, error) {
	u.asked.Add(1)
	if id, ok := consent.TSIDFrom(ctx); ok {
		s := fmt.Sprint(id)
		u.askedIn.Store(&s)
	}
	return u.answer, nil
}

func (u *scriptedUI) Notify(ctx context.Context, title, msg string) error {
	u.lastNote.Store(&msg)
	u.notified.Add(1)
	return nil
}

func (u *scriptedUI) ShowBar(string, func()) (consent.Bar, error) { return nil, consent.ErrNoUI }

type fixedPresence []string

func (p fixedPresence) Users() ([]string, []string, error) { return p, nil, nil }

// TestTunnelWithoutLiveCore: tunnel requests are served natively, so a
// session starts whether the JavaScript core is not running at all or is
// stuck in a turn that never yields (over its time budget), with the real
// script host.
func TestTunnelWithoutLiveCore(t *testing.T) {
	for _, tc := range []struct {
		name string
		core string
	}{
		{"core failed to start", "this is not JavaScript ("},
		{"core stuck in one turn", "for (;;) {}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t, "")
			mux := http.NewServeMux()
			mux.HandleFunc("/agent.ashx", fs.handle)
			echoed := make(chan string, 1)
			mux.HandleFunc("/meshrelay.ashx", func(w http.ResponseWriter, r *http.Request) {
				ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer ws.Close()
				ws.WriteMessage(websocket.TextMessage, []byte("c"))
				ws.WriteMessage(websocket.TextMessage, []byte("5"))
				ws.WriteMessage(websocket.BinaryMessage, []byte("hi"))
				ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, data, _ := ws.ReadMessage()
				echoed <- string(data)
			})
			fs.srv.Config.Handler = mux
			tunnel, _ := json.Marshal(map[string]any{"action": "msg", "type": "tunnel", "value": "*/meshrelay.ashx?p=5&id=T2",
				"rights": session.RightAdmin, "userid": "user//alice"})
			// 16 first: the agent starts its core, then the tunnel arrives.
			fs.post = [][]byte{handshake.EncodeRequest(handshake.CmdCoreOK, 0, nil), tunnel}
			key, _, _ := testKeys(t)
			sid := handshake.NodeID(&key.PublicKey)
			host := script.New(script.Config{Logger: slog.New(slog.DiscardHandler), TurnBudget: time.Minute,
				Send: func([]byte) error { return nil }})
			t.Cleanup(host.Close)
			startAgent(t, fs.msh(sid[:]), t.TempDir(), func(c *Config) {
				c.Host = host
				c.DefaultCore = []byte(tc.core)
				c.Sessions = map[int]Session{session.ProtoFiles: {Serve: func(ctx context.Context, ch session.Channel, info session.Info) error {
					defer ch.Close()
					f, err := ch.Read(ctx)
					if err != nil {
						return err
					}
					return ch.Write(ctx, session.Frame{Binary: true, Data: append([]byte("echo:"), f.Data...)})
				}}}
			})
			select {
			case got := <-echoed:
				if got != "echo:hi" {
					t.Fatalf("relay got %q", got)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the tunnel was not served")
			}
		})
	}
}
