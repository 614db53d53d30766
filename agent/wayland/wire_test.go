package wayland

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestRoundTripArgs(t *testing.T) {
	w := new(Writer).Uint(7).Int(-3).Fixed(-1.5).String("wl_shm").String("").Uint(0xffffffff)
	msg, err := encode(12, 3, w)
	if err != nil {
		t.Fatal(err)
	}
	m, n, err := ParseHeader(append(msg, 1, 2, 3)) // trailing bytes: next message
	if err != nil || n != len(msg) || m.Object != 12 || m.Opcode != 3 {
		t.Fatalf("header: %+v n=%d err=%v", m, n, err)
	}
	r := NewReader(m)
	if a, b, c, d, e, f := r.Uint(), r.Int(), r.Fixed(), r.String(), r.String(), r.Uint(); a != 7 || b != -3 || c != -1.5 || d != "wl_shm" || e != "" || f != 0xffffffff {
		t.Fatalf("decoded %v %v %v %q %q %v", a, b, c, d, e, f)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if r.Uint(); r.Err() != ErrShort {
		t.Fatalf("reading past the end: %v, want ErrShort", r.Err())
	}
}

func TestParseHeader(t *testing.T) {
	hdr := func(size, op int) []byte {
		b := binary.LittleEndian.AppendUint32(nil, 5)
		return binary.LittleEndian.AppendUint32(b, uint32(size)<<16|uint32(op))
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		n       int
		wantErr bool
	}{
		{"short header", []byte{1, 2, 3}, 0, false},
		{"incomplete body", append(hdr(16, 0), 1, 2, 3, 4), 0, false},
		{"exact", append(hdr(12, 1), 9, 9, 9, 9), 12, false},
		{"size below header", hdr(4, 0), 0, true},
		{"unaligned", append(hdr(10, 0), 0, 0), 0, true},
		{"too large", hdr(8192, 0), 0, true},
	} {
		_, n, err := ParseHeader(tc.in)
		if n != tc.n || (err != nil) != tc.wantErr {
			t.Errorf("%s: n=%d err=%v, want n=%d err=%v", tc.name, n, err, tc.n, tc.wantErr)
		}
	}
}

func TestStringErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []byte
	}{
		{"length past end", []byte{9, 0, 0, 0, 'a', 'b', 0, 0}},
		{"no NUL", []byte{3, 0, 0, 0, 'a', 'b', 'c', 0}[:8]},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}},
	} {
		if tc.name == "no NUL" {
			tc.args = []byte{4, 0, 0, 0, 'a', 'b', 'c', 'd'}
		}
		r := NewReader(Message{Args: tc.args})
		if s := r.String(); r.Err() == nil {
			t.Errorf("%s: decoded %q without error", tc.name, s)
		}
	}
}

func TestEncodeTooLarge(t *testing.T) {
	w := new(Writer).String(string(bytes.Repeat([]byte{'x'}, maxMessage)))
	if _, err := encode(1, 0, w); err == nil {
		t.Fatal("oversized request encoded")
	}
}

// FuzzDecode feeds compositor bytes (untrusted) through the stream splitter
// and every argument decoder the event handlers use; nothing may panic,
// and a string that decodes re-encodes to the same bytes (padding aside).
func FuzzDecode(f *testing.F) {
	seed, _ := encode(2, 0, new(Writer).Uint(1).String("wl_output").Uint(4))
	f.Add(seed)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 12, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			m, n, err := ParseHeader(b)
			if err != nil || n == 0 {
				return
			}
			if n < headerSize || n > len(b) || len(m.Args) != n-headerSize {
				t.Fatalf("bad split: n=%d len=%d args=%d", n, len(b), len(m.Args))
			}
			// Every signature shape our handlers decode.
			r := NewReader(m)
			r.Uint()
			s := r.String()
			r.Int()
			r.Fixed()
			a := r.Array()
			r.Uint()
			if r.Err() == nil && len(a) > len(m.Args) {
				t.Fatal("array longer than its message")
			}
			r2 := NewReader(m)
			r2.Uint()
			if s2 := r2.String(); r2.Err() == nil && s2 == s && s != "" {
				w := new(Writer).String(s)
				used := 4 + len(s) + 1 // padding bytes may hold anything
				if !bytes.Equal(w.b[:used], m.Args[4:4+used]) {
					t.Fatalf("string %q does not re-encode to its bytes", s)
				}
			}
			b = b[n:]
		}
	})
}
