//go:build linux

package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/proto/session"
)

// openRelay opens a relay session to a device as MeshCentral's clients do:
// ask control.ashx for cookies, send the tunnel request, connect the user
// end of meshrelay.ashx, wait for "c", send options and the protocol.
func openRelay(tb testing.TB, srv *mctest.Server, u *userConn, nodeID string, proto int, options string) session.Channel {
	tb.Helper()
	u.send(tb, map[string]any{"action": "authcookie"})
	m := u.await(tb, "authcookie", func(m map[string]any) bool { return m["action"] == "authcookie" })
	cookie, _ := m["cookie"].(string)
	rcookie, _ := m["rcookie"].(string)
	idb := make([]byte, 6)
	rand.Read(idb)
	id := hex.EncodeToString(idb)
	value := fmt.Sprintf("*/meshrelay.ashx?p=%d&nodeid=%s&id=%s&rauth=%s", proto, nodeID, id, rcookie)
	u.send(tb, map[string]any{"action": "msg", "type": "tunnel", "nodeid": nodeID, "value": value, "usage": proto, "responseid": "bench"})
	q := url.Values{"browser": {"1"}, "p": {fmt.Sprint(proto)}, "nodeid": {nodeID}, "id": {id}, "auth": {cookie}}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second,
		ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	ws, _, err := d.Dial(srv.URL()+"/meshrelay.ashx?"+q.Encode(), nil)
	if err != nil {
		tb.Fatalf("relay: %v", err)
	}
	ws.SetReadLimit(64 << 20)
	ch := session.WebSocket(ws)
	tb.Cleanup(func() { ch.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			tb.Fatalf("waiting for the relay to pair: %v", err)
		}
		if !f.Binary && (string(f.Data) == "c" || string(f.Data) == "cr") {
			break
		}
	}
	if options != "" {
		ch.Write(ctx, session.Frame{Data: []byte(options)})
	}
	ch.Write(ctx, session.Frame{Data: []byte(fmt.Sprint(proto))})
	return ch
}

// readJSON reads frames until a JSON object with the given action arrives.
func readJSON(ctx context.Context, ch session.Channel, action string) (map[string]any, error) {
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return nil, err
		}
		if len(f.Data) == 0 || f.Data[0] != '{' {
			continue
		}
		var m map[string]any
		if json.Unmarshal(f.Data, &m) == nil && m["action"] == action {
			return m, nil
		}
	}
}

// uploadFile sends size bytes from r to dir/name over a files session,
// keeping window chunks in flight as meshctrl does, and returns when the
// agent confirmed every chunk and the upload is done.
func uploadFile(ctx context.Context, ch session.Channel, dir, name string, r io.Reader, size int64, window int) error {
	req, _ := json.Marshal(map[string]any{"action": "upload", "reqid": "up", "path": dir, "name": name, "size": size})
	if err := ch.Write(ctx, session.Frame{Binary: true, Data: req}); err != nil {
		return err
	}
	if _, err := readJSON(ctx, ch, "uploadstart"); err != nil {
		return fmt.Errorf("uploadstart: %w", err)
	}
	buf := make([]byte, 65536)
	inflight, eof := 0, false
	send := func() error {
		n, err := io.ReadFull(r, buf)
		if n == 0 {
			eof = true
			return nil
		}
		if err != nil {
			eof = true
		}
		chunk := buf[:n]
		if chunk[0] == 0 || chunk[0] == '{' {
			chunk = append([]byte{0}, chunk...)
		}
		inflight++
		return ch.Write(ctx, session.Frame{Binary: true, Data: chunk})
	}
	for i := 0; i < window && !eof; i++ {
		if err := send(); err != nil {
			return err
		}
	}
	for inflight > 0 {
		m, err := readJSON(ctx, ch, "uploadack")
		if err != nil {
			return fmt.Errorf("uploadack: %w", err)
		}
		_ = m
		inflight--
		if !eof {
			if err := send(); err != nil {
				return err
			}
		}
	}
	done, _ := json.Marshal(map[string]any{"action": "uploaddone", "reqid": "up"})
	if err := ch.Write(ctx, session.Frame{Binary: true, Data: done}); err != nil {
		return err
	}
	_, err := readJSON(ctx, ch, "uploaddone")
	return err
}

// downloadFile fetches path over a files session, acknowledging every
// block as MeshCentral's clients do, and writes it to w.
func downloadFile(ctx context.Context, ch session.Channel, path string, w io.Writer) (int64, error) {
	start, _ := json.Marshal(map[string]any{"action": "download", "sub": "start", "id": path, "path": path})
	if err := ch.Write(ctx, session.Frame{Data: start}); err != nil {
		return 0, err
	}
	ack, _ := json.Marshal(map[string]any{"action": "download", "sub": "ack", "id": path})
	startack, _ := json.Marshal(map[string]any{"action": "download", "sub": "startack", "id": path})
	var total int64
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return total, err
		}
		if len(f.Data) > 0 && f.Data[0] == '{' {
			var m map[string]any
			json.Unmarshal(f.Data, &m)
			switch m["sub"] {
			case "start":
				ch.Write(ctx, session.Frame{Data: startack})
			case "cancel":
				return total, fmt.Errorf("download canceled")
			}
			continue
		}
		if !f.Binary || len(f.Data) < 4 {
			continue
		}
		n, _ := w.Write(f.Data[4:])
		total += int64(n)
		if binary.BigEndian.Uint32(f.Data)&1 != 0 {
			return total, nil
		}
		ch.Write(ctx, session.Frame{Data: ack})
	}
}

// echoRTT types one character at a time into a terminal session and times
// how long its echo takes to come back. A reader goroutine owns ch.Read:
// cancelling a Read context would close the WebSocket.
func echoRTT(ctx context.Context, ch session.Channel, n int) ([]time.Duration, error) {
	frames := make(chan session.Frame, 256)
	go func() {
		defer close(frames)
		for {
			f, err := ch.Read(ctx)
			if err != nil {
				return
			}
			frames <- f
		}
	}()
	// Let the shell start and print its prompt.
	quiet := time.NewTimer(1500 * time.Millisecond)
drain:
	for {
		select {
		case _, ok := <-frames:
			if !ok {
				return nil, fmt.Errorf("terminal closed before its prompt")
			}
		case <-quiet.C:
			break drain
		}
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		key := []byte{byte('a' + i%26)}
		t0 := time.Now()
		if err := ch.Write(ctx, session.Frame{Binary: true, Data: key}); err != nil {
			return out, err
		}
		for {
			f, ok := <-frames
			if !ok {
				return out, fmt.Errorf("terminal closed")
			}
			if f.Binary && bytes.Contains(f.Data, key) {
				break
			}
		}
		out = append(out, time.Since(t0))
	}
	ch.Write(ctx, session.Frame{Binary: true, Data: []byte{0x15}}) // ^U clears the line
	return out, nil
}
