package sessionclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/files"
	"github.com/meshgo/meshagent/agent/session"
	"github.com/meshgo/meshagent/agent/terminal"
)

// The clients against the agent's own handlers over an in-memory channel:
// the wire formats without a server or a process in between.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func serveFiles(t *testing.T) *Files {
	a, b := session.Pipe(64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		files.Serve(ctx, a, session.Info{Protocol: session.ProtoFiles, Rights: session.RightAdmin}, files.Options{Logger: quiet})
	}()
	f := NewFiles(b)
	t.Cleanup(func() { f.Close(); cancel(); <-done })
	return f
}

func TestFilesAgainstAgentFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	data := make([]byte, 3<<20+17) // not a multiple of any chunk or block
	rand.Read(data)
	data[0] = '{' // the first chunk needs the 0 escape
	f := serveFiles(t)
	var last int64
	if err := f.Upload(ctx, dir, "x.bin", bytes.NewReader(data), int64(len(data)), func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "x.bin")); !bytes.Equal(got, data) || last != int64(len(data)) {
		t.Fatalf("uploaded %d bytes, progress %d", len(got), last)
	}
	es, err := f.List(ctx, dir)
	if err != nil || len(es) != 1 || es[0] != (Entry{Name: "x.bin", Type: "file", Size: int64(len(data)), MTime: es[0].MTime}) || es[0].MTime == "" {
		t.Fatalf("list: %+v %v", es, err)
	}
	var buf bytes.Buffer
	n, err := f.Download(ctx, filepath.Join(dir, "x.bin"), &buf, nil)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("download: %d %v", n, err)
	}
	// Errors are answers, not hangs, and the session stays usable.
	if _, err := f.Download(ctx, filepath.Join(dir, "missing"), io.Discard, nil); !errors.Is(err, ErrRemoteFile) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := f.List(ctx, filepath.Join(dir, "missing")); !errors.Is(err, ErrNoFolder) {
		t.Fatalf("missing folder: %v", err)
	}
	if err := f.Upload(ctx, filepath.Join(dir, "missing"), "y", bytes.NewReader([]byte("hi")), 2, nil); err == nil {
		t.Fatal("upload into a missing folder succeeded")
	}
	// An empty file both ways.
	if err := f.Upload(ctx, dir, "empty", bytes.NewReader(nil), 0, nil); err != nil {
		t.Fatalf("empty upload: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "empty")); err != nil || st.Size() != 0 {
		t.Fatalf("empty upload: %v", err)
	}
	if n, err := f.Download(ctx, filepath.Join(dir, "empty"), io.Discard, nil); err != nil || n != 0 {
		t.Fatalf("empty download: %d %v", n, err)
	}
	if es, err := f.List(ctx, dir); err != nil || len(es) != 2 {
		t.Fatalf("list after errors: %+v %v", es, err)
	}
}

func TestTerminalRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("POSIX shell on a pty")
	}
	a, b := session.Pipe(64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		terminal.Serve(ctx, a, session.Info{Protocol: session.ProtoTerminal, Rights: session.RightAdmin}, terminal.Options{Logger: quiet})
	}()
	term := NewTerminal(b)
	defer func() { term.Close(); <-done }()
	res, err := term.Run(ctx, "echo 'it''s'; printf 'a\\nb'; false")
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != "its\na\nb" || res.Status != 1 {
		t.Fatalf("Run: %q status %d", res.Output, res.Status)
	}
}

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
	msgs := [][]byte{kvm(kvmScreen, uint16(w), uint16(h)), kvm(kvmSetDisplay, 1), kvm(kvmGetDisplays, 0, 0)}
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
		b := kvm(kvmPicture, uint16(x), uint16(y))
		binary.BigEndian.PutUint16(b[2:], uint16(8+buf.Len()))
		return append(b, buf.Bytes()...)
	}
	b := make([]byte, 16, 16+buf.Len())
	binary.BigEndian.PutUint16(b, kvmJumbo)
	binary.BigEndian.PutUint16(b[2:], 8)
	binary.BigEndian.PutUint32(b[4:], uint32(8+buf.Len()))
	binary.BigEndian.PutUint16(b[8:], kvmPicture)
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
	// Viewer input encodes as the protocol says.
	d.Mouse(ctx, MouseLeftDown, 300, 200)
	f, _ := a.Read(ctx)
	if !bytes.Equal(f.Data, []byte{0, 2, 0, 10, 0, 2, 1, 44, 0, 200}) {
		t.Errorf("mouse command %x", f.Data)
	}
}
