package adminapi_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/relay"
)

// tunnelAgent answers tunnel requests as an agent does: it dials the relay
// URL it was given (resolved against agent.ashx) and echoes every frame.
// Each tunnel value it received is sent on values.
func (e *probeEnv) tunnelAgent(conn *simagent.Conn) <-chan string {
	values := make(chan string, 16)
	base := strings.TrimSuffix(e.app.AgentURL(), "/agent.ashx")
	go func() {
		for {
			_, b, err := conn.WS.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if !handshake.IsJSON(b) || json.Unmarshal(b, &m) != nil || m["action"] != "msg" || m["type"] != "tunnel" {
				continue
			}
			v, _ := m["value"].(string)
			select {
			case values <- v:
			default:
			}
			go func() {
				ws, err := dialWS(base+strings.TrimPrefix(v, "*"), nil)
				if err != nil {
					return
				}
				defer ws.Close()
				for {
					typ, data, err := ws.ReadMessage()
					if err != nil {
						return
					}
					if string(data) == "c" {
						continue
					}
					if ws.WriteMessage(typ, data) != nil {
						return
					}
				}
			}()
		}
	}()
	return values
}

// relayUser opens the user's end of a relay for pairing id and returns it
// once paired ("c" read), or an error.
func (e *probeEnv) relayUser(cookie, nodeID, id string, proto int) (*websocket.Conn, error) {
	u := fmt.Sprintf("%s/meshrelay.ashx?browser=1&p=%d&nodeid=%s&id=%s&auth=%s", e.url, proto, url.QueryEscape(nodeID), id, cookie)
	ws, err := dialWS(u, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("before pairing: %w", err)
	}
	if string(b) != "c" {
		ws.Close()
		return nil, fmt.Errorf("first frame %q", b)
	}
	ws.SetReadDeadline(time.Time{})
	e.t.Cleanup(func() { ws.Close() })
	return ws, nil
}

// openTunnel runs meshctrl's sequence: authcookie, the tunnel request,
// then the user's end of the relay; it returns the paired user end.
func (e *probeEnv) openTunnel(c *ctl, nodeID string, proto int) *websocket.Conn {
	e.t.Helper()
	ck := c.do(map[string]any{"action": "authcookie"})
	id := relay.NewID()
	r := c.do(map[string]any{"action": "msg", "type": "tunnel", "nodeid": nodeID,
		"value": fmt.Sprintf("*/meshrelay.ashx?p=%d&nodeid=%s&id=%s&rauth=%s", proto, nodeID, id, ck["rcookie"])})
	if r["result"] != "OK" {
		e.t.Fatalf("tunnel request: %v", r)
	}
	ws, err := e.relayUser(ck["cookie"].(string), nodeID, id, proto)
	if err != nil {
		e.t.Fatalf("relay: %v", err)
	}
	echo(e.t, ws, "hello")
	return ws
}

// echo checks that the relay still answers.
func echo(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := relayEcho(ws, s); err != nil {
		t.Fatalf("relay echo: %v", err)
	}
}

func relayEcho(ws *websocket.Conn, s string) error {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		return err
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	_, b, err := ws.ReadMessage()
	if err != nil {
		return err
	}
	if string(b) != s {
		return fmt.Errorf("echo %q", b)
	}
	return nil
}

// relayClosed reports whether the relay end is closed within d.
func relayClosed(ws *websocket.Conn, d time.Duration) bool {
	ws.SetReadDeadline(time.Now().Add(d))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if ok := asTimeout(err, &ne); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
}

func asTimeout(err error, t *interface{ Timeout() bool }) bool {
	if x, ok := err.(interface{ Timeout() bool }); ok {
		*t = x
		return true
	}
	return false
}

// relayEnv: admin, bob with full rights on the default group, one agent
// there that answers tunnels.
func relayEnv(t *testing.T) (*probeEnv, *ctl, string) {
	e := newProbeEnv(t, nil)
	admin := e.login(e.admin, e.pass)
	admin.adduser("bob", "bob-pw-1")
	if r := admin.do(map[string]any{"action": "addmeshuser", "meshid": e.app.DefaultGroup.ID, "usernames": []any{"bob"}, "meshadmin": 0x8 | 0x100000}); !strings.HasPrefix(fmt.Sprint(r["result"]), "Added") {
		t.Fatalf("addmeshuser: %v", r)
	}
	node, conn := e.enroll(e.app.DefaultGroup.ID, "dev", nil)
	e.tunnelAgent(conn)
	return e, admin, node
}

// TestProbeRevocation is finding 5: deleting a user, removing a login
// token, or cutting rights ends every session made from them, relays
// included, and a cookie made with a removed token stops working.
func TestProbeRevocation(t *testing.T) {
	t.Run("deleteuser ends relays", func(t *testing.T) {
		e, admin, node := relayEnv(t)
		bob := e.login("bob", "bob-pw-1")
		term := e.openTunnel(bob, node, session.ProtoTerminal)
		if r := admin.do(map[string]any{"action": "deleteuser", "userid": "user//bob"}); r["result"] != "ok" {
			t.Fatalf("deleteuser: %v", r)
		}
		if !relayClosed(term, 3*time.Second) {
			t.Error("relay of the deleted user still open")
		}
		if !bob.closed(3 * time.Second) {
			t.Error("control session of the deleted user still open")
		}
	})
	t.Run("rights removed end relays", func(t *testing.T) {
		e, admin, node := relayEnv(t)
		bob := e.login("bob", "bob-pw-1")
		term := e.openTunnel(bob, node, session.ProtoTerminal)
		r := admin.do(map[string]any{"action": "addmeshuser", "meshid": e.app.DefaultGroup.ID, "usernames": []any{"bob"}, "remove": true})
		if !strings.HasPrefix(fmt.Sprint(r["result"]), "Removed") {
			t.Fatalf("remove: %v", r)
		}
		if !relayClosed(term, 3*time.Second) {
			t.Error("relay kept after the rights were removed")
		}
	})
	t.Run("removed token ends cookie, session and relay", func(t *testing.T) {
		e, _, node := relayEnv(t)
		bob := e.login("bob", "bob-pw-1")
		tok := bob.do(map[string]any{"action": "createLoginToken", "name": "ci"})
		tu, tp := tok["tokenUser"].(string), tok["tokenPass"].(string)
		// A session cookie from a form login with the token.
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := hc.PostForm("https://"+e.app.Addr()+"/login", url.Values{"username": {tu}, "password": {tp}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var xid string
		for _, ck := range resp.Cookies() {
			if ck.Name == "xid" {
				xid = ck.Value
			}
		}
		if resp.StatusCode != 200 || xid == "" {
			t.Fatalf("token form login: %d", resp.StatusCode)
		}
		h := http.Header{}
		h.Set("Cookie", "xid="+xid)
		viaCookie, msg := e.tryLogin("", h)
		if viaCookie == nil {
			t.Fatalf("cookie login: %s", msg)
		}
		viaToken := e.login(tu, tp)
		term := e.openTunnel(viaToken, node, session.ProtoTerminal)
		term2 := e.openTunnel(viaCookie, node, session.ProtoTerminal)
		other := e.openTunnel(bob, node, session.ProtoTerminal) // password session: stays
		if r := bob.do(map[string]any{"action": "loginTokens", "remove": []any{tu}}); r["loginTokens"] == nil {
			t.Fatalf("loginTokens remove: %v", r)
		}
		if !relayClosed(term, 3*time.Second) || !relayClosed(term2, 3*time.Second) {
			t.Error("relay made with the removed token still open")
		}
		if !viaToken.closed(3*time.Second) || !viaCookie.closed(3*time.Second) {
			t.Error("control session made with the removed token still open")
		}
		if c, _ := e.tryLogin("", h); c != nil {
			t.Error("session cookie made with the removed token still accepted")
		}
		echo(t, other, "still here")
		if _, err := bob.try(map[string]any{"action": "serverinfo"}, 5*time.Second); err != nil {
			t.Errorf("password session after token removal: %v", err)
		}
	})
}

// TestProbeRelayPairingSquat is finding 6: a user who learns a pending
// relay id and connects to it first, or second, must not spoil the
// rightful user's pairing.
func TestProbeRelayPairingSquat(t *testing.T) {
	e, admin, node := relayEnv(t)
	admin.adduser("mallory", "mallory-pw")
	mal := e.login("mallory", "mallory-pw")
	bob := e.login("bob", "bob-pw-1")
	for _, squatFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("squatter first %v", squatFirst), func(t *testing.T) {
			mck := mal.do(map[string]any{"action": "authcookie"})["cookie"].(string)
			bck := bob.do(map[string]any{"action": "authcookie"})
			id := relay.NewID()
			squat := make(chan error, 1)
			start := func() {
				go func() {
					ws, err := e.relayUser(mck, node, id, 1)
					if err == nil {
						ws.Close()
						err = fmt.Errorf("squatter paired")
					} else {
						err = nil
					}
					squat <- err
				}()
				time.Sleep(200 * time.Millisecond)
			}
			if squatFirst {
				start()
			}
			r := bob.do(map[string]any{"action": "msg", "type": "tunnel", "nodeid": node,
				"value": fmt.Sprintf("*/meshrelay.ashx?p=1&nodeid=%s&id=%s&rauth=%s", node, id, bck["rcookie"])})
			if r["result"] != "OK" {
				t.Fatalf("tunnel: %v", r)
			}
			time.Sleep(300 * time.Millisecond) // the agent end waits now
			if !squatFirst {
				start()
			}
			ws, err := e.relayUser(bck["cookie"].(string), node, id, 1)
			if err != nil {
				t.Fatalf("rightful user's end: %v", err)
			}
			echo(t, ws, "mine")
			ws.Close()
			if err := <-squat; err != nil {
				t.Error(err)
			}
		})
	}
}

// TestProbeTunnelProtocolCheck is finding 7: a user with terminal but not
// file rights asks for a tunnel with p=5&p=1 (or p=1&%70=5): the server
// refuses it instead of forwarding it, and an accepted tunnel reaches the
// agent with exactly one p, the one checked.
func TestProbeTunnelProtocolCheck(t *testing.T) {
	e := newProbeEnv(t, nil)
	admin := e.login(e.admin, e.pass)
	admin.adduser("term", "term-pw-1")
	rights := session.RightRemoteControl | session.RightNoFiles
	admin.do(map[string]any{"action": "addmeshuser", "meshid": e.app.DefaultGroup.ID, "usernames": []any{"term"}, "meshadmin": rights})
	node, conn := e.enroll(e.app.DefaultGroup.ID, "dev", nil)
	values := e.tunnelAgent(conn)
	u := e.login("term", "term-pw-1")
	for _, tc := range []struct {
		query string
		ok    bool
	}{
		{"p=5&p=1", false},
		{"p=1&p=5", false},
		{"p=1&%70=5", false},
		{"p=5", false},
		{"p=1x", false},
		{"p=10", false},
		{"p=1", true},
	} {
		v := fmt.Sprintf("*/meshrelay.ashx?%s&nodeid=%s&id=%s", tc.query, node, relay.NewID())
		r := u.do(map[string]any{"action": "msg", "type": "tunnel", "nodeid": node, "value": v})
		if got := r["result"] == "OK"; got != tc.ok {
			t.Errorf("%s: result %v, want ok=%v", tc.query, r["result"], tc.ok)
		}
		if tc.ok {
			select {
			case got := <-values:
				q, _ := url.ParseQuery(strings.TrimPrefix(got, "*/meshrelay.ashx?"))
				if len(q["p"]) != 1 || q.Get("p") != "1" {
					t.Errorf("agent got %q", got)
				}
			case <-time.After(5 * time.Second):
				t.Error("accepted tunnel not forwarded")
			}
		}
	}
	select {
	case v := <-values:
		t.Errorf("a refused tunnel reached the agent: %q", v)
	default:
	}
}
