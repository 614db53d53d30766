// Package wayland is a small pure-Go Wayland client: the wire protocol
// (8-byte header, argument marshalling, file descriptors over SCM_RIGHTS)
// and the few interfaces a remote desktop needs on wlroots compositors
// (wl_shm, wl_output, wlr-screencopy, virtual pointer and keyboard).
//
// It is written here rather than imported because no maintained pure-Go
// client is served by the module proxy this project may use, and the
// needed subset is small: no generated bindings, no libwayland, no cgo, so
// the static agent binary keeps running where no Wayland library exists.
package wayland

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// headerSize is the fixed message header: object id, then size<<16|opcode.
const headerSize = 8

// maxMessage is the largest message libwayland sends or accepts (its
// connection buffer); larger sizes in a header mean a corrupt stream.
const maxMessage = 4096

// ErrShort means a message's arguments ran past its end.
var ErrShort = errors.New("wayland: message too short for its arguments")

// Message is one decoded message: who sent it, which event or request, and
// the raw argument bytes (decode them with a Reader). Fds carries the file
// descriptors that arrived with the stream, handed to the handler that
// reads an fd argument.
type Message struct {
	Object uint32
	Opcode uint16
	Args   []byte
}

// ParseHeader splits the first message off b. It returns the message, the
// bytes it used, or n == 0 when b does not yet hold a whole message, and an
// error for a header no compositor may send (size below 8, above the
// protocol limit, or not a multiple of 4).
func ParseHeader(b []byte) (m Message, n int, err error) {
	if len(b) < headerSize {
		return Message{}, 0, nil
	}
	obj := binary.LittleEndian.Uint32(b)
	w := binary.LittleEndian.Uint32(b[4:])
	size := int(w >> 16)
	if size < headerSize || size > maxMessage || size%4 != 0 {
		return Message{}, 0, fmt.Errorf("wayland: bad message size %d (object %d opcode %d)", size, obj, w&0xffff)
	}
	if len(b) < size {
		return Message{}, 0, nil
	}
	return Message{Object: obj, Opcode: uint16(w), Args: b[headerSize:size]}, size, nil
}

// Reader decodes one message's arguments in order. The first error sticks:
// later reads return zero values, so a handler reads everything and checks
// Err once.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads the arguments of m.
func NewReader(m Message) *Reader { return &Reader{b: m.Args} }

// Err is the first decoding error, nil if every read fit.
func (r *Reader) Err() error { return r.err }

// Uint reads a uint, object id or new_id argument.
func (r *Reader) Uint() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 4 {
		r.err = ErrShort
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// Int reads an int argument.
func (r *Reader) Int() int32 { return int32(r.Uint()) }

// Fixed reads a 24.8 fixed-point argument.
func (r *Reader) Fixed() float64 { return float64(r.Int()) / 256 }

// Array reads an array argument; the result aliases the message.
func (r *Reader) Array() []byte {
	n := r.Uint()
	if r.err != nil {
		return nil
	}
	padded := (uint64(n) + 3) &^ 3
	if padded > uint64(len(r.b)) {
		r.err = ErrShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[padded:]
	return v
}

// String reads a string argument (length includes the NUL; 0 is null,
// returned as "").
func (r *Reader) String() string {
	a := r.Array()
	if r.err != nil || len(a) == 0 {
		return ""
	}
	if a[len(a)-1] != 0 {
		r.err = errors.New("wayland: string argument without NUL terminator")
		return ""
	}
	return string(a[:len(a)-1])
}

// Writer builds one request's arguments.
type Writer struct {
	b   []byte
	fds []int
}

// Uint appends a uint, object or new_id argument.
func (w *Writer) Uint(v uint32) *Writer {
	w.b = binary.LittleEndian.AppendUint32(w.b, v)
	return w
}

// Int appends an int argument.
func (w *Writer) Int(v int32) *Writer { return w.Uint(uint32(v)) }

// Fixed appends a 24.8 fixed-point argument, saturating at its range.
func (w *Writer) Fixed(v float64) *Writer {
	f := math.Round(v * 256)
	f = math.Max(math.MinInt32, math.Min(math.MaxInt32, f))
	return w.Int(int32(f))
}

// String appends a string argument with its NUL terminator and padding.
func (w *Writer) String(s string) *Writer {
	w.Uint(uint32(len(s) + 1))
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
	return w
}

// FD queues a file descriptor argument; it travels as SCM_RIGHTS ancillary
// data with the message, not in the argument bytes.
func (w *Writer) FD(fd int) *Writer {
	w.fds = append(w.fds, fd)
	return w
}

// encode returns the whole message: header plus arguments.
func encode(obj uint32, op uint16, w *Writer) ([]byte, error) {
	var args []byte
	if w != nil {
		args = w.b
	}
	size := headerSize + len(args)
	if size > maxMessage {
		return nil, fmt.Errorf("wayland: request of %d bytes exceeds %d", size, maxMessage)
	}
	out := make([]byte, 0, size)
	out = binary.LittleEndian.AppendUint32(out, obj)
	out = binary.LittleEndian.AppendUint32(out, uint32(size)<<16|uint32(op))
	return append(out, args...), nil
}
