package webrtc

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	pion "github.com/pion/webrtc/v4"
)

// maxMessage is the largest data-channel message we accept, advertised as
// a=max-message-size. It matches Chrome's, keeps reassembly within pion's
// default 1 MiB SCTP receive buffer, and is what our own peer then sends at
// most, so Go↔Go sessions behave like browser sessions.
const maxMessage = 256 << 10

// newPeer builds a peer connection for cfg. Data channels are detached so
// that reads are pulled by our reader goroutine: a handler that stops
// reading stops the SCTP window instead of growing a queue.
func newPeer(cfg Config) (*pion.PeerConnection, error) {
	var se pion.SettingEngine
	se.DetachDataChannels()
	se.SetSCTPMaxMessageSize(maxMessage)
	if n, err := stdnet.NewNet(); err == nil {
		se.SetNet(bufferedNet{n})
	}
	pc := pion.Configuration{}
	if cfg.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
		se.SetInterfaceFilter(isLoopbackInterface)
		se.SetIPFilter(isLoopback4)
		se.SetRemoteIPFilter(isLoopback4)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	} else {
		for _, s := range cfg.ICEServers {
			ps := pion.ICEServer{URLs: s.URLs, Username: s.Username}
			if s.Credential != "" {
				ps.Credential = s.Credential
			}
			pc.ICEServers = append(pc.ICEServers, ps)
		}
	}
	api := pion.NewAPI(pion.WithSettingEngine(se))
	return api.NewPeerConnection(pc)
}

// isLoopback4 keeps only 127.0.0.1: other 127/8 addresses are loopback too
// but nothing listens there in our tests, and one address keeps the
// candidate list short.
func isLoopback4(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }

func isLoopbackInterface(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagLoopback != 0
}

// udpBuffer is the socket buffer size we ask for (Linux caps it at
// net.core.rmem_max/wmem_max). With the default ~200 KiB, bursts of SCTP
// packets overflow the receive buffer even on loopback, and each loss
// costs a retransmission timeout: measured 8 MB/s before, far more after.
const udpBuffer = 4 << 20

// bufferedNet is the standard network with larger UDP socket buffers.
type bufferedNet struct{ transport.Net }

func (n bufferedNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, addr)
	if err == nil {
		if s, ok := c.(interface {
			SetReadBuffer(int) error
			SetWriteBuffer(int) error
		}); ok {
			_ = s.SetReadBuffer(udpBuffer) // best effort: a smaller buffer still works
			_ = s.SetWriteBuffer(udpBuffer)
		}
	}
	return c, err
}
