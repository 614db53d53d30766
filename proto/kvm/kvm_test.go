package kvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestParserSplitsAndJoins(t *testing.T) {
	var p Parser
	// Two commands in one message, then one split over three messages.
	msg := append([]byte{0, 1, 0, 6, 0, 0x41}, 0, 1, 0, 6, 1, 0x41)
	cmds, bad := p.Feed(msg)
	if bad || len(cmds) != 2 || cmds[0].Cmd != Key || !bytes.Equal(cmds[1].Data, []byte{1, 0x41}) {
		t.Fatalf("got %+v bad=%v", cmds, bad)
	}
	whole := Encode(Mouse, 0x0002, 100, 200)
	for i, part := range [][]byte{whole[:1], whole[1:5], whole[5:]} {
		cmds, bad = p.Feed(part)
		if bad || (i < 2 && len(cmds) != 0) {
			t.Fatalf("part %d: %+v bad=%v", i, cmds, bad)
		}
	}
	if len(cmds) != 1 || cmds[0].Cmd != Mouse || binary.BigEndian.Uint16(cmds[0].Data[2:]) != 100 {
		t.Fatalf("reassembled %+v", cmds)
	}
	if _, bad := p.Feed([]byte{0, 1, 0, 2}); !bad {
		t.Fatal("length 2 accepted")
	}
	if p.Buffered() != 0 {
		t.Fatal("buffer kept after a bad length")
	}
}

func TestFramePicture(t *testing.T) {
	small := append(make([]byte, PictureHeader), 1, 2, 3)
	m := FramePicture(small, 32, 64)
	if !bytes.Equal(m, []byte{0, 3, 0, 11, 0, 32, 0, 64, 1, 2, 3}) {
		t.Fatalf("picture %x", m)
	}
	big := make([]byte, PictureHeader+70000)
	m = FramePicture(big, 0, 32)
	if binary.BigEndian.Uint16(m) != Jumbo || binary.BigEndian.Uint16(m[2:]) != 8 ||
		binary.BigEndian.Uint32(m[4:]) != uint32(len(m)-8) || binary.BigEndian.Uint16(m[8:]) != Picture ||
		binary.BigEndian.Uint16(m[14:]) != 32 {
		t.Fatalf("jumbo header %x", m[:16])
	}
	// What one side frames, the other unwraps to the same command.
	for _, b := range [][]byte{FramePicture(append(make([]byte, PictureHeader), 1, 2, 3), 32, 64), m} {
		c, ok, err := Unwrap(b)
		if err != nil || !ok || c.Cmd != Picture || len(c.Data) != len(b)-bytes.Index(b, []byte{0, 3})-HeaderLen {
			t.Fatalf("unwrap %x…: %+v %v %v", b[:16], c.Cmd, ok, err)
		}
		if MessageLen(b) != len(b) {
			t.Fatalf("MessageLen %d of a %d-byte message", MessageLen(b), len(b))
		}
	}
}

func TestEncoders(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"refresh", RefreshCmd(), []byte{0, 6, 0, 4}},
		{"set display", SetDisplayCmd(2), []byte{0, 12, 0, 6, 0, 2}},
		{"compression", CompressionCmd(50, 1024, 100), []byte{0, 5, 0, 10, 1, 50, 4, 0, 0, 100}},
		{"mouse", MouseCmd(MouseLeftDown, 550, 130), []byte{0, 2, 0, 10, 0, 2, 2, 38, 0, 130}},
		{"key down", KeyCmd(0x41, true), []byte{0, 1, 0, 6, 0, 0x41}},
		{"key up", KeyCmd(0x41, false), []byte{0, 1, 0, 6, 1, 0x41}},
		{"unicode", UnicodeCmd('z', true), []byte{0, 85, 0, 7, 0, 0, 'z'}},
		{"screen", ScreenCmd(1024, 768), []byte{0, 7, 0, 8, 4, 0, 3, 0}},
		{"byte", EncodeByte(KeyState, 3), []byte{0, 18, 0, 5, 3}},
		{"text", EncodeText(Error, "no"), []byte{0, 65, 0, 6, 'n', 'o'}},
		{"single display", DisplaysCmd([]uint16{1}, 1), []byte{0, 11, 0, 8, 0, 0, 0, 0}},
		{"two displays", DisplaysCmd([]uint16{1, 2}, 2), []byte{0, 11, 0, 14, 0, 3, 0xff, 0xff, 0, 1, 0, 2, 0, 2}},
	}
	for _, tc := range tests {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
		if c, n, ok := Header(tc.got); !ok || n != len(tc.got) || c != binary.BigEndian.Uint16(tc.want) {
			t.Errorf("%s: header %d %d %v", tc.name, c, n, ok)
		}
	}
	if n := len(EncodeText(Error, string(make([]byte, 70000)))); n != HeaderLen+maxText {
		t.Errorf("long text encoded in %d bytes", n)
	}
	if got := Displays(DisplaysCmd([]uint16{1, 2}, 2)[HeaderLen:]); len(got) != 3 || got[0] != AllDisplays || got[2] != 2 {
		t.Errorf("display list read back as %v", got)
	}
}

func TestUnwrap(t *testing.T) {
	jumbo := func(inner []byte, declared uint32) []byte {
		b := []byte{0, 27, 0, 8, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], declared)
		return append(b, inner...)
	}
	pic := append(Encode(Picture, 1, 2), 9, 9)
	tests := []struct {
		name string
		in   []byte
		cmd  uint16
		ok   bool
		bad  bool
	}{
		{"short", []byte{0, 7}, 0, false, false},
		{"plain", ScreenCmd(10, 20), Screen, true, false},
		{"jumbo", jumbo(pic, uint32(len(pic))), Picture, true, false},
		{"jumbo wrong inner length", jumbo(pic, uint32(len(pic)+1)), 0, false, true},
		{"jumbo too short", []byte{0, 27, 0, 8, 0, 0, 0, 4, 0, 3, 0, 4}, 0, false, true},
		{"length disagrees", []byte{0, 7, 0, 9, 0, 1}, 0, false, true},
	}
	for _, tc := range tests {
		c, ok, err := Unwrap(tc.in)
		if ok != tc.ok || (err != nil) != tc.bad || (tc.ok && c.Cmd != tc.cmd) {
			t.Errorf("%s: %+v ok=%v err=%v", tc.name, c, ok, err)
		}
		if err != nil && !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: error %v is not ErrBadMessage", tc.name, err)
		}
	}
	for _, tc := range []struct {
		in   []byte
		want int
	}{{nil, 4}, {[]byte{0, 3, 1}, 4}, {[]byte{0, 3, 1, 0}, 256}, {[]byte{0, 27, 0, 8}, 16}, {jumbo(nil, 70000), 70008}, {jumbo(nil, 2), 16}} {
		if got := MessageLen(tc.in); got != tc.want {
			t.Errorf("MessageLen(%x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzParser: the viewer's stream splits the same way however it is cut,
// never yields a command above MaxCommand and never buffers more.
func FuzzParser(f *testing.F) {
	f.Add([]byte{0, 1, 0, 6, 0, 0x41, 0, 6, 0, 4})
	f.Add(CompressionCmd(40, 1024, 50))
	f.Add([]byte{0, 2, 0, 12, 0, 0, 1, 0, 1, 0, 0xff, 0x88})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parser
		whole, _ := p.Feed(data)
		cut := len(data) / 2
		var q Parser
		a, bad1 := q.Feed(data[:cut])
		b, bad2 := q.Feed(data[cut:])
		if !bad1 && !bad2 {
			got := append(a, b...)
			if len(got) != len(whole) {
				t.Fatalf("split changed the command count: %d vs %d", len(got), len(whole))
			}
			for i := range got {
				if got[i].Cmd != whole[i].Cmd || !bytes.Equal(got[i].Data, whole[i].Data) {
					t.Fatalf("command %d differs", i)
				}
			}
		}
		for _, c := range whole {
			if len(c.Data) > MaxCommand-HeaderLen {
				t.Fatalf("command of %d bytes", len(c.Data))
			}
		}
		if p.Buffered() > MaxCommand {
			t.Fatalf("parser buffer grew to %d", p.Buffered())
		}
	})
}

// FuzzUnwrap: the viewer's decoder of agent messages never panics, accepts
// only messages whose framing adds up, and MessageLen agrees with it.
func FuzzUnwrap(f *testing.F) {
	f.Add(ScreenCmd(800, 600))
	f.Add(FramePicture(make([]byte, PictureHeader+4), 1, 2))
	f.Add(FramePicture(make([]byte, PictureHeader+MaxPlain+1), 1, 2))
	f.Add([]byte{0, 27, 0, 8, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, ok, err := Unwrap(data)
		if err != nil && ok {
			t.Fatal("error and ok together")
		}
		if !ok {
			return
		}
		if len(c.Data)+HeaderLen > len(data) {
			t.Fatalf("payload of %d bytes from a %d-byte message", len(c.Data), len(data))
		}
		if n := MessageLen(data); n != len(data) {
			t.Fatalf("MessageLen %d for a whole %d-byte message", n, len(data))
		}
	})
}
