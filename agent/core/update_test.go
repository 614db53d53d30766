package core

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/agent/update"
	"github.com/meshgo/meshagent/proto/agentupdate"
	"github.com/meshgo/meshagent/proto/handshake"
)

// Self-update through the control connection: MeshCentral's native update
// (12, then 13 and 14 nobody asked for) is refused; server-lite's offer
// (signed with the agent-server key the .msh pins) is downloaded in
// blocks; a connection cut mid-download leaves the binary untouched and
// the next connection's offer resumes; the agent then restarts into the
// new binary.
func TestSelfUpdateOverControlChannel(t *testing.T) {
	key, cert, _ := testKeys(t)
	dir := t.TempDir()
	self, _ := os.Executable()
	old, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "meshagent")
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	os.WriteFile(exe, old, 0o755)
	newer := append(bytes.Clone(old), []byte("build 2")...)
	h := sha512.Sum384(newer)
	offer, err := agentupdate.Sign(key, cert, "r1", agentupdate.Manifest{V: 1, Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Version: "2", Size: int64(len(newer)), SHA384: hex.EncodeToString(h[:]), Trial: 30})
	if err != nil {
		t.Fatal(err)
	}
	offerMsg, _ := json.Marshal(agentupdate.OfferMessage(offer))

	var mu sync.Mutex
	var states []string
	var agentHash []byte
	firstBlocks := 0
	restarted := make(chan struct{})
	fs := newFakeServer(t, "")
	fs.serve = func(ws *websocket.Conn, n int) {
		if n == 1 {
			// MeshCentral: ask the agent hash, then push a native update.
			ws.WriteMessage(websocket.BinaryMessage, handshake.EncodeRequest(handshake.CmdAgentHash, 0, nil))
			ws.WriteMessage(websocket.BinaryMessage, handshake.EncodeRequest(handshake.CmdAgentUpdate, 0, nil))
			ws.WriteMessage(websocket.BinaryMessage, handshake.EncodeRequest(handshake.CmdAgentUpdateBlock, 1, []byte("MZ not asked for")))
		}
		ws.WriteMessage(websocket.TextMessage, offerMsg)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if handshake.IsJSON(msg) {
				if m, err := agentupdate.ParseMessage(msg); err == nil && m.Op == agentupdate.OpStatus {
					mu.Lock()
					states = append(states, m.State+":"+m.Msg)
					mu.Unlock()
				}
				continue
			}
			if cmd, _ := handshake.Command(msg); cmd == handshake.CmdAgentHash {
				_, _, p, _ := handshake.DecodeRequest(msg)
				mu.Lock()
				agentHash = p
				mu.Unlock()
				continue
			}
			r, err := agentupdate.DecodeRequest(msg)
			if err != nil {
				continue
			}
			if n == 1 {
				if firstBlocks == 3 {
					return // cut mid-download
				}
				firstBlocks++
			}
			end := min(uint64(len(newer)), r.Offset+agentupdate.BlockSize)
			ws.WriteMessage(websocket.BinaryMessage, agentupdate.EncodeBlock(r.Offset, newer[r.Offset:end]))
		}
	}
	sid := handshake.NodeID(&key.PublicKey)
	u, err := update.New(update.Config{Exe: exe, DataDir: dir, Version: "1", Service: "meshagent", Logger: slog.Default(),
		Spawn: func(string, []string) error {
			st, _ := update.ReadState(dir)
			st.Watchdog = 1
			return update.WriteState(dir, st)
		},
		Restart: func() { close(restarted) }})
	if err != nil {
		t.Fatal(err)
	}
	r := startAgent(t, fs.msh(sid[:]), dir, func(c *Config) { c.Updates = u })
	r.wait(t, EventAuthenticated)
	r.wait(t, EventDisconnected) // the cut
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, old) {
		t.Fatal("binary changed by a cut download")
	}
	select {
	case <-restarted:
	case <-time.After(60 * time.Second):
		mu.Lock()
		t.Fatalf("no restart; statuses %v", states)
	}
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, newer) {
		t.Error("new binary not in place")
	}
	// The "restarting:" status goes out as the restart begins and may
	// reach the server just after Restart ran (seen once under wine).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := strings.Contains(strings.Join(states, "|"), "restarting:")
		mu.Unlock()
		if got {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(agentHash, zeroHash[:]) {
		t.Errorf("answer to MeshCentral's 12: %x, want the zero hash", agentHash)
	}
	all := strings.Join(states, "|")
	if !strings.Contains(all, "resuming at") || !strings.Contains(all, "restarting:") {
		t.Errorf("statuses %s", all)
	}
	for _, s := range states {
		if strings.HasPrefix(s, "refused") || strings.HasPrefix(s, "failed") {
			t.Errorf("status %s", s)
		}
	}
}
