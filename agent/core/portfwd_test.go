package core

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
)

// A tunnel request with tcpport is bridged to that port without protocol
// negotiation and counted as a "tcp" session; one that carries rights
// without remote control or relay (the control.ashx path) is refused
// before the agent connects to the target; a bad port is refused before
// the relay is dialled.
func TestPortForwardTunnel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	viewOnly := session.RightRemoteViewOnly
	relay := session.RightRelay
	tests := []struct {
		name    string
		rights  *uint32
		port    any
		echoed  bool
		dialled bool
	}{
		{"meshrelay.ashx request, no rights field", nil, port, true, true},
		{"port as text", nil, strconv.Itoa(port), true, true}, // as meshrelay.ashx passes the query
		{"relay right", &relay, port, true, true},
		{"view-only user over control.ashx", &viewOnly, port, false, true},
		{"port out of range", nil, 70000, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := accepted.Load()
			relaySaw := make(chan []session.Frame, 1)
			fs := newFakeServer(t, "")
			mux := http.NewServeMux()
			mux.HandleFunc("/agent.ashx", fs.handle)
			mux.HandleFunc("/meshrelay.ashx", func(w http.ResponseWriter, r *http.Request) {
				ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer ws.Close()
				ws.WriteMessage(websocket.TextMessage, []byte("c"))
				ws.WriteMessage(websocket.TextMessage, []byte(`{"ctrlChannel":"102938","type":"ping"}`)) // not data
				ws.WriteMessage(websocket.BinaryMessage, []byte("hello"))
				var frames []session.Frame
				ws.SetReadDeadline(time.Now().Add(3 * time.Second))
				for {
					typ, data, err := ws.ReadMessage()
					if err != nil {
						break
					}
					frames = append(frames, session.Frame{Binary: typ == websocket.BinaryMessage, Data: data})
					if typ == websocket.BinaryMessage && string(data) == "hello" {
						break
					}
				}
				relaySaw <- frames
			})
			fs.srv.Config.Handler = mux
			req := map[string]any{"action": "msg", "type": "tunnel", "value": "*/meshrelay.ashx?id=T2&rauth=x",
				"userid": "user//alice", "tcpport": tc.port}
			if tc.rights != nil {
				req["rights"] = *tc.rights
			}
			tunnel, _ := json.Marshal(req)
			fs.post = [][]byte{tunnel}
			key, _, _ := testKeys(t)
			sid := handshake.NodeID(&key.PublicKey)
			startAgent(t, fs.msh(sid[:]), t.TempDir(), func(c *Config) { c.Host = nil })
			var frames []session.Frame
			select {
			case frames = <-relaySaw:
				if !tc.dialled {
					t.Fatal("the agent dialled the relay for a bad request")
				}
			case <-time.After(5 * time.Second):
				if tc.dialled {
					t.Fatal("relay never saw the agent")
				}
				return
			}
			echoed := false
			for _, f := range frames {
				if !f.Binary && !strings.Contains(string(f.Data), "No rights for port forwarding") {
					t.Errorf("unexpected text frame %q", f.Data)
				}
				echoed = echoed || f.Binary && string(f.Data) == "hello"
			}
			if echoed != tc.echoed {
				t.Fatalf("echoed %v, want %v (frames %+v)", echoed, tc.echoed, frames)
			}
			if !tc.echoed {
				if accepted.Load() != before {
					t.Fatal("a refused forward connected to the target")
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			counted := false
			for time.Now().Before(deadline) && !counted {
				_, rec, _ := fs.snapshot()
				for _, m := range rec {
					counted = counted || strings.Contains(string(m), `"type":"tcp"`) && strings.Contains(string(m), `"user//alice":1`)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if !counted {
				t.Error("the server was not told of the tcp session")
			}
		})
	}
}
