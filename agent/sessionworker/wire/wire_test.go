package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// Every frame type survives encoding and reading back, several in a row
// on one stream as the pipe carries them.
func TestRoundTrip(t *testing.T) {
	frames := []Frame{
		{Type: Hello, Version: Version, Name: "service"},
		{Type: Request, ID: 1, Name: "getclip", Body: []byte(`{}`)},
		{Type: Response, ID: 1, OK: true, Body: []byte(`"text"`)},
		{Type: Response, ID: 3, OK: false, Body: []byte("clipboard busy")},
		{Type: Open, ID: 5, Name: "desktop", Body: []byte(`{"Protocol":2}`)},
		{Type: Data, ID: 5, Binary: true, Body: []byte{0, 3, 0, 4, 1, 2}},
		{Type: Data, ID: 5, Binary: false, Body: []byte(`{"type":"options"}`)},
		{Type: Data, ID: 6, Binary: true, Body: []byte{}},
		{Type: Close, ID: 5, Body: []byte("viewer left")},
		{Type: Close, ID: 7, Body: []byte{}},
		{Type: Ping},
		{Type: Pong, ID: 9},
		{Type: Cancel, ID: 11},
	}
	var buf []byte
	for _, f := range frames {
		var err error
		if buf, err = Append(buf, f); err != nil {
			t.Fatalf("Append(%+v): %v", f, err)
		}
	}
	r := NewReader(bytes.NewReader(buf))
	for _, want := range frames {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("Read: %v (want %+v)", err, want)
		}
		if want.Body == nil && want.Type != Hello && want.Type != Ping && want.Type != Pong && want.Type != Cancel {
			want.Body = []byte{}
		}
		if len(got.Body) == 0 && len(want.Body) == 0 {
			got.Body, want.Body = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("read %+v, want %+v", got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

// Malformed input gives a clear error and never a frame.
func TestMalformed(t *testing.T) {
	hdr := func(typ byte, n uint32, payload ...byte) []byte {
		return append([]byte{typ, 0, 0, 0, 1, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type", hdr(99, 0), ErrMalformed},
		{"type zero", hdr(0, 0), ErrMalformed},
		{"too large", hdr(byte(Data), MaxPayload+1), ErrTooLarge},
		{"short hello", hdr(byte(Hello), 1, 0), ErrMalformed},
		{"request without name", hdr(byte(Request), 1, 0), ErrMalformed},
		{"request name past end", hdr(byte(Request), 2, 5, 'a'), ErrMalformed},
		{"open name not UTF-8", hdr(byte(Open), 2, 1, 0xff), ErrMalformed},
		{"response status 2", hdr(byte(Response), 1, 2), ErrMalformed},
		{"empty response", hdr(byte(Response), 0), ErrMalformed},
		{"data flags", hdr(byte(Data), 1, 2), ErrMalformed},
		{"ping with payload", hdr(byte(Ping), 1, 0), ErrMalformed},
		{"cancel with payload", hdr(byte(Cancel), 1, 0), ErrMalformed},
		{"truncated payload", hdr(byte(Data), 10, 1, 2), io.ErrUnexpectedEOF},
		{"truncated header", []byte{byte(Data), 0, 0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewReader(bytes.NewReader(tt.in)).Read()
			if !errors.Is(err, tt.want) {
				t.Errorf("Read = %+v, %v; want %v", f, err, tt.want)
			}
		})
	}
}

// Append refuses frames the reader would refuse, so a bug on one side
// shows up there and not as a desynchronised stream on the other.
func TestAppendRefuses(t *testing.T) {
	for _, f := range []Frame{
		{Type: Request},
		{Type: Open, Name: string(make([]byte, 256))},
		{Type: Data, Body: make([]byte, MaxPayload)},
		{Type: 42},
	} {
		if _, err := Append(nil, f); err == nil {
			t.Errorf("Append(%s, name %d, body %d) succeeded", f.Type, len(f.Name), len(f.Body))
		}
	}
}

func TestCheckHello(t *testing.T) {
	tests := []struct {
		f    Frame
		want error
	}{
		{Frame{Type: Hello, Version: Version, Name: "worker"}, nil},
		{Frame{Type: Hello, Version: Version + 1}, ErrVersion},
		{Frame{Type: Ping}, ErrMalformed},
	}
	for _, tt := range tests {
		if err := CheckHello(tt.f); !errors.Is(err, tt.want) {
			t.Errorf("CheckHello(%+v) = %v, want %v", tt.f, err, tt.want)
		}
	}
}

// FuzzRead: any bytes from the pipe either parse into frames that encode
// back to the same bytes, or fail with an error; never a panic or a huge
// allocation.
func FuzzRead(f *testing.F) {
	seed, _ := Append(nil, Frame{Type: Hello, Version: Version, Name: "worker"})
	seed, _ = Append(seed, Frame{Type: Request, ID: 2, Name: "setclip", Body: []byte(`"x"`)})
	seed, _ = Append(seed, Frame{Type: Data, ID: 3, Binary: true, Body: []byte{1, 2, 3}})
	f.Add(seed)
	f.Add([]byte{byte(Close), 0, 0, 0, 1, 0, 0, 0, 2, 'o', 'k'})
	f.Add([]byte{byte(Data), 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var out []byte
		consumed := 0
		for {
			fr, err := r.Read()
			if err != nil {
				break
			}
			b, err := Append(nil, fr)
			if err != nil {
				t.Fatalf("parsed frame %+v does not encode: %v", fr, err)
			}
			out = append(out, b...)
			consumed += len(b)
		}
		if !bytes.Equal(out, in[:consumed]) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", in[:consumed], out)
		}
	})
}
