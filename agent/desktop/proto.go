package desktop

import (
	"encoding/binary"
)

// KVM command numbers (sessions.md §4.3). Only the ones this agent sends or
// acts on are named.
const (
	cmdKey         = 1
	cmdMouse       = 2
	cmdPicture     = 3
	cmdCompression = 5
	cmdRefresh     = 6
	cmdScreen      = 7
	cmdPause       = 8
	cmdCtrlAltDel  = 10
	cmdGetDisplays = 11
	cmdSetDisplay  = 12
	cmdFrameTimer  = 13
	cmdInitTouch   = 14
	cmdTouch       = 15
	cmdMessage     = 17
	cmdKeyState    = 18
	cmdJumbo       = 27
	cmdError       = 65
	cmdDisplayInfo = 82
	cmdKeyUnicode  = 85
	cmdInputLock   = 87
	cmdCursor      = 88
)

// allDisplays is the display id meaning "every monitor at once".
const allDisplays = 0xFFFF

// maxPlain is the largest PICTURE payload sent without the JUMBO wrapper; the
// reference agent uses the same bound so the 16-bit length never overflows.
const maxPlain = 65500

// command is one parsed viewer→agent command: its number and the payload
// after the 4-byte header.
type command struct {
	cmd  uint16
	data []byte
}

// maxCommand bounds one viewer command. Real viewer commands are at most a
// few dozen bytes (touch v2 carries up to ~10 points); anything larger is a
// broken or hostile stream, and bounding it caps the parser's buffer.
const maxCommand = 4096

// parser splits the viewer's byte stream into commands. The browser may put
// several commands in one message and a command may span messages
// (sessions.md §4.2), so input is buffered until whole.
type parser struct {
	buf []byte
}

// feed appends data and returns every complete command. Payload slices are
// copies, valid after the next feed. A declared length below 4 or above
// maxCommand cannot be resynchronised, so the buffer is dropped and bad is
// true.
func (p *parser) feed(data []byte) (cmds []command, bad bool) {
	p.buf = append(p.buf, data...)
	b := p.buf
	for len(b) >= 4 {
		c := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 4 || n > maxCommand {
			p.buf = p.buf[:0]
			return cmds, true
		}
		if len(b) < n {
			break
		}
		cmds = append(cmds, command{cmd: c, data: append([]byte(nil), b[4:n]...)})
		b = b[n:]
	}
	if len(b) > maxCommand {
		p.buf = p.buf[:0]
		return cmds, true
	}
	// Keep the unconsumed tail at the start of the buffer so it does not grow.
	p.buf = append(p.buf[:0], b...)
	return cmds, false
}

// put writes a command header followed by payload into a new slice.
func encode(cmd uint16, payload ...uint16) []byte {
	b := make([]byte, 4+2*len(payload))
	binary.BigEndian.PutUint16(b, cmd)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	for i, v := range payload {
		binary.BigEndian.PutUint16(b[4+2*i:], v)
	}
	return b
}

func encodeByte(cmd uint16, v byte) []byte {
	return []byte{byte(cmd >> 8), byte(cmd), 0, 5, v}
}

func encodeText(cmd uint16, s string) []byte {
	if len(s) > 60000 {
		s = s[:60000]
	}
	b := make([]byte, 4+len(s))
	binary.BigEndian.PutUint16(b, cmd)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[4:], s)
	return b
}

// pictureHeader is the room encodePicture needs in front of the JPEG bytes;
// callers encode the image at this offset so framing costs no copy.
const pictureHeader = 16

// framePicture fills the header in front of the image in buf, where
// buf[pictureHeader:] holds the image, and returns the message: a PICTURE, or
// a JUMBO-wrapped PICTURE when the image is too large for a 16-bit length.
func framePicture(buf []byte, x, y int) []byte {
	img := len(buf) - pictureHeader
	if img <= maxPlain {
		b := buf[pictureHeader-8:]
		binary.BigEndian.PutUint16(b, cmdPicture)
		binary.BigEndian.PutUint16(b[2:], uint16(8+img))
		binary.BigEndian.PutUint16(b[4:], uint16(x))
		binary.BigEndian.PutUint16(b[6:], uint16(y))
		return b
	}
	b := buf
	binary.BigEndian.PutUint16(b, cmdJumbo)
	binary.BigEndian.PutUint16(b[2:], 8)
	binary.BigEndian.PutUint32(b[4:], uint32(8+img))
	binary.BigEndian.PutUint16(b[8:], cmdPicture)
	binary.BigEndian.PutUint16(b[10:], 0)
	binary.BigEndian.PutUint16(b[12:], uint16(x))
	binary.BigEndian.PutUint16(b[14:], uint16(y))
	return b
}

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
	if len(mons) < 2 {
		return encode(cmdGetDisplays, 0, 0)
	}
	ids := []uint16{uint16(len(mons) + 1), allDisplays}
	for _, m := range mons {
		ids = append(ids, m.ID)
	}
	return encode(cmdGetDisplays, append(ids, selected)...)
}

func encodeDisplayInfo(mons []monitor) []byte {
	var v []uint16
	for _, m := range mons {
		v = append(v, m.ID, uint16(m.X), uint16(m.Y), uint16(m.W), uint16(m.H))
	}
	return encode(cmdDisplayInfo, v...)
}
