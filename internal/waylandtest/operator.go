//go:build linux

package waylandtest

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/meshgo/meshagent/agent/mutter"
)

// Operator stands for the person at mutter's screen: it sees the screen
// and clicks, through a Mutter RemoteDesktop session of its own (Mutter
// grants those without asking). Tests answer the portal's dialog with it.
type Operator struct {
	c    *dbus.Conn
	s    *mutter.Session
	f    *mutter.Frames
	w, h int

	mu     sync.Mutex
	latest []byte
	ended  error // why the view's pipeline stopped, nil while it runs
}

// Operator starts one; it ends with the test.
func (m *Mutter) Operator(t TB) *Operator {
	t.Helper()
	c, err := mutter.Dial(m.Bus, m.UID)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mutter.Start(c, nil, mutter.CursorHidden)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + m.Runtime, "PATH=/usr/bin:/bin", "HOME=/nonexistent",
		"GST_REGISTRY=" + filepath.Join(m.Runtime, "operator-gst-registry.bin")}
	f, err := mutter.StartFrames(s.Streams[0].Node, &syscall.Credential{Uid: uint32(m.UID), Gid: uint32(m.GID)}, env)
	if err != nil {
		s.Close()
		c.Close()
		t.Fatal(err)
	}
	o := &Operator{c: c, s: s, f: f}
	t.Cleanup(func() { f.Close(); <-f.Done(); s.Close(); c.Close() })
	w, h, err := f.Size()
	if err != nil {
		t.Fatalf("operator's view: %v", err)
	}
	o.w, o.h = w, h
	go func() {
		for {
			buf := make([]byte, w*h*4)
			if err := f.Read(buf); err != nil {
				o.mu.Lock()
				o.ended = err
				o.mu.Unlock()
				return
			}
			o.mu.Lock()
			o.latest = buf
			o.mu.Unlock()
		}
	}()
	return o
}

// Pixel is the latest frame's colour at x, y (ok false before a frame).
func (o *Operator) Pixel(x, y int) (r, g, b uint8, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.latest == nil || x < 0 || y < 0 || x >= o.w || y >= o.h {
		return 0, 0, 0, false
	}
	p := o.latest[(y*o.w+x)*4:]
	return p[2], p[1], p[0], true
}

// WaitPixel waits up to d for the pixel at x, y to satisfy want.
func (o *Operator) WaitPixel(x, y int, d time.Duration, want func(r, g, b uint8) bool) error {
	deadline := time.Now().Add(d)
	for {
		r, g, b, ok := o.Pixel(x, y)
		if ok && want(r, g, b) {
			return nil
		}
		if time.Now().After(deadline) {
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.ended != nil {
				return fmt.Errorf("pixel %d,%d never as wanted in %s: the operator's view ended: %w", x, y, d, o.ended)
			}
			if o.latest == nil {
				return fmt.Errorf("pixel %d,%d: no frame from the operator's view in %s", x, y, d)
			}
			return fmt.Errorf("pixel %d,%d is %02x%02x%02x after %s", x, y, r, g, b, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Click moves the pointer to x, y and clicks the left button.
func (o *Operator) Click(x, y int) error {
	if err := o.s.PointerMotionAbsolute(0, float64(x), float64(y)); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond) // a press right on the motion may land on the old position
	if err := o.s.PointerButton(0x110, true); err != nil {
		return err
	}
	return o.s.PointerButton(0x110, false)
}

// Blue reports GNOME's accent blue (#3584e4: suggested buttons, a switch
// turned on, a ticked check box).
func Blue(r, g, b uint8) bool { return b > 170 && r < 110 && g > 90 && g < 170 }

// SavePNG writes the latest frame to path (for a failing test's log).
func (o *Operator) SavePNG(path string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.latest == nil {
		return fmt.Errorf("no frame yet")
	}
	img := image.NewRGBA(image.Rect(0, 0, o.w, o.h))
	for i := 0; i < o.w*o.h; i++ {
		img.Pix[i*4], img.Pix[i*4+1], img.Pix[i*4+2], img.Pix[i*4+3] = o.latest[i*4+2], o.latest[i*4+1], o.latest[i*4], 255
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}
