// Package wire is the versioned frame format between the agent's service
// and its session worker (the same executable started in the user's
// Windows session). It is pure Go so both ends, and the tests, run on
// every OS; the pipe's bytes come from another process, so the parser
// treats them as untrusted and is fuzzed.
//
// Every frame is a 9-byte header, big endian, and a payload:
//
//	type  u8   see the Type constants
//	id    u32  request id (Request/Response) or stream id (Open/Data/Close)
//	len   u32  payload length, at most MaxPayload
//
// Payloads by type:
//
//	Hello     u16 version, then the peer's role ("service" or "worker")
//	Request   u8 name length, name, body (JSON)
//	Response  u8 status (0 ok, 1 error), body (JSON when ok, error text otherwise)
//	Open      u8 kind length, kind, body (JSON, e.g. the session.Info of a desktop)
//	Data      u8 flags (bit 0: binary frame), then the frame's bytes
//	Close     the reason as text, empty for a normal close
//	Ping/Pong empty
//	Cancel    empty: the sender no longer wants the answer to request id
//
// Either side may send requests and open streams; the service numbers its
// streams and requests with odd ids, the worker with even ones, so the
// two never collide.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Version is the protocol version both ends announce in Hello. A peer
// with another version is refused: the worker and the service are the
// same executable, so a mismatch means a stale worker from an upgrade.
const Version = 1

// MaxPayload bounds one frame: a JUMBO KVM picture of a 4K screen at high
// quality fits well within it, and a hostile peer cannot make the reader
// allocate more.
const MaxPayload = 16 << 20

// HeaderSize is the fixed length of a frame header.
const HeaderSize = 9

// Type is a frame's kind.
type Type uint8

// Frame types.
const (
	Hello    Type = 1
	Request  Type = 2
	Response Type = 3
	Open     Type = 4
	Data     Type = 5
	Close    Type = 6
	Ping     Type = 7
	Pong     Type = 8
	Cancel   Type = 9
)

func (t Type) String() string {
	names := [...]string{"", "hello", "request", "response", "open", "data", "close", "ping", "pong", "cancel"}
	if int(t) < len(names) && t != 0 {
		return names[t]
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// Frame is one decoded frame. Which fields mean something depends on
// Type, as the package documentation lists.
type Frame struct {
	Type Type
	ID   uint32
	// Version and Role are Hello's.
	Version uint16
	// Name is a Request's method, an Open's stream kind, a Hello's role.
	Name string
	// OK is a Response's status.
	OK bool
	// Binary is a Data frame's flag.
	Binary bool
	// Body is the rest of the payload: JSON, data, error or close text.
	Body []byte
}

// Errors of the parser. Every malformed input yields one of them wrapped.
var (
	ErrTooLarge  = errors.New("wire: frame too large")
	ErrMalformed = errors.New("wire: malformed frame")
	ErrVersion   = errors.New("wire: protocol version mismatch")
)

// Append encodes f after dst.
func Append(dst []byte, f Frame) ([]byte, error) {
	var payload int
	switch f.Type {
	case Hello:
		payload = 2 + len(f.Name)
	case Request, Open:
		if len(f.Name) == 0 || len(f.Name) > 255 {
			return dst, fmt.Errorf("%w: %s name length %d", ErrMalformed, f.Type, len(f.Name))
		}
		payload = 1 + len(f.Name) + len(f.Body)
	case Response, Data:
		payload = 1 + len(f.Body)
	case Close:
		payload = len(f.Body)
	case Ping, Pong, Cancel:
	default:
		return dst, fmt.Errorf("%w: unknown type %d", ErrMalformed, f.Type)
	}
	if payload > MaxPayload {
		return dst, fmt.Errorf("%w: %d bytes", ErrTooLarge, payload)
	}
	dst = append(dst, byte(f.Type))
	dst = binary.BigEndian.AppendUint32(dst, f.ID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(payload))
	switch f.Type {
	case Hello:
		dst = binary.BigEndian.AppendUint16(dst, f.Version)
		dst = append(dst, f.Name...)
	case Request, Open:
		dst = append(dst, byte(len(f.Name)))
		dst = append(dst, f.Name...)
		dst = append(dst, f.Body...)
	case Response:
		st := byte(1)
		if f.OK {
			st = 0
		}
		dst = append(dst, st)
		dst = append(dst, f.Body...)
	case Data:
		var fl byte
		if f.Binary {
			fl = 1
		}
		dst = append(dst, fl)
		dst = append(dst, f.Body...)
	case Close:
		dst = append(dst, f.Body...)
	}
	return dst, nil
}

// Parse decodes one frame from a header and its payload (as read by
// Reader). The frame's Body aliases payload.
func Parse(typ Type, id uint32, payload []byte) (Frame, error) {
	f := Frame{Type: typ, ID: id}
	switch typ {
	case Hello:
		if len(payload) < 2 {
			return Frame{}, fmt.Errorf("%w: short hello", ErrMalformed)
		}
		f.Version = binary.BigEndian.Uint16(payload)
		f.Name = string(payload[2:])
		if !utf8.ValidString(f.Name) || len(f.Name) > 64 {
			return Frame{}, fmt.Errorf("%w: bad hello role", ErrMalformed)
		}
	case Request, Open:
		if len(payload) < 1 || payload[0] == 0 || int(payload[0]) > len(payload)-1 {
			return Frame{}, fmt.Errorf("%w: %s name", ErrMalformed, typ)
		}
		n := int(payload[0])
		f.Name = string(payload[1 : 1+n])
		if !utf8.ValidString(f.Name) {
			return Frame{}, fmt.Errorf("%w: %s name is not UTF-8", ErrMalformed, typ)
		}
		f.Body = payload[1+n:]
	case Response:
		if len(payload) < 1 || payload[0] > 1 {
			return Frame{}, fmt.Errorf("%w: response status", ErrMalformed)
		}
		f.OK = payload[0] == 0
		f.Body = payload[1:]
	case Data:
		if len(payload) < 1 || payload[0]&^1 != 0 {
			return Frame{}, fmt.Errorf("%w: data flags", ErrMalformed)
		}
		f.Binary = payload[0]&1 != 0
		f.Body = payload[1:]
	case Close:
		f.Body = payload
	case Ping, Pong, Cancel:
		if len(payload) != 0 {
			return Frame{}, fmt.Errorf("%w: %s with payload", ErrMalformed, typ)
		}
	default:
		return Frame{}, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint8(typ))
	}
	return f, nil
}

// Reader reads frames from a byte stream.
type Reader struct {
	r   *bufio.Reader
	hdr [HeaderSize]byte
}

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 64<<10)} }

// Read returns the next frame. Its Body is freshly allocated, so the
// caller may keep it. io.EOF means the peer closed between frames;
// io.ErrUnexpectedEOF means it closed mid-frame.
func (r *Reader) Read() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	typ := Type(r.hdr[0])
	id := binary.BigEndian.Uint32(r.hdr[1:])
	n := binary.BigEndian.Uint32(r.hdr[5:])
	if n > MaxPayload {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, n)
	}
	if typ == 0 || typ > Cancel {
		return Frame{}, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint8(typ))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r.r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return Parse(typ, id, payload)
}

// CheckHello validates the peer's first frame.
func CheckHello(f Frame) error {
	if f.Type != Hello {
		return fmt.Errorf("%w: first frame is %s, not hello", ErrMalformed, f.Type)
	}
	if f.Version != Version {
		return fmt.Errorf("%w: peer speaks %d, we speak %d", ErrVersion, f.Version, Version)
	}
	return nil
}
