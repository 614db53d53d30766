package adminapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/agentconn"
)

// stalledHandshake opens agent.ashx from src, sends what an agent sends
// first (ServerID and AuthRequest, which make the server sign), reads the
// server's answer and then says nothing more. It returns the socket, or nil
// if the server refused or dropped it.
func (e *probeEnv) stalledHandshake(src net.IP, key *rsa.PrivateKey, cert []byte) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, h, err := simagent.DialFrom(ctx, e.app.AgentURL(), nil, &net.TCPAddr{IP: src})
	if err != nil {
		return nil
	}
	ag, err := handshake.NewAgent(handshake.AgentConfig{Key: key, CertDER: cert, ServerID: e.app.Certs.ServerID, TLSCertHash: h})
	if err != nil {
		ws.Close()
		return nil
	}
	for _, m := range ag.Start() {
		if ws.WriteMessage(websocket.BinaryMessage, m) != nil {
			ws.Close()
			return nil
		}
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil {
		ws.Close()
		return nil
	}
	return ws
}

// TestProbeHandshakeFlood is finding 8: 2,000 agent.ashx sockets that send
// AuthRequest (each costing the server a signature) and then stall, from
// 20 addresses, while ten real agents enroll. The server keeps the number
// of pending handshakes per address and in all bounded, and the real
// agents come online promptly.
func TestProbeHandshakeFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	// Without limits first, for the figures only: what the probe saw.
	t.Run("no limits", func(t *testing.T) {
		handshakeFlood(t, agentconn.Config{MaxPending: -1, MaxPendingPerAddr: -1}, false)
	})
	t.Run("defaults", func(t *testing.T) { handshakeFlood(t, agentconn.Config{}, true) })
}

func handshakeFlood(t *testing.T, cfg agentconn.Config, check bool) {
	e := newProbeEnvAgents(t, cfg, nil)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id, err := simagent.NewIdentity(key)
	if err != nil {
		t.Fatal(err)
	}
	const flood, addrs = 2000, 20
	var mu sync.Mutex
	var held []*websocket.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, ws := range held {
			ws.Close()
		}
	})
	var wg sync.WaitGroup
	var opened atomic.Int32
	jobs := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				src := net.IPv4(127, 0, 3, byte(1+i%addrs))
				if ws := e.stalledHandshake(src, key, id.CertDER); ws != nil {
					opened.Add(1)
					mu.Lock()
					held = append(held, ws)
					mu.Unlock()
				}
			}
		}()
	}
	go func() {
		for i := range flood {
			jobs <- i
		}
		close(jobs)
	}()
	time.Sleep(2 * time.Second) // the flood is under way
	var online []time.Duration
	for i := range 10 {
		t0 := time.Now()
		_, conn := e.enroll(e.app.DefaultGroup.ID, "real"+string(rune('a'+i)), nil)
		online = append(online, time.Since(t0))
		go drain(conn.WS, nil)
	}
	wg.Wait()
	pending := e.app.Agents.PendingHandshakes()
	sort.Slice(online, func(i, j int) bool { return online[i] < online[j] })
	t.Logf("flood of %d stalled handshakes from %d addresses: %d answered, %d pending at the end; real agents online in median %v, max %v",
		flood, addrs, opened.Load(), pending, online[len(online)/2], online[len(online)-1])
	if !check {
		return
	}
	lim := e.app.Agents.HandshakeLimits()
	if pending > lim.Global || pending > lim.PerAddr*addrs {
		t.Errorf("%d handshakes pending, limits %+v", pending, lim)
	}
	// Each enrollment generates its RSA-2048 key inside the timing, which
	// alone takes seconds on a loaded 2-CPU machine (10 s flaked on main);
	// locked-out agents would take the enrollment's whole minute.
	if online[len(online)-1] > 30*time.Second {
		t.Errorf("a real agent took %v to come online during the flood", online[len(online)-1])
	}
}
