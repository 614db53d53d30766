package agentconn

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/store"
)

// FuzzHandle feeds arbitrary post-authentication messages from an agent to
// the server's message handling (binary commands and JSON): nothing an
// authenticated agent sends may crash the server.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"action":"coreinfo","value":"x","caps":7,"osdesc":"y","users":["a"],"root":true,"name":"n"}`,
		`{"action":"coreinfo","caps":-1}`,
		`{"action":"netinfo","netif2":{}}`,
		`{"action":"sysinfo","data":{"hash":"1"}}`,
		`{"action":"log","msg":"` + strings.Repeat("m", 5000) + `"}`,
		`{"action":"ping"}`, `{"action":`, `{}`, `{"action":1}`,
		"\x00\x0b\x00\x00", "\x00\x0b\x00\x00" + strings.Repeat("\x00", 48), "\x00\x0b\x00\x00\x01",
		"\x00\x0f", "\x00\x0ftag\x00\x00", "\x00\x0c\x00\x00", "\x00\x0e\x00\x01", "\x00", "", "\x03\xe8\x00\x00abc",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	st, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	set := &certs.Set{}
	srv := New(Config{Certs: set, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultCore: []byte("x")})

	conns := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := srv.upgrader.Upgrade(w, r, nil)
		if err == nil {
			conns <- ws
		}
	}))
	defer hs.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer client.Close()
	go func() {
		for {
			if _, _, err := client.ReadMessage(); err != nil {
				return
			}
		}
	}()
	c := &conn{s: srv, ws: <-conns, nodeID: "node//fuzz", remote: "127.0.0.1:1"}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c.mu.Lock()
		c.pushes = 0
		c.mu.Unlock()
		c.handle(msg)
	})
}
