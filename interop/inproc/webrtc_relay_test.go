package inproc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/agent/files"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/webrtc"
	"github.com/meshgo/meshagent/server-lite/relay"
)

// counted counts the bytes a channel carries, to show what the relay saved.
type counted struct {
	session.Channel
	in, out atomic.Int64
}

func (c *counted) Read(ctx context.Context) (session.Frame, error) {
	f, err := c.Channel.Read(ctx)
	c.in.Add(int64(len(f.Data)))
	return f, err
}

func (c *counted) Write(ctx context.Context, f session.Frame) error {
	c.out.Add(int64(len(f.Data)))
	return c.Channel.Write(ctx, f)
}

// relayEnv is server-lite's meshrelay.ashx behind TLS on 127.0.0.1.
type relayEnv struct {
	t      *testing.T
	tokens *relay.Tokens
	url    string
	dialer websocket.Dialer
}

func newRelayEnv(t *testing.T) *relayEnv {
	tokens := relay.NewTokens()
	rs := relay.New(relay.Config{Authorizer: tokens, Logger: testLogger()})
	hs := httptest.NewUnstartedServer(rs) // listens on 127.0.0.1
	hs.StartTLS()
	t.Cleanup(func() { rs.Close(); hs.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	return &relayEnv{t: t, tokens: tokens, url: "wss" + strings.TrimPrefix(hs.URL, "https") + "/meshrelay.ashx",
		dialer: websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}}
}

// pair opens both ends of one relay session and consumes the relay's "c".
func (e *relayEnv) pair() (user, agent *counted) {
	e.t.Helper()
	id := relay.NewID()
	var ends [2]*counted
	for i, side := range []relay.Side{relay.SideUser, relay.SideAgent} {
		tok := e.tokens.Issue(relay.Grant{Side: side, UserID: "user//admin", ID: id}, time.Minute)
		ws, _, err := e.dialer.Dial(e.url+"?id="+id+"&auth="+tok, nil)
		if err != nil {
			e.t.Fatalf("dial relay: %v", err)
		}
		ws.SetReadLimit(64 << 20)
		ends[i] = &counted{Channel: session.WebSocket(ws)}
		e.t.Cleanup(func() { ends[i].Close() })
	}
	for _, c := range ends {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		f, err := c.Read(ctx)
		cancel()
		if err != nil || string(f.Data) != "c" {
			e.t.Fatalf("relay did not pair: %q %v", f.Data, err)
		}
	}
	return ends[0], ends[1]
}

// filesClient plays the viewer of a files session on an Offerer.
type filesClient struct {
	t      *testing.T
	ch     *webrtc.Offerer
	frames chan session.Frame
	errc   chan error
}

func newFilesClient(t *testing.T, ch *webrtc.Offerer) *filesClient {
	fc := &filesClient{t: t, ch: ch, frames: make(chan session.Frame, 256), errc: make(chan error, 1)}
	go func() {
		for {
			f, err := ch.Read(context.Background())
			if err != nil {
				fc.errc <- err
				close(fc.frames)
				return
			}
			fc.frames <- f
		}
	}()
	return fc
}

func (fc *filesClient) next(ctx context.Context) session.Frame {
	fc.t.Helper()
	select {
	case f, ok := <-fc.frames:
		if !ok {
			fc.t.Fatalf("session ended: %v", <-fc.errc)
		}
		return f
	case <-ctx.Done():
		fc.t.Fatalf("waiting for a reply: %v", ctx.Err())
	}
	return session.Frame{}
}

func (fc *filesClient) send(ctx context.Context, v any) {
	fc.t.Helper()
	b, _ := json.Marshal(v)
	if err := fc.ch.Write(ctx, session.Frame{Data: b}); err != nil {
		fc.t.Fatal(err)
	}
}

// action decodes a JSON reply; data frames give "".
func action(f session.Frame) (string, string) {
	if len(f.Data) == 0 || f.Data[0] != '{' {
		return "", ""
	}
	var m struct{ Action, Sub string }
	json.Unmarshal(f.Data, &m)
	return m.Action, m.Sub
}

// startFiles runs agent/files.Serve on the agent end, wrapped by Upgradable,
// exactly as the relay client does for protocol 5.
func startFiles(t *testing.T, agentEnd session.Channel) {
	ch := webrtc.Upgradable(agentEnd, testConfig())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		files.Serve(ctx, ch, session.Info{Protocol: session.ProtoFiles, Rights: session.RightAdmin, UserID: "user//admin"},
			files.Options{Logger: testLogger()})
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestEndToEndFilesOverRelay uploads and then downloads 50 MiB through
// server-lite's relay over TLS on 127.0.0.1, to and from agent/files, and
// switches to a loopback data channel halfway through each transfer. The
// file must arrive intact both ways, and most bytes must have left the
// relay.
func TestEndToEndFilesOverRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MiB transfer")
	}
	const size = 50 << 20
	const during = 4 << 20 // at most this much is sent while the switch-over runs
	data := make([]byte, size)
	rnd := rand.NewChaCha8([32]byte{7})
	rnd.Read(data)
	want := sha256.Sum256(data)
	dir := t.TempDir()
	target := filepath.Join(dir, "big.bin")
	env := newRelayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("upload", func(t *testing.T) {
		userEnd, agentEnd := env.pair()
		startFiles(t, agentEnd)
		cl := webrtc.NewOfferer(userEnd, testConfig())
		defer cl.Close()
		fc := newFilesClient(t, cl)
		start := time.Now()
		fc.send(ctx, map[string]any{"action": "upload", "reqid": 1, "path": dir, "name": "big.bin", "size": size})
		if a, _ := action(fc.next(ctx)); a != "uploadstart" {
			t.Fatalf("no uploadstart: %s", a)
		}
		const chunk = 64 << 10
		offerErr := make(chan error, 1)
		offered := false
		sent, acked, inflight := 0, 0, 0
		for acked < size {
			for inflight < 16 && sent < size {
				n := min(chunk, size-sent)
				b := data[sent : sent+n]
				if b[0] == 0 || b[0] == '{' {
					b = append([]byte{0}, b...)
				}
				if err := cl.Write(ctx, session.Frame{Binary: true, Data: b}); err != nil {
					t.Fatal(err)
				}
				sent += n
				inflight++
				if sent >= size/2 && sent-n < size/2 {
					go func() { offerErr <- cl.Offer(ctx) }()
				}
				// Keep sending while the switch-over runs, but not so much
				// that a slow machine finishes before it is done.
				if !offered && sent >= size/2+during {
					offered = true
					if err := <-offerErr; err != nil {
						t.Fatalf("Offer: %v", err)
					}
				}
			}
			f := fc.next(ctx)
			switch a, _ := action(f); a {
			case "uploadack":
				inflight--
				acked = min(acked+chunk, size)
			case "uploaderror":
				t.Fatalf("upload error: %s", f.Data)
			}
		}
		fc.send(ctx, map[string]any{"action": "uploaddone", "reqid": 1})
		for {
			if a, _ := action(fc.next(ctx)); a == "uploaddone" {
				break
			}
		}
		el := time.Since(start)
		got, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != want {
			t.Fatalf("uploaded file differs (%d bytes)", len(got))
		}
		onRelay := agentEnd.in.Load()
		t.Logf("upload: %d MiB in %v; %d MiB crossed the relay, %d MiB the data channel",
			size>>20, el.Round(time.Millisecond), onRelay>>20, (size-onRelay)>>20)
		if onRelay > size/2+during+(2<<20) || onRelay < size/2 {
			t.Fatalf("%d of %d bytes on the relay: the switch did not happen midway", onRelay, size)
		}
	})

	t.Run("download", func(t *testing.T) {
		userEnd, agentEnd := env.pair()
		startFiles(t, agentEnd)
		cl := webrtc.NewOfferer(userEnd, testConfig())
		defer cl.Close()
		fc := newFilesClient(t, cl)
		start := time.Now()
		fc.send(ctx, map[string]any{"action": "download", "sub": "start", "id": "dl", "path": target})
		if f := fc.next(ctx); f.Binary || !bytes.Contains(f.Data, []byte(`"start"`)) {
			t.Fatalf("download start reply %v %q", f.Binary, f.Data)
		}
		fc.send(ctx, map[string]any{"action": "download", "sub": "startack", "id": "dl", "ack": 8})
		h := sha256.New()
		var got int
		offerErr := make(chan error, 1)
		offered := false
		for {
			f := fc.next(ctx)
			if !f.Binary || len(f.Data) < 4 || f.Data[0] == '{' {
				t.Fatalf("unexpected frame %v %q", f.Binary, head(f.Data))
			}
			h.Write(f.Data[4:])
			before := got
			got += len(f.Data) - 4
			if got >= size/2 && before < size/2 {
				go func() { offerErr <- cl.Offer(ctx) }()
			}
			if !offered && got >= size/2+during {
				offered = true
				if err := <-offerErr; err != nil {
					t.Fatalf("Offer: %v", err)
				}
			}
			if binary.BigEndian.Uint32(f.Data)&1 != 0 {
				break
			}
			fc.send(ctx, map[string]any{"action": "download", "sub": "ack", "id": "dl"})
		}
		el := time.Since(start)
		if got != size || fmt.Sprintf("%x", h.Sum(nil)) != fmt.Sprintf("%x", want) {
			t.Fatalf("downloaded %d bytes, checksum mismatch=%v", got, fmt.Sprintf("%x", h.Sum(nil)) != fmt.Sprintf("%x", want))
		}
		onRelay := agentEnd.out.Load()
		t.Logf("download: %d MiB in %v; %d MiB crossed the relay, %d MiB the data channel",
			size>>20, el.Round(time.Millisecond), onRelay>>20, (size-onRelay)>>20)
		if onRelay > size/2+during+(2<<20) || onRelay < size/2 {
			t.Fatalf("%d of %d bytes on the relay: the switch did not happen midway", onRelay, size)
		}
	})
}
