// Package msh writes the .msh settings file that points an agent (the C
// agent or ours) at server-lite, and serves it at /meshsettings the way
// MeshCentral does, so an agent can be set up with no editing
// (control.md §7).
package msh

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/store"
)

// Settings are the values an agent needs.
type Settings struct {
	Group      store.Group
	ServerID   string // 96 upper-case hex
	MeshServer string // wss://127.0.0.1:PORT/agent.ashx
}

// Build returns the .msh text: a leading CRLF then key=value lines ending
// in CRLF, as MeshCentral writes them (the C agent trims a trailing CR
// itself, our agent must too).
func Build(s Settings) ([]byte, error) {
	id, err := s.Group.MeshIDBytes()
	if err != nil {
		return nil, err
	}
	name := strings.NewReplacer("\r", " ", "\n", " ").Replace(s.Group.Name)
	var b strings.Builder
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "MeshName=%s\r\n", name)
	fmt.Fprintf(&b, "MeshType=%d\r\n", store.MeshTypeAgent)
	fmt.Fprintf(&b, "MeshID=0x%s\r\n", strings.ToUpper(hex.EncodeToString(id)))
	fmt.Fprintf(&b, "ServerID=%s\r\n", strings.ToUpper(s.ServerID))
	fmt.Fprintf(&b, "MeshServer=%s\r\n", s.MeshServer)
	b.WriteString("ignoreProxyFile=1\r\n")
	return []byte(b.String()), nil
}

// Handler serves GET /meshsettings?id=<group id without "mesh//">. No login
// is needed, as in MeshCentral: the file holds no secret, only where the
// server is and which group to join.
func Handler(st *store.Store, serverID, meshServer string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		id := r.URL.Query().Get("id")
		if id == "" || len(id) > 100 {
			http.NotFound(w, r)
			return
		}
		g, err := st.Group(handshake.MeshIDPrefix + strings.TrimPrefix(id, handshake.MeshIDPrefix))
		if err != nil || g.MType != store.MeshTypeAgent {
			http.NotFound(w, r)
			return
		}
		b, err := Build(Settings{Group: g, ServerID: serverID, MeshServer: meshServer})
		if err != nil {
			http.Error(w, "bad group", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="meshagent.msh"`)
		w.Write(b)
	})
}
