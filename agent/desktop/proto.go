package desktop

import "github.com/meshgo/meshagent/proto/kvm"

// The KVM wire format (command numbers, framing, the viewer stream parser)
// is proto/kvm; this file holds only what depends on this package's
// monitor model.

// monitor is one selectable display in capture coordinates (root window
// pixels on X11, virtual-screen pixels elsewhere).
type monitor struct {
	ID         uint16
	X, Y, W, H int
	Primary    bool
}

// encodeDisplays builds the GET_DISPLAYS list. One monitor is announced as
// count 0, which makes the browser hide the display menu; several are
// announced as "all" plus 1…N like the reference Linux agent.
func encodeDisplays(mons []monitor, selected uint16) []byte {
	ids := make([]uint16, 0, len(mons))
	for _, m := range mons {
		ids = append(ids, m.ID)
	}
	return kvm.DisplaysCmd(ids, selected)
}

func encodeDisplayInfo(mons []monitor) []byte {
	var v []uint16
	for _, m := range mons {
		v = append(v, m.ID, uint16(m.X), uint16(m.Y), uint16(m.W), uint16(m.H))
	}
	return kvm.Encode(kvm.DisplayInfo, v...)
}
