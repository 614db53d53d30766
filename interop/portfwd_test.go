//go:build linux

package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/internal/mctest"
)

// target is a TCP server on loopback standing for the service a user
// forwards to (an sshd, a web server, RDP). It records what each
// connection received before its EOF.
type target struct {
	port  int
	mu    sync.Mutex
	conns int
	ends  chan targetEnd
}

type targetEnd struct {
	n   int64
	sum [32]byte
	err error
}

// startTarget serves each connection with serve; nil means echo until
// EOF, then half-close, recording the bytes seen.
func startTarget(t *testing.T, serve func(c *net.TCPConn, tg *target)) *target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tg := &target{port: l.Addr().(*net.TCPAddr).Port, ends: make(chan targetEnd, 8)}
	if serve == nil {
		serve = func(c *net.TCPConn, tg *target) {
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(c, h), c)
			c.CloseWrite()
			var e targetEnd
			e.n, e.err = n, err
			copy(e.sum[:], h.Sum(nil))
			tg.ends <- e
		}
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tg.mu.Lock()
			tg.conns++
			tg.mu.Unlock()
			go func() { defer c.Close(); serve(c.(*net.TCPConn), tg) }()
		}
	}()
	return tg
}

func (tg *target) connections() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.conns
}

// routerDial opens a TCP mapping as MeshCentral Router does: an auth
// cookie from control.ashx, then meshrelay.ashx?nodeid=...&tcpport=...
// (meshrelay.js asks the agent for the tunnel itself).
func routerDial(t *testing.T, srv *mctest.Server, u *userConn, nodeID string, port int) (*websocket.Conn, error) {
	t.Helper()
	u.send(t, map[string]any{"action": "authcookie"})
	m := u.await(t, "authcookie", func(m map[string]any) bool { return m["action"] == "authcookie" })
	cookie, _ := m["cookie"].(string)
	q := url.Values{"nodeid": {nodeID}, "tcpport": {fmt.Sprint(port)}, "auth": {cookie}}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second,
		ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	ws, _, err := d.Dial(srv.URL()+"/meshrelay.ashx?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ws.Close() })
	return ws, nil
}

// readBinary reads the mapping's binary frames into w until n bytes came
// or the relay closed; text frames are the relay's ("c") and skipped.
func readBinary(ws *websocket.Conn, w io.Writer, n int64, timeout time.Duration) (int64, error) {
	ws.SetReadDeadline(time.Now().Add(timeout))
	var got int64
	for n < 0 || got < n {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return got, err
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		w.Write(data)
		got += int64(len(data))
	}
	return got, nil
}

// closeMapping closes the WebSocket as a client should: a close frame,
// the server's close frame back, then the TCP connection.
func closeMapping(ws *websocket.Conn) {
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	ws.Close()
}

// addViewOnlyUser creates a user that has only view-only desktop rights on mesh
// and returns its name and password.
func addViewOnlyUser(t *testing.T, srv *mctest.Server, mesh string) (string, string) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name, pass := "viewer"+hex.EncodeToString(b), "Pw-"+hex.EncodeToString(b)+"-x9!"
	if out, err := srv.Meshctrl(t, "adduser", "--user", name, "--pass", pass); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("adduser: %v\n%s", err, out)
	}
	// meshctrl addusertodevicegroup prints nothing either way, so the
	// link is made over control.ashx, where the answer counts successes.
	admin := dialControl(t, srv)
	admin.send(t, map[string]any{"action": "addmeshuser", "meshid": mesh, "userids": []string{"user//" + name},
		"meshadmin": 256, "responseid": "pf-add"}) // MESHRIGHT_REMOTEVIEWONLY only
	r := admin.await(t, "addmeshuser answer", func(m map[string]any) bool { return m["responseid"] == "pf-add" })
	if fmt.Sprint(r["success"]) != "1" {
		t.Fatalf("addmeshuser: %v", r)
	}
	return name, pass
}

// A TCP mapping opened as MeshCentral Router opens it carries 8 MiB each
// way intact (SHA-256 at both ends) through MeshCentral and our agent, and
// the user's close reaches the target as a clean EOF after the last byte.
func TestPortForwardTCPMapping(t *testing.T) {
	srv := mctest.Shared(t)
	a, id := onlineAgent(t, srv, "portfwd-tcp")
	tg := startTarget(t, nil)
	ws, err := routerDial(t, srv, dialControl(t, srv), "node//"+id, tg.port)
	if err != nil {
		t.Fatalf("meshrelay.ashx: %v", err)
	}
	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < size; off += 60000 {
			if err := ws.WriteMessage(websocket.BinaryMessage, data[off:min(off+60000, size)]); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	h := sha256.New()
	t0 := time.Now()
	got, err := readBinary(ws, h, size, 90*time.Second)
	if err != nil {
		t.Fatalf("echo after %d of %d bytes: %v", got, size, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echoed bytes differ from those sent")
	}
	t.Logf("8 MiB each way in %v", time.Since(t0))
	if _, ok := a.waitLog(5*time.Second, "port forwarding started", fmt.Sprintf("127.0.0.1:%d", tg.port), "user//"); !ok {
		t.Error("agent did not log the forwarding with its target and user")
	}

	closeMapping(ws)
	select {
	case e := <-tg.ends:
		if e.err != nil || e.n != size || e.sum != want {
			t.Fatalf("target saw %d bytes (checksum ok %v), err %v before EOF", e.n, e.sum == want, e.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the target never saw EOF after the user closed")
	}
	if tg.connections() != 1 {
		t.Errorf("target saw %d connections, want 1", tg.connections())
	}
}

// When the target closes after sending, the user gets every byte and then
// the mapping closes.
func TestPortForwardTargetCloses(t *testing.T) {
	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "portfwd-close")
	payload := make([]byte, 5<<20+3)
	rand.Read(payload)
	tg := startTarget(t, func(c *net.TCPConn, tg *target) {
		c.Write(payload)
	})
	ws, err := routerDial(t, srv, dialControl(t, srv), "node//"+id, tg.port)
	if err != nil {
		t.Fatalf("meshrelay.ashx: %v", err)
	}
	var buf bytes.Buffer
	got, err := readBinary(ws, &buf, -1, 60*time.Second)
	if !bytes.Equal(buf.Bytes(), payload) {
		t.Fatalf("got %d bytes, want %d identical (%v)", got, len(payload), err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the mapping stayed open after the target closed: %v", err)
	}
}

// Without remote-control or relay rights a user gets no mapping: through
// meshrelay.ashx MeshCentral refuses, and a tunnel request with tcpport
// sent straight over control.ashx (which only checks view-only rights) is
// refused by our agent. The target never sees a connection either way.
func TestPortForwardRefusedWithoutRights(t *testing.T) {
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "portfwd-rights")
	a := startAgent(t, srv.MSH(t, mesh))
	if _, ok := a.waitLog(30*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	id := a.nodeID()
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == id && d.Online() }, 30*time.Second)
	name, pass := addViewOnlyUser(t, srv, mesh)
	tg := startTarget(t, nil)
	viewer := dialControlAs(t, srv, name, pass)

	// 1. As MeshCentral Router would.
	if ws, err := routerDial(t, srv, viewer, "node//"+id, tg.port); err == nil {
		ws.WriteMessage(websocket.BinaryMessage, []byte("hello"))
		ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				break
			}
			if typ == websocket.BinaryMessage {
				t.Fatalf("viewer got data through a mapping: %q", data)
			}
		}
	}

	// 2. The tunnel request itself, over control.ashx.
	viewer.send(t, map[string]any{"action": "authcookie"})
	m := viewer.await(t, "authcookie", func(m map[string]any) bool { return m["action"] == "authcookie" })
	cookie, _ := m["cookie"].(string)
	rcookie, _ := m["rcookie"].(string)
	b := make([]byte, 6)
	rand.Read(b)
	rid := hex.EncodeToString(b)
	viewer.send(t, map[string]any{"action": "msg", "type": "tunnel", "nodeid": "node//" + id,
		"value": "*/meshrelay.ashx?id=" + rid + "&rauth=" + rcookie, "tcpport": tg.port, "responseid": "pf"})
	r := viewer.await(t, "routing answer", func(m map[string]any) bool { return m["action"] == "msg" && m["responseid"] == "pf" })
	t.Logf("server's routing answer: %v", r["result"])
	q := url.Values{"id": {rid}, "auth": {cookie}}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second}
	ws, _, err := d.Dial(srv.URL()+"/meshrelay.ashx?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	refused := false
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			break
		}
		if typ == websocket.BinaryMessage {
			t.Fatalf("viewer got data: %q", data)
		}
		if strings.Contains(string(data), "No rights for port forwarding") {
			refused = true
		}
	}
	if !refused {
		t.Error("the agent did not tell the viewer it has no rights for port forwarding")
	}
	if _, ok := a.waitLog(5*time.Second, "No rights for port forwarding"); !ok {
		t.Error("agent log lacks the refusal")
	}
	if n := tg.connections(); n != 0 {
		t.Fatalf("target saw %d connections from a user without rights", n)
	}
}

// endtunnel, as the device's sessions dialog sends it over control.ashx,
// disconnects a user's TCP mappings; a user without full rights cannot end
// another user's sessions. The disconnection is in the event log with
// MeshCentral's msgid 137.
func TestPortForwardEndTunnel(t *testing.T) {
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "portfwd-end")
	a := startAgent(t, srv.MSH(t, mesh))
	if _, ok := a.waitLog(30*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	id := a.nodeID()
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == id && d.Online() }, 30*time.Second)
	tg := startTarget(t, nil)
	admin := dialControl(t, srv)
	ws, err := routerDial(t, srv, admin, "node//"+id, tg.port)
	if err != nil {
		t.Fatalf("meshrelay.ashx: %v", err)
	}
	roundTrip := func(what string) error {
		msg := []byte("ping-" + what)
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return err
		}
		var buf bytes.Buffer
		if _, err := readBinary(ws, &buf, int64(len(msg)), 20*time.Second); err != nil {
			return err
		}
		if !bytes.Equal(buf.Bytes(), msg) {
			return fmt.Errorf("echo %q", buf.Bytes())
		}
		return nil
	}
	if err := roundTrip("before"); err != nil {
		t.Fatalf("mapping: %v", err)
	}
	adminID := "user//" + strings.ToLower(srv.AdminUser())

	// A view-only user asks to end the admin's mapping: refused.
	name, pass := addViewOnlyUser(t, srv, mesh)
	viewer := dialControlAs(t, srv, name, pass)
	viewer.send(t, map[string]any{"action": "msg", "type": "endtunnel", "nodeid": "node//" + id, "xuserid": adminID, "protocol": "tcp", "responseid": "pf"})
	r := viewer.await(t, "routing answer", func(m map[string]any) bool { return m["action"] == "msg" && m["responseid"] == "pf" })
	t.Logf("server's routing answer: %v", r["result"])
	if _, ok := a.waitLog(15*time.Second, "endtunnel refused"); !ok {
		t.Fatal("agent did not refuse the viewer's endtunnel")
	}
	if err := roundTrip("after-viewer"); err != nil {
		t.Fatalf("mapping broken by a refused endtunnel: %v", err)
	}

	// The admin ends it, as the sessions dialog does.
	admin.send(t, map[string]any{"action": "msg", "type": "endtunnel", "nodeid": "node//" + id, "xuserid": adminID, "protocol": "tcp"})
	ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the mapping stayed open after endtunnel")
			}
			break
		}
	}
	select {
	case e := <-tg.ends:
		if e.err != nil {
			t.Errorf("target: %v", e.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("target connection not ended by endtunnel")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		found := false
		for _, ev := range srv.Events(t) {
			if fmt.Sprint(ev["msgid"]) == "137" && strings.HasSuffix(fmt.Sprint(ev["nodeid"]), id) {
				args, _ := ev["msgArgs"].([]any)
				found = len(args) == 1 && args[0] == strings.ToLower(srv.AdminUser())
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event with msgid 137 (forcibly disconnected) for the admin on this device")
		}
		time.Sleep(time.Second)
	}
}

// A UDP mapping (meshrelay.ashx?udpport=) carries each binary frame as one
// datagram to a UDP echo server on loopback and each reply back.
func TestPortForwardUDP(t *testing.T) {
	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "portfwd-udp")
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	u := dialControl(t, srv)
	u.send(t, map[string]any{"action": "authcookie"})
	m := u.await(t, "authcookie", func(m map[string]any) bool { return m["action"] == "authcookie" })
	cookie, _ := m["cookie"].(string)
	q := url.Values{"nodeid": {"node//" + id}, "udpport": {fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port)}, "auth": {cookie}}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second}
	ws, _, err := d.Dial(srv.URL()+"/meshrelay.ashx?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("meshrelay.ashx: %v", err)
	}
	defer ws.Close()
	// One reader owns the socket: a timed-out gorilla read would break it.
	frames := make(chan []byte, 64)
	go func() {
		defer close(frames)
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if typ == websocket.BinaryMessage {
				frames <- data
			}
		}
	}()
	recv := func(timeout time.Duration) ([]byte, bool) {
		select {
		case f, ok := <-frames:
			return f, ok
		case <-time.After(timeout):
			return nil, false
		}
	}
	// The relay may drop what arrives before both ends are paired, as UDP
	// allows, so the first datagram is retried until it comes back.
	first := []byte("udp-hello")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ws.WriteMessage(websocket.BinaryMessage, first)
		if f, _ := recv(2 * time.Second); bytes.Equal(f, first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no echo through the UDP mapping")
		}
	}
	for i := range 20 {
		msg := make([]byte, 100+i*500)
		rand.Read(msg)
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		for {
			f, ok := recv(10 * time.Second)
			if !ok {
				t.Fatalf("datagram %d: no echo", i)
			}
			if bytes.Equal(f, first) {
				continue // a late echo of a retried first datagram
			}
			if !bytes.Equal(f, msg) {
				t.Fatalf("datagram %d: %d bytes back, want %d identical", i, len(f), len(msg))
			}
			break
		}
	}
}
