package desktop

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"

	"testing"

	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// The parser's split/join and picture framing tests are in proto/kvm;
// this fuzz target adds what only this package can check: applying any
// parsed command to a session never panics or leaves a setting out of range.
func FuzzParser(f *testing.F) {
	f.Add([]byte{0, 1, 0, 6, 0, 0x41, 0, 6, 0, 4})
	f.Add(kvm.Encode(kvm.Compression, 0x0128, 1024, 50))
	f.Add([]byte{0, 2, 0, 12, 0, 0, 1, 0, 1, 0, 0xff, 0x88})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var p kvm.Parser
		// Feed in two pieces at every split point of a prefix: the result
		// must not depend on how the stream was cut.
		whole, _ := p.Feed(data)
		cut := len(data) / 2
		var q kvm.Parser
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
			if len(c.Data) > kvm.MaxCommand-4 {
				t.Fatalf("command of %d bytes", len(c.Data))
			}
		}
		if p.Buffered() > kvm.MaxCommand {
			t.Fatalf("parser buffer grew to %d", p.Buffered())
		}
		// Applying the parsed commands must never panic, whatever they say.
		s := &sess{ch: discardCh{}, log: slog.New(slog.DiscardHandler), tiles: newTiler(), quality: defaultQuality, scale: scaleFull, interval: defaultFrame, input: true,
			mons: []monitor{{ID: 1, W: 64, H: 64}}}
		for _, c := range whole {
			if !s.handleInput(context.Background(), c) {
				if err := s.apply(context.Background(), c); err != nil {
					t.Fatal(err)
				}
			}
			if s.interval < minFrame || s.interval > maxFrame || s.quality < 1 || s.quality > 100 || s.scale < minScale || s.scale > scaleFull {
				t.Fatalf("setting out of range: %v q%d s%d", s.interval, s.quality, s.scale)
			}
		}
	})
}

func TestDisplayList(t *testing.T) {
	if m := encodeDisplays([]monitor{{ID: 1}}, 1); !bytes.Equal(m, []byte{0, 11, 0, 8, 0, 0, 0, 0}) {
		t.Fatalf("single %x", m)
	}
	m := encodeDisplays([]monitor{{ID: 1}, {ID: 2}}, 2)
	want := []byte{0, 11, 0, 14, 0, 3, 0xff, 0xff, 0, 1, 0, 2, 0, 2}
	if !bytes.Equal(m, want) {
		t.Fatalf("dual %x want %x", m, want)
	}
}

func TestXauthParse(t *testing.T) {
	var b bytes.Buffer
	put := func(family uint16, fields ...string) {
		binary.Write(&b, binary.BigEndian, family)
		for _, f := range fields {
			binary.Write(&b, binary.BigEndian, uint16(len(f)))
			b.WriteString(f)
		}
	}
	put(familyLocal, "otherhost", "3", cookieName, "0123456789abcdef")
	put(familyWild, "", "7", cookieName, "fedcba9876543210")
	put(familyLocal, "x", "7", "XDM-AUTHORIZATION-1", "nope")
	b.Write([]byte{1, 0, 0}) // truncated tail
	es := parseXauth(b.Bytes())
	if len(es) != 3 || es[1].family != familyWild || es[0].number != "3" || string(es[2].data) != "nope" {
		t.Fatalf("parsed %+v", es)
	}
	path := t.TempDir() + "/auth"
	writeFile(t, path, b.Bytes())
	if c, err := findCookie(path, "7"); err != nil || string(c) != "fedcba9876543210" {
		t.Fatalf("display 7: %q %v", c, err)
	}
	// A local entry for another hostname is still used when nothing better exists.
	if c, err := findCookie(path, "3"); err != nil || string(c) != "0123456789abcdef" {
		t.Fatalf("display 3: %q %v", c, err)
	}
	if _, err := findCookie(path, "9"); err == nil {
		t.Fatal("found a cookie for display 9")
	}
}

func TestTilerMergesAndPads(t *testing.T) {
	f := &frame{w: 100, h: 70, stride: 400, pix: make([]byte, 400*70)}
	tl := newTiler()
	if n := tl.diff(f); n != 4*3 {
		t.Fatalf("first diff %d tiles", n)
	}
	rs := tl.rects(nil)
	if len(rs) != 1 || rs[0] != (rect{0, 0, 128, 96}) {
		t.Fatalf("full rects %+v", rs)
	}
	if tl.diff(f) != 0 {
		t.Fatal("unchanged frame reported changes")
	}
	// Change two pixels in non-adjacent tiles.
	f.pix[0] = 1
	f.pix[65*400+99*4] = 1
	if n := tl.diff(f); n != 2 {
		t.Fatalf("diff %d", n)
	}
	rs = tl.rects(nil)
	if len(rs) != 2 || rs[0] != (rect{0, 0, 32, 32}) || rs[1] != (rect{96, 64, 32, 32}) {
		t.Fatalf("rects %+v", rs)
	}
	// The edge rectangle is padded with black past the frame.
	sub, _ := f.sub(rs[1], nil)
	if sub.w != 32 || sub.h != 32 || sub.pix[(65-64)*sub.stride+3*4] != 1 || sub.pix[(65-64)*sub.stride+4*4] != 0 {
		t.Fatalf("padded sub %dx%d", sub.w, sub.h)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// discardCh is a Channel that swallows writes, for driving sess directly.
type discardCh struct{}

func (discardCh) Read(ctx context.Context) (session.Frame, error) {
	<-ctx.Done()
	return session.Frame{}, ctx.Err()
}
func (discardCh) Write(context.Context, session.Frame) error { return nil }
func (discardCh) Close() error                               { return nil }

func TestTilerDiffAtMatchesFullDiff(t *testing.T) {
	w, h := 200, 130
	mk := func() *frame { return &frame{w: w, h: h, stride: w * 4, pix: make([]byte, w*h*4)} }
	a, b := newTiler(), newTiler()
	f := mk()
	a.diff(f)
	b.diff(f)
	for i, box := range []rect{{5, 7, 40, 3}, {190, 120, 10, 10}, {31, 31, 2, 2}, {0, 0, 200, 130}, {64, 96, 64, 32}} {
		// change pixels inside the box only
		for y := box.y; y < box.y+box.h; y += 2 {
			for x := box.x; x < box.x+box.w; x += 3 {
				f.pix[y*f.stride+x*4+1] += byte(i + 1)
			}
		}
		na := a.diff(f)
		sub := frame{pix: f.pix[box.y*f.stride+box.x*4:], stride: f.stride, w: box.w, h: box.h}
		if !b.canDiffAt(w, h) {
			t.Fatal("tiler not reusable")
		}
		nb := b.diffAt(&sub, box.x, box.y)
		if na != nb || na == 0 {
			t.Fatalf("box %v: full diff %d tiles, diffAt %d", box, na, nb)
		}
		for k := range a.dirty {
			if a.dirty[k] != b.dirty[k] {
				t.Fatalf("box %v: tile %d differs", box, k)
			}
		}
		if !bytes.Equal(a.prev, b.prev) || !bytes.Equal(b.current().pix, f.pix) {
			t.Fatalf("box %v: remembered frames differ", box)
		}
	}
}
