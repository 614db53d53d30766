package sessionclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

func TestCutRun(t *testing.T) {
	for _, c := range []struct {
		in, out string
		status  int
		ok      bool
	}{
		{"junk MGOB t\r\nMGOBx\r\nhello\r\n\r\nMGOEx 0\r\n", "hello\n", 0, true},
		{"MGOBx\r\n\r\nMGOEx 7\r\n", "", 7, true},
		{"MGOBx\nno newline\nMGOEx 0\n", "no newline", 0, true},
		{"MGOBx\r\nhalf\r\n\r\nMGOEx 0", "", 0, false}, // status not finished yet
		{"prompt$ printf MGOB x\r\n", "", 0, false},
	} {
		r, ok := cutRun([]byte(c.in), "MGOBx", "MGOEx")
		if ok != c.ok || ok && (string(r.Output) != c.out || r.Status != c.status) {
			t.Errorf("cutRun(%q) = %q %d %v", c.in, r.Output, r.Status, ok)
		}
	}
}

// fakeAgent plays the desktop agent: SCREEN, SET_DISPLAY, display list,
// then the given picture messages.
func desktopMsgs(t *testing.T, w, h int, tiles ...[]byte) [][]byte {
	t.Helper()
	msgs := [][]byte{kvm.Encode(kvm.Screen, uint16(w), uint16(h)), kvm.Encode(kvm.SetDisplay, 1), kvm.Encode(kvm.GetDisplays, 0, 0)}
	return append(msgs, tiles...)
}

func picture(t *testing.T, x, y, w, h int, c color.RGBA, jumbo bool) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		copy(img.Pix[i:], []byte{c.R, c.G, c.B, 255})
	}
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	if !jumbo {
		b := kvm.Encode(kvm.Picture, uint16(x), uint16(y))
		binary.BigEndian.PutUint16(b[2:], uint16(8+buf.Len()))
		return append(b, buf.Bytes()...)
	}
	b := make([]byte, 16, 16+buf.Len())
	binary.BigEndian.PutUint16(b, kvm.Jumbo)
	binary.BigEndian.PutUint16(b[2:], 8)
	binary.BigEndian.PutUint32(b[4:], uint32(8+buf.Len()))
	binary.BigEndian.PutUint16(b[8:], kvm.Picture)
	binary.BigEndian.PutUint16(b[12:], uint16(x))
	binary.BigEndian.PutUint16(b[14:], uint16(y))
	return append(b, buf.Bytes()...)
}

func TestDesktopFrameAndFragments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b := session.Pipe(64)
	d := NewDesktop(b)
	defer d.Close()
	red, blue := color.RGBA{220, 20, 20, 255}, color.RGBA{20, 20, 220, 255}
	// 100x50: edge tiles extend past the screen and are clipped.
	msgs := desktopMsgs(t, 100, 50,
		picture(t, 0, 0, 64, 64, red, false),
		picture(t, 64, 0, 64, 64, blue, true))
	// The JUMBO arrives in three fragments, as over a data channel.
	last := msgs[len(msgs)-1]
	msgs = append(msgs[:len(msgs)-1], last[:5], last[5:40], last[40:])
	for i, m := range msgs {
		if i == len(msgs)-2 {
			if s := d.State(); s.Complete {
				t.Fatal("complete before the last tile")
			}
		}
		if err := a.Write(ctx, session.Frame{Binary: true, Data: m}); err != nil {
			t.Fatal(err)
		}
	}
	img, err := d.Frame(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 100 || img.Bounds().Dy() != 50 {
		t.Fatalf("frame %v", img.Bounds())
	}
	if c := img.RGBAAt(10, 10); c.R < 180 || c.B > 60 {
		t.Errorf("left pixel %v", c)
	}
	if c := img.RGBAAt(90, 40); c.B < 180 || c.R > 60 {
		t.Errorf("right pixel %v", c)
	}
	if n := len(d.TilesSince(0)); n != 2 {
		t.Errorf("%d tiles", n)
	}
	// An unknown display is refused without waiting.
	if _, err := d.Frame(ctx, 5); !errors.Is(err, ErrNoDisplay) {
		t.Errorf("display 5: %v", err)
	}
	// The SCREEN was answered with the default settings, as MeshCentral's
	// viewer answers it, so the agent need not wait for them.
	f, _ := a.Read(ctx)
	if want := kvm.CompressionCmd(60, 1024, 100); !bytes.Equal(f.Data, want) {
		t.Errorf("answer to SCREEN %x, want COMPRESSION %x", f.Data, want)
	}
	// New settings go out at once and answer the next SCREEN.
	if err := d.Compression(ctx, 30, 512, 50); err != nil {
		t.Fatal(err)
	}
	want := kvm.CompressionCmd(30, 512, 50)
	if f, _ := a.Read(ctx); !bytes.Equal(f.Data, want) {
		t.Errorf("Compression sent %x, want %x", f.Data, want)
	}
	a.Write(ctx, session.Frame{Binary: true, Data: kvm.Encode(kvm.Screen, 50, 25)})
	if f, _ := a.Read(ctx); !bytes.Equal(f.Data, want) {
		t.Errorf("answer to the second SCREEN %x, want %x", f.Data, want)
	}
	// Viewer input encodes as the protocol says.
	d.Mouse(ctx, MouseLeftDown, 300, 200)
	f, _ = a.Read(ctx)
	if !bytes.Equal(f.Data, []byte{0, 2, 0, 10, 0, 2, 1, 44, 0, 200}) {
		t.Errorf("mouse command %x", f.Data)
	}
}
