package core

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
	}{
		{"admin files", session.RightAdmin, "5", 0, true},
		{"remote control files", session.RightRemoteControl, "5", 0, true},
		{"no files right", session.RightRemoteControl | session.RightNoFiles, "5", 0, false},
		{"view-only user asks for files", session.RightRemoteViewOnly, "5", 0, false},
		{"files prompt with nobody to ask", session.RightAdmin, "5", session.ConsentFilesPrompt, false},
		{"protocol without handler", session.RightAdmin, "77", 0, false},
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
				ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"options","consent":0}`))
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
			})
			fs.post = [][]byte{tunnel}
			key, _, _ := testKeys(t)
			sid := handshake.NodeID(&key.PublicKey)
			// No script host: the agent routes tunnels natively.
			var run atomic.Pointer[agentRun]
			listed := make(chan []OpenSession, 1)
			r := startAgent(t, fs.msh(sid[:]), t.TempDir(), func(c *Config) {
				c.Host = nil
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
				if info.UserID != "user//alice" || info.Protocol != 5 || info.SessionID != "sess-1" || string(info.Options) != `{"type":"options","consent":0}` {
					t.Errorf("handler got %+v", info)
				}
				if len(end.frames) == 0 || string(end.frames[0].Data) != "echo:ping-data" || !end.frames[0].Binary {
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
