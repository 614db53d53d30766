// Package webrtc moves a relay session onto a WebRTC data channel, the way
// MeshCentral's browser code and agent do it (sessions.md §5), so that the
// bulk of a desktop or files session no longer passes through the server.
//
// The switch-over lives here and nowhere else. Both ends wrap the relay
// session.Channel: the agent with Upgradable (the answering side), a client
// such as server-lite's CLI with NewOfferer (the browser's side). Session
// handlers keep reading and writing a session.Channel and never learn which
// transport carries a frame.
//
// Ordering. The relay and the data channel are two independent ordered
// paths, so each direction switches at a marker sent on the relay after the
// sender's last relay frame:
//
//   - client → agent: the client's webrtc1 ("no more data on the
//     WebSocket"). The agent reads data-channel messages from the moment
//     the channel opens, so none is lost (the reference agent drops them
//     until webrtc0/webrtc1, §5.4), but hands them to the handler only after
//     every relay frame sent before that marker.
//   - agent → client: the agent's webrtc1. The agent keeps writing on the
//     relay until it sends webrtc1 and starts writing on the data channel
//     only when the client's webrtc2 confirms that marker arrived, exactly
//     like the reference; a Write in between is queued.
//
// Signalling shares the relay with data, so both ends must keep calling
// Read while the switch-over runs (a viewer always does). Between the
// agent's webrtc1 and the client's webrtc2 (one relay round trip) the
// agent's Write queues frames (up to 4 MiB) instead of blocking, so a
// handler that reads and writes on one goroutine keeps reading; the queue
// goes out first on the data channel.
//
// The relay stays open as the control path. Signalling never reaches the
// handler; every other text frame does, unchanged. If WebRTC fails before
// the data channel opens, the session simply continues on the relay; once
// it has opened, losing either transport ends the session (the browser
// does the same).
package webrtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// ICEServer is a STUN or TURN server for the peer connection, in the shape
// of the browser's RTCIceServer (MeshCentral's settings.webrtcConfig).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Config tunes an upgradable session. The zero value is usable: no ICE
// servers (host candidates only), all interfaces, default timeouts.
type Config struct {
	// ICEServers are the STUN/TURN servers to gather candidates with.
	// Ignored when LoopbackOnly is set.
	ICEServers []ICEServer

	// LoopbackOnly restricts ICE to UDP over IPv4 127.0.0.1: only loopback
	// candidates are gathered or accepted, no STUN/TURN and no mDNS, so no
	// packet is ever sent off the machine. For tests and benchmarks.
	LoopbackOnly bool

	// FragmentBinary splits binary frames larger than the peer's maximum
	// message size (Chrome accepts 256 KiB) into several data-channel
	// messages. Set it for desktop sessions: MeshCentral's viewer
	// reassembles KVM commands from fragments (§5.4). Without it, and for
	// text frames, an oversized frame is written on the relay instead,
	// which the browser reads as well.
	FragmentBinary bool

	// OnSwitched, if set, is called once, on its own goroutine, when this
	// side's output has moved to the data channel and the webrtc0/1/2
	// exchange is complete: for logs and counters, or for a caller that
	// can reach its handler. A handler that only holds the channel uses
	// session.Switched instead (the desktop's full refresh).
	OnSwitched func()

	// Timeout bounds each step of an attempt: ICE gathering, offer to open
	// data channel, and webrtc1 to webrtc2. Zero means 30 seconds.
	Timeout time.Duration

	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Upgradable wraps the relay channel of a desktop or files session on the
// agent. It answers the client's {"type":"offer"} with a pion peer
// connection, feeds data-channel messages to Read from the moment the
// channel opens (in order after the client's last relay frame), and moves
// Write output to the data channel after the webrtc0/1/2 exchange, so no
// frame is lost, duplicated or reordered. Text frames that are not WebRTC
// signalling pass through unchanged. Closing the returned channel closes the
// relay too. Wrap only protocols 2 and 5: the reference ignores offers on
// terminals (§5.1).
func Upgradable(relay session.Channel, cfg Config) session.Channel {
	return newConn(relay, cfg, roleAgent)
}

// Offerer is the client (browser) side of the upgrade. It is a
// session.Channel over the relay that carries the session before, during
// and after the switch-over; call Offer to start it. It sends the same
// messages as agent-redir-ws, but moves its output to the data channel only
// when the agent's webrtc1 arrives (sending its own webrtc1 then), where
// the browser moves at channel open: that way the reference C agent, which
// drops channel data until it has processed webrtc0, loses nothing either.
// Upgradable accepts both timings.
type Offerer struct {
	c *conn
}

// NewOfferer wraps a client's relay channel after the relay has paired and
// the protocol was chosen. Until Offer succeeds, frames travel on the relay.
func NewOfferer(relay session.Channel, cfg Config) *Offerer {
	return &Offerer{c: newConn(relay, cfg, roleClient)}
}

// Offer creates the peer connection and its data channel "DataChannel",
// sends the offer on the relay once ICE gathering is complete (no trickle
// ICE, as the browser), and returns when the switch-over is complete. It
// may run while the session is busy: Read and Write keep working, and Read
// must keep being called, since the answer arrives on the relay. On error
// the session goes on over the relay, unless the data channel had already
// opened and then failed, which ends the session (Read and Write report
// it). Only one attempt runs at a time.
func (o *Offerer) Offer(ctx context.Context) error { return o.c.offer(ctx) }

// Read implements session.Channel.
func (o *Offerer) Read(ctx context.Context) (session.Frame, error) { return o.c.Read(ctx) }

// Write implements session.Channel.
func (o *Offerer) Write(ctx context.Context, f session.Frame) error { return o.c.Write(ctx, f) }

// Close implements session.Channel; it closes the relay and the peer
// connection, after giving the data channel a moment to deliver what was
// written.
func (o *Offerer) Close() error { return o.c.Close() }

// ErrNoWebRTC reports an attempt that failed before the data channel opened;
// the session goes on over the relay.
var ErrNoWebRTC = errors.New("webrtc: switch-over failed, staying on the relay")

func abandoned(why string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", ErrNoWebRTC, why)
	}
	return fmt.Errorf("%w: %s: %v", ErrNoWebRTC, why, err)
}
