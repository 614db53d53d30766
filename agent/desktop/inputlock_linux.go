package desktop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// XInput 2 requests used by the remote input lock (XI2 protocol spec).
const (
	xiQueryVersion = 47
	xiQueryDevice  = 48
	xiGrabDevice   = 51
	xiUngrabDevice = 52

	xiSlavePointer  = 3
	xiSlaveKeyboard = 4
)

// xiDevice is one input device as XIQueryDevice lists it.
type xiDevice struct {
	id   uint16
	use  uint16
	name string
}

// physical reports whether d is a device a person at the machine uses:
// a slave pointer or keyboard that is not one of the XTEST devices the
// agent's own input goes through.
func (d xiDevice) physical() bool {
	return (d.use == xiSlavePointer || d.use == xiSlaveKeyboard) && !strings.Contains(d.name, "XTEST")
}

// parseXIDevices decodes an XIQueryDevice reply.
func parseXIDevices(b []byte) ([]xiDevice, error) {
	if len(b) < 32 {
		return nil, errors.New("XIQueryDevice: short reply")
	}
	n := int(binary.LittleEndian.Uint16(b[8:]))
	p := 32
	var out []xiDevice
	for range n {
		if p+12 > len(b) {
			return nil, errors.New("XIQueryDevice: truncated device")
		}
		d := xiDevice{id: binary.LittleEndian.Uint16(b[p:]), use: binary.LittleEndian.Uint16(b[p+2:])}
		classes := int(binary.LittleEndian.Uint16(b[p+6:]))
		nameLen := int(binary.LittleEndian.Uint16(b[p+8:]))
		p += 12
		if p+nameLen > len(b) {
			return nil, errors.New("XIQueryDevice: truncated name")
		}
		d.name = string(b[p : p+nameLen])
		p += (nameLen + 3) &^ 3
		for range classes {
			if p+4 > len(b) {
				return nil, errors.New("XIQueryDevice: truncated class")
			}
			l := int(binary.LittleEndian.Uint16(b[p+2:])) * 4
			if l < 4 || p+l > len(b) {
				return nil, errors.New("XIQueryDevice: bad class length")
			}
			p += l
		}
		out = append(out, d)
	}
	return out, nil
}

// xiOpcode returns the XInput extension's major opcode, after announcing
// XI 2.0 (required before XI2 requests).
func xiOpcode(c *xgb.Conn) (byte, error) {
	const name = "XInputExtension"
	r, err := xproto.QueryExtension(c, uint16(len(name)), name).Reply()
	if err != nil {
		return 0, err
	}
	if !r.Present {
		return 0, errors.New("no XInput extension")
	}
	op := r.MajorOpcode
	req := []byte{op, xiQueryVersion, 2, 0, 2, 0, 0, 0} // XI 2.0
	ck := c.NewCookie(true, true)
	c.NewRequest(req, ck)
	if _, err := ck.Reply(); err != nil {
		return 0, fmt.Errorf("XIQueryVersion: %w", err)
	}
	return op, nil
}

// lockInput grabs (on) or releases every physical keyboard and pointer
// with XI2 device grabs on the session's own connection, so the person at
// the machine can neither type nor move the pointer while the viewer's
// input, which comes through the XTEST devices, still works. A grab ends
// with the connection, so a session or an agent that dies leaves nothing
// locked. It returns how many devices are held.
func (s *xScreen) lockInput(on bool) (int, error) {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if !on {
		s.releaseLocked()
		return 0, nil
	}
	return s.grabLocked()
}

func (s *xScreen) inputLocked() bool {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	return s.locked
}

// releaseLocked ungrabs every device held; lockMu is held.
func (s *xScreen) releaseLocked() {
	for _, id := range s.grabbed {
		req := make([]byte, 12)
		req[0], req[1] = s.xiOp, xiUngrabDevice
		binary.LittleEndian.PutUint16(req[2:], 3)
		binary.LittleEndian.PutUint16(req[8:], id) // time 0 = CurrentTime at [4:8]
		ck := s.c.NewCookie(true, false)
		s.c.NewRequest(req, ck)
		ck.Check()
	}
	s.grabbed = nil
	s.locked = false
}

// grabLocked grabs every physical device; lockMu is held.
func (s *xScreen) grabLocked() (int, error) {
	if s.locked {
		return len(s.grabbed), nil
	}
	if s.xiOp == 0 {
		op, err := xiOpcode(s.c)
		if err != nil {
			return 0, fmt.Errorf("input lock: %w", err)
		}
		s.xiOp = op
	}
	req := []byte{s.xiOp, xiQueryDevice, 2, 0, 0, 0, 0, 0} // XIAllDevices
	ck := s.c.NewCookie(true, true)
	s.c.NewRequest(req, ck)
	b, err := ck.Reply()
	if err != nil {
		return 0, fmt.Errorf("input lock: XIQueryDevice: %w", err)
	}
	devs, err := parseXIDevices(b)
	if err != nil {
		return 0, fmt.Errorf("input lock: %w", err)
	}
	for _, d := range devs {
		if !d.physical() {
			continue
		}
		req := make([]byte, 28)
		req[0], req[1] = s.xiOp, xiGrabDevice
		binary.LittleEndian.PutUint16(req[2:], 7)
		binary.LittleEndian.PutUint32(req[4:], uint32(s.root)) // grab window; time 0, cursor None
		binary.LittleEndian.PutUint16(req[16:], d.id)
		req[18], req[19] = 1, 1                    // async grab and paired-device modes
		binary.LittleEndian.PutUint16(req[22:], 1) // one mask word, no events
		ck := s.c.NewCookie(true, true)
		s.c.NewRequest(req, ck)
		r, err := ck.Reply()
		if err != nil || len(r) < 9 || r[8] != 0 {
			s.releaseLocked() // all or nothing
			if err == nil {
				err = fmt.Errorf("status %d", r[8])
			}
			return 0, fmt.Errorf("input lock: grab %q: %w", d.name, err)
		}
		s.grabbed = append(s.grabbed, d.id)
	}
	s.locked = true
	return len(s.grabbed), nil
}
