package mctest

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ControlSend logs in to control.ashx as the administrator (x-meshauth,
// as meshctrl does) and sends msg, for the web UI's commands meshctrl has
// no verb for (uninstallagent, uploadagentcore, ...). It keeps the session
// open for linger so that the server acts on it before the logout, and
// returns the messages the server sent meanwhile.
func (s *Server) ControlSend(t testing.TB, msg map[string]any, linger time.Duration) []map[string]any {
	t.Helper()
	h := http.Header{}
	h.Set("x-meshauth", base64.StdEncoding.EncodeToString([]byte(s.user))+","+base64.StdEncoding.EncodeToString([]byte(s.pass)))
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second}
	ws, _, err := d.Dial(s.URL()+"/control.ashx", h)
	if err != nil {
		t.Fatalf("mctest: control.ashx: %v", err)
	}
	defer ws.Close()
	b, _ := json.Marshal(msg)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("mctest: control.ashx send: %v", err)
	}
	var got []map[string]any
	ws.SetReadDeadline(time.Now().Add(linger))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return got
		}
		var m map[string]any
		if json.Unmarshal(data, &m) == nil {
			got = append(got, m)
		}
	}
}
