// Package kvm is MeshCentral's remote desktop (KVM, relay protocol 2) wire
// format, defined once for both ends: the agent's desktop handler
// (agent/desktop) and the viewer that server-lite's tools and the tests use
// (server-lite/sessionclient). It holds the command numbers, the 4-byte
// command header, JUMBO framing for commands longer than a 16-bit length,
// the viewer's stream splitter, and the commands both sides build.
//
// It is pure: no I/O, no goroutines, no state beyond a Parser's buffer.
// Every multi-byte integer is big-endian.
//
// Wire reference: ../shared/protocol/sessions.md §4 (framing §4.2, command
// numbers §4.3, agent→viewer §4.4, viewer→agent §4.5) and §5.4 for the
// fragmentation of commands over a WebRTC data channel.
package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command numbers (sessions.md §4.3, the reference's
// RemoteManagementCommands). Only the ones this project sends or acts on
// are named. They are untyped so they fit a u16 field and a byte alike.
const (
	Key         = 1
	Mouse       = 2
	Picture     = 3
	Compression = 5
	Refresh     = 6
	Screen      = 7
	Pause       = 8
	CtrlAltDel  = 10
	GetDisplays = 11
	SetDisplay  = 12
	FrameTimer  = 13
	InitTouch   = 14
	Touch       = 15
	Message     = 17
	KeyState    = 18
	Jumbo       = 27
	Error       = 65
	DisplayInfo = 82
	KeyUnicode  = 85
	InputLock   = 87
	Cursor      = 88
)

// Mouse button codes of the MOUSE command (MOUSEEVENTF bits, sessions.md
// §4.5). MouseDoubleClick marks a double click whose down/up pairs were
// already sent.
const (
	MouseMove        byte = 0x00
	MouseLeftDown    byte = 0x02
	MouseLeftUp      byte = 0x04
	MouseRightDown   byte = 0x08
	MouseRightUp     byte = 0x10
	MouseMiddleDown  byte = 0x20
	MouseMiddleUp    byte = 0x40
	MouseDoubleClick byte = 0x88
)

const (
	// HeaderLen is the size of a command header: u16 command, u16 length
	// (header included).
	HeaderLen = 4
	// JumboHeaderLen is the JUMBO wrapper in front of the inner command:
	// u16 27, u16 8, u32 inner length.
	JumboHeaderLen = 8
	// AllDisplays is the display id meaning "every monitor at once".
	AllDisplays uint16 = 0xFFFF
	// MaxPlain is the largest PICTURE payload sent without the JUMBO
	// wrapper; the reference agent uses the same bound so the 16-bit length
	// never overflows.
	MaxPlain = 65500
	// MaxCommand bounds one viewer→agent command. Real viewer commands are
	// at most a few dozen bytes (touch v2 carries up to ~10 points);
	// anything larger is a broken or hostile stream, and bounding it caps
	// the parser's buffer.
	MaxCommand = 4096
	// MaxMessage bounds one agent→viewer message (a JUMBO picture) that a
	// viewer reassembles from fragments.
	MaxMessage = 16 << 20
	// PictureHeader is the room FramePicture needs in front of the JPEG
	// bytes; encoders write the image at this offset so framing costs no
	// copy.
	PictureHeader = JumboHeaderLen + 8
)

// Encode builds one command from its number and u16 payload words.
func Encode(cmd uint16, payload ...uint16) []byte {
	b := make([]byte, HeaderLen+2*len(payload))
	binary.BigEndian.PutUint16(b, cmd)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	for i, v := range payload {
		binary.BigEndian.PutUint16(b[HeaderLen+2*i:], v)
	}
	return b
}

// EncodeByte builds a command with a one-byte payload (KEYSTATE, CURSOR,
// INPUTLOCK).
func EncodeByte(cmd uint16, v byte) []byte {
	return []byte{byte(cmd >> 8), byte(cmd), 0, HeaderLen + 1, v}
}

// maxText keeps a text payload inside the 16-bit length.
const maxText = 60000

// EncodeText builds a command whose payload is text (ERROR, MESSAGE),
// cut to 60000 bytes.
func EncodeText(cmd uint16, s string) []byte {
	if len(s) > maxText {
		s = s[:maxText]
	}
	b := make([]byte, HeaderLen+len(s))
	binary.BigEndian.PutUint16(b, cmd)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[HeaderLen:], s)
	return b
}

// Header reads a command header: the command number and the declared
// length (header included). ok is false when b is shorter than a header.
func Header(b []byte) (cmd uint16, length int, ok bool) {
	if len(b) < HeaderLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:])), true
}

// FramePicture fills the header in front of the image in buf, where
// buf[PictureHeader:] holds the image, and returns the message: a PICTURE
// at x, y, or a JUMBO-wrapped PICTURE when the image is too large for a
// 16-bit length.
func FramePicture(buf []byte, x, y int) []byte {
	img := len(buf) - PictureHeader
	if img <= MaxPlain {
		b := buf[PictureHeader-8:]
		binary.BigEndian.PutUint16(b, Picture)
		binary.BigEndian.PutUint16(b[2:], uint16(8+img))
		binary.BigEndian.PutUint16(b[4:], uint16(x))
		binary.BigEndian.PutUint16(b[6:], uint16(y))
		return b
	}
	b := buf
	binary.BigEndian.PutUint16(b, Jumbo)
	binary.BigEndian.PutUint16(b[2:], JumboHeaderLen)
	binary.BigEndian.PutUint32(b[4:], uint32(8+img))
	binary.BigEndian.PutUint16(b[8:], Picture)
	binary.BigEndian.PutUint16(b[10:], 0)
	binary.BigEndian.PutUint16(b[12:], uint16(x))
	binary.BigEndian.PutUint16(b[14:], uint16(y))
	return b
}

// Command is one parsed command: its number and the payload after the
// header.
type Command struct {
	Cmd  uint16
	Data []byte
}

// Parser splits the viewer's byte stream into commands. The browser may put
// several commands in one message and a command may span messages
// (sessions.md §4.2), so input is buffered until whole. The zero value is
// ready to use.
type Parser struct {
	buf []byte
}

// Feed appends data and returns every complete command. Payload slices are
// copies, valid after the next Feed. A declared length below 4 or above
// MaxCommand cannot be resynchronised, so the buffer is dropped and bad is
// true.
func (p *Parser) Feed(data []byte) (cmds []Command, bad bool) {
	p.buf = append(p.buf, data...)
	b := p.buf
	for len(b) >= HeaderLen {
		c, n, _ := Header(b)
		if n < HeaderLen || n > MaxCommand {
			p.buf = p.buf[:0]
			return cmds, true
		}
		if len(b) < n {
			break
		}
		cmds = append(cmds, Command{Cmd: c, Data: append([]byte(nil), b[HeaderLen:n]...)})
		b = b[n:]
	}
	if len(b) > MaxCommand {
		p.buf = p.buf[:0]
		return cmds, true
	}
	// Keep the unconsumed tail at the start of the buffer so it does not grow.
	p.buf = append(p.buf[:0], b...)
	return cmds, false
}

// Buffered is how many bytes of an incomplete command the parser holds.
func (p *Parser) Buffered() int { return len(p.buf) }

// MessageLen is how many bytes the agent→viewer message starting with b
// needs to be whole: the header's length, the JUMBO wrapper's inner length
// plus 8, or at least a header's worth while the header is incomplete. A
// viewer on a WebRTC data channel, where a peer fragments large commands
// (sessions.md §5.4), keeps appending fragments while len(b) is smaller.
func MessageLen(b []byte) int {
	switch {
	case len(b) < HeaderLen:
		return HeaderLen
	case binary.BigEndian.Uint16(b) == Jumbo:
		if len(b) < JumboHeaderLen {
			return PictureHeader
		}
		return max(PictureHeader, JumboHeaderLen+int(binary.BigEndian.Uint32(b[4:])))
	default:
		return int(binary.BigEndian.Uint16(b[2:]))
	}
}

// ErrBadMessage marks an agent→viewer message whose framing is broken.
var ErrBadMessage = errors.New("kvm: bad message")

// Unwrap decodes one whole agent→viewer message (one command per message,
// sessions.md §4.2), removing a JUMBO wrapper. Messages shorter than a
// header are returned with ok false and no error: the browser ignores them
// too.
func Unwrap(b []byte) (c Command, ok bool, err error) {
	cmd, n, ok := Header(b)
	if !ok {
		return Command{}, false, nil
	}
	if cmd == Jumbo {
		if n != JumboHeaderLen || len(b) < PictureHeader || int(binary.BigEndian.Uint32(b[4:])) != len(b)-JumboHeaderLen {
			return Command{}, false, fmt.Errorf("%w: JUMBO wrapper", ErrBadMessage)
		}
		b = b[JumboHeaderLen:]
		cmd, n = binary.BigEndian.Uint16(b), len(b)
	}
	if n != len(b) {
		return Command{}, false, fmt.Errorf("%w: command %d declares %d bytes in a %d-byte message", ErrBadMessage, cmd, n, len(b))
	}
	return Command{Cmd: cmd, Data: b[HeaderLen:]}, true, nil
}

// Viewer→agent commands.

// RefreshCmd asks the agent for SCREEN and a full frame. The agent's
// desktop handler also applies it to itself after a WebRTC switch-over, so
// the viewer gets a whole screen on the new path (sessions.md §5.2).
func RefreshCmd() []byte { return Encode(Refresh) }

// SetDisplayCmd selects a display by id (AllDisplays: all).
func SetDisplayCmd(id uint16) []byte { return Encode(SetDisplay, id) }

// CompressionCmd sets JPEG quality (1-100), scaling (1024 = 100 %) and the
// frame interval in milliseconds.
func CompressionCmd(quality, scaling, frameMS int) []byte {
	b := Encode(Compression, 0, uint16(scaling), uint16(frameMS))
	b[4], b[5] = 1, byte(quality) // type 1 = JPEG
	return b
}

// MouseCmd encodes a mouse command at screen coordinates x, y with button
// (MouseMove, MouseLeftDown, ...).
func MouseCmd(button byte, x, y int) []byte {
	b := Encode(Mouse, 0, uint16(x), uint16(y))
	b[4], b[5] = 0, button
	return b
}

// KeyCmd encodes a key press (down) or release by Windows virtual-key code.
func KeyCmd(vk byte, down bool) []byte {
	a := byte(1)
	if down {
		a = 0
	}
	return []byte{0, byte(Key), 0, 6, a, vk}
}

// UnicodeCmd encodes a typed character (a UTF-16 code unit).
func UnicodeCmd(ch uint16, down bool) []byte {
	a := byte(1)
	if down {
		a = 0
	}
	return []byte{0, byte(KeyUnicode), 0, 7, a, byte(ch >> 8), byte(ch)}
}

// Agent→viewer commands.

// ScreenCmd announces the canvas size.
func ScreenCmd(w, h int) []byte { return Encode(Screen, uint16(w), uint16(h)) }

// DisplaysCmd builds the GET_DISPLAYS list: ids are the selectable
// displays in order. Fewer than two are announced as count 0, which makes
// the browser hide the display menu; several are announced as "all" plus
// the ids, like the reference Linux agent.
func DisplaysCmd(ids []uint16, selected uint16) []byte {
	if len(ids) < 2 {
		return Encode(GetDisplays, 0, 0)
	}
	v := make([]uint16, 0, len(ids)+3)
	v = append(v, uint16(len(ids)+1), AllDisplays)
	v = append(v, ids...)
	return Encode(GetDisplays, append(v, selected)...)
}

// Displays reads a GET_DISPLAYS payload's id list (the count, then that
// many ids; a short payload yields what it holds).
func Displays(p []byte) []uint16 {
	if len(p) < 2 {
		return nil
	}
	cnt := int(binary.BigEndian.Uint16(p))
	var out []uint16
	for i := 0; i < cnt && 2+2*i+1 < len(p); i++ {
		out = append(out, binary.BigEndian.Uint16(p[2+2*i:]))
	}
	return out
}
