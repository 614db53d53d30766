package session

// UpgradePolicy is a session handler's own answer to whether the client may
// move its session from the relay onto a WebRTC data channel
// (sessions.md §5), and how its frames must travel there. Each handler
// package declares it; the agent's core only applies it.
type UpgradePolicy struct {
	// Allow lets the client switch. The reference answers offers on
	// desktop and files sessions only and ignores them on terminals
	// (§5.1).
	Allow bool
	// FragmentBinary splits binary frames larger than the peer's maximum
	// message size over several data-channel messages: MeshCentral's
	// desktop viewer reassembles KVM commands from fragments (§5.4).
	FragmentBinary bool
}

// Switcher is implemented by a channel whose transport can move under the
// session, as proto/webrtc's upgradable channel does.
type Switcher interface {
	// Switched is closed once this side's output has moved to the new
	// transport.
	Switched() <-chan struct{}
}

// Switched returns the channel that is closed once ch's output has moved
// to a new transport, for handlers that must act after a switch (the
// desktop sends a full screen on the new path). It is nil, which blocks
// forever in a select, when ch cannot switch.
func Switched(ch Channel) <-chan struct{} {
	if s, ok := ch.(Switcher); ok {
		return s.Switched()
	}
	return nil
}
