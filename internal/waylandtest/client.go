//go:build linux

package waylandtest

import (
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/wayland"
	"golang.org/x/sys/unix"
)

// Window is an xdg_toplevel that paints what Paint gives it and records
// the keyboard and pointer events the compositor delivers to it.
type Window struct {
	c       *wayland.Client
	comp    uint32
	shm     uint32
	surface uint32
	xdgSurf uint32
	wm      uint32

	mu       sync.Mutex
	W, H     int // configured size
	sized    bool
	hasPtr   bool
	hasKbd   bool
	conf     chan struct{}
	confOnce sync.Once
	Keys     []KeyEvent
	Mods     []uint32 // depressed masks in order received
	Motions  [][2]float64
	Buttons  [][2]uint32 // code, state
	Scroll   []float64   // vertical axis values (positive: down)
	Keymap   string
	bufs     []*wayland.ShmBuffer
	free     []*wayland.ShmBuffer // released by the compositor
	stale    map[*wayland.ShmBuffer]image.Rectangle
	master   []byte // the whole picture, XRGB
}

// KeyEvent is one wl_keyboard.key.
type KeyEvent struct {
	Code  uint32 // evdev
	Down  bool
	Mods  uint32 // depressed modifiers at the time
	Group uint32
}

// OpenWindow connects to the compositor and maps a toplevel; sway tiles it
// over the whole output and focuses it.
func OpenWindow(socket string) (*Window, error) { return openWindow(socket, false, nil) }

// OpenFullscreenWindow maps a toplevel that asks to be fullscreen: how a
// test client covers the output on a stacking compositor such as mutter.
func OpenFullscreenWindow(socket string) (*Window, error) { return openWindow(socket, true, nil) }

// OpenFullscreenWindowAt maps a fullscreen toplevel on the output whose
// top-left corner is at x, y in the compositor's layout (wl_output
// geometry): one window per monitor.
func OpenFullscreenWindowAt(socket string, x, y int) (*Window, error) {
	return openWindow(socket, true, &image.Point{X: x, Y: y})
}

func openWindow(socket string, fullscreen bool, at *image.Point) (*Window, error) {
	c, err := wayland.Dial(socket)
	if err != nil {
		return nil, err
	}
	output := uint32(0) // any
	if at != nil {
		if output, err = findOutput(c, *at); err != nil {
			c.Close()
			return nil, err
		}
	}
	w := &Window{c: c, conf: make(chan struct{}), stale: map[*wayland.ShmBuffer]image.Rectangle{}}
	need := func(iface string, ver uint32, h wayland.Handler) uint32 {
		g, ok := c.Find(iface)
		if !ok {
			err = fmt.Errorf("compositor lacks %s", iface)
			return 0
		}
		id, e := c.Bind(g, ver, h)
		if e != nil {
			err = e
		}
		return id
	}
	w.comp = need("wl_compositor", 4, nil)
	w.shm = need("wl_shm", 1, nil)
	w.wm = need("xdg_wm_base", 1, func(m wayland.Message) {
		if m.Opcode == 0 { // ping
			serial := wayland.NewReader(m).Uint()
			c.Send(w.wm, 3, new(wayland.Writer).Uint(serial))
		}
	})
	var seat uint32
	seat = need("wl_seat", 5, func(m wayland.Message) {
		if m.Opcode != 0 { // capabilities
			return
		}
		caps := wayland.NewReader(m).Uint()
		// Capabilities repeat when devices come and go: one of each.
		w.mu.Lock()
		newPtr, newKbd := caps&1 != 0 && !w.hasPtr, caps&2 != 0 && !w.hasKbd
		w.hasPtr, w.hasKbd = w.hasPtr || newPtr, w.hasKbd || newKbd
		w.mu.Unlock()
		if newPtr {
			c.Send(seat, 0, new(wayland.Writer).Uint(c.NewID(w.pointerEvent)))
		}
		if newKbd {
			c.Send(seat, 1, new(wayland.Writer).Uint(c.NewID(w.keyboardEvent)))
		}
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	w.surface = c.NewID(nil)
	c.Send(w.comp, 0, new(wayland.Writer).Uint(w.surface))
	w.xdgSurf = c.NewID(func(m wayland.Message) {
		if m.Opcode == 0 { // configure(serial)
			serial := wayland.NewReader(m).Uint()
			c.Send(w.xdgSurf, 4, new(wayland.Writer).Uint(serial))
			w.confOnce.Do(func() { close(w.conf) })
		}
	})
	c.Send(w.wm, 2, new(wayland.Writer).Uint(w.xdgSurf).Uint(w.surface))
	top := c.NewID(func(m wayland.Message) {
		if m.Opcode == 0 { // configure(width, height, states)
			r := wayland.NewReader(m)
			cw, ch := r.Int(), r.Int()
			w.mu.Lock()
			if cw > 0 && ch > 0 {
				w.W, w.H = int(cw), int(ch)
				w.sized = true
			}
			w.mu.Unlock()
		}
	})
	c.Send(w.xdgSurf, 1, new(wayland.Writer).Uint(top))
	c.Send(top, 2, new(wayland.Writer).String("meshagent-test"))
	if fullscreen {
		c.Send(top, 11, new(wayland.Writer).Uint(output)) // set_fullscreen(output)
	}
	c.Send(w.surface, 6, nil) // initial commit without a buffer
	select {
	case <-w.conf:
	case <-time.After(5 * time.Second):
		c.Close()
		return nil, fmt.Errorf("no xdg configure in 5s")
	}
	if err := c.Roundtrip(5 * time.Second); err != nil {
		c.Close()
		return nil, err
	}
	// sway's first configure has no size: map with a small buffer, then
	// the tiled size follows.
	if ww, _ := w.Size(); ww == 0 {
		w.mu.Lock()
		w.W, w.H = 64, 64
		w.mu.Unlock()
		if err := w.Paint(func(int, int) uint32 { return 0 }); err != nil {
			c.Close()
			return nil, err
		}
		end := time.Now().Add(5 * time.Second)
		for !w.isSized() && time.Now().Before(end) {
			time.Sleep(20 * time.Millisecond)
		}
		if !w.isSized() {
			c.Close()
			return nil, fmt.Errorf("no sized configure after mapping")
		}
	}
	return w, nil
}

// findOutput binds every wl_output and returns the one whose geometry
// puts its top-left corner at p.
func findOutput(c *wayland.Client, p image.Point) (uint32, error) {
	var mu sync.Mutex
	pos := map[int]image.Point{}
	var ids []uint32
	for _, g := range c.Globals() {
		if g.Interface != "wl_output" {
			continue
		}
		i := len(ids)
		id, err := c.Bind(g, 1, func(m wayland.Message) {
			if m.Opcode == 0 { // geometry(x, y, ...)
				r := wayland.NewReader(m)
				x, y := r.Int(), r.Int()
				mu.Lock()
				pos[i] = image.Point{X: int(x), Y: int(y)}
				mu.Unlock()
			}
		})
		if err != nil {
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := c.Roundtrip(5 * time.Second); err != nil {
		return 0, err
	}
	mu.Lock()
	defer mu.Unlock()
	for i, id := range ids {
		if q, ok := pos[i]; ok && q == p {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no wl_output at %v (outputs at %v)", p, pos)
}

func (w *Window) isSized() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sized
}

// Size is the size the compositor gave the window.
func (w *Window) Size() (int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.W, w.H
}

// Paint draws pix(x, y) (0xRRGGBB) over the window and commits it with
// the whole surface damaged.
func (w *Window) Paint(pix func(x, y int) uint32) error {
	ww, hh := w.Size()
	return w.PaintDamage(pix, 0, 0, ww, hh)
}

// PaintDamage updates the rectangle x0, y0, dw, dh of the window from
// pix (only there: the rest keeps what was painted before) and commits it
// with just that rectangle damaged. The window keeps the whole picture and
// brings each buffer it reuses up to date by the rectangles painted since,
// so a small change costs little however large the window.
func (w *Window) PaintDamage(pix func(x, y int) uint32, x0, y0, dw, dh int) error {
	ww, hh := w.Size()
	if ww == 0 {
		return fmt.Errorf("window not configured with a size")
	}
	x1, y1 := min(x0+dw, ww), min(y0+dh, hh)
	x0, y0 = max(x0, 0), max(y0, 0)
	if len(w.master) != ww*hh*4 {
		w.master = make([]byte, ww*hh*4)
		x0, y0, x1, y1 = 0, 0, ww, hh
	}
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			v := pix(x, y)
			o := (y*ww + x) * 4
			w.master[o], w.master[o+1], w.master[o+2], w.master[o+3] = byte(v), byte(v>>8), byte(v>>16), 0xff
		}
	}
	r := image.Rect(x0, y0, x1, y1)
	var b *wayland.ShmBuffer
	w.mu.Lock()
	for _, o := range w.bufs {
		w.stale[o] = w.stale[o].Union(r)
	}
	for i, f := range w.free {
		if f.W == ww && f.H == hh {
			b = f
			w.free = append(w.free[:i], w.free[i+1:]...)
			break
		}
	}
	w.mu.Unlock()
	if b == nil {
		var err error
		if b, err = wayland.NewShmBuffer(w.c, w.shm, ww, hh, ww*4, wayland.ShmFormatXRGB8888); err != nil {
			return err
		}
		w.mu.Lock()
		w.bufs = append(w.bufs, b)
		w.stale[b] = image.Rect(0, 0, ww, hh)
		w.mu.Unlock()
		w.c.SetHandler(b.ID, func(m wayland.Message) {
			if m.Opcode == 0 { // release: the compositor is done reading it
				w.mu.Lock()
				w.free = append(w.free, b)
				w.mu.Unlock()
			}
		})
	}
	w.mu.Lock()
	st := w.stale[b]
	w.stale[b] = image.Rectangle{}
	w.mu.Unlock()
	for y := st.Min.Y; y < st.Max.Y; y++ {
		o := (y*ww + st.Min.X) * 4
		copy(b.Data[o:o+st.Dx()*4], w.master[o:o+st.Dx()*4])
	}
	w.c.Send(w.surface, 1, new(wayland.Writer).Uint(b.ID).Int(0).Int(0))
	w.c.Send(w.surface, 2, new(wayland.Writer).Int(int32(x0)).Int(int32(y0)).Int(int32(x1-x0)).Int(int32(y1-y0)))
	w.c.Send(w.surface, 6, nil)
	return w.c.Roundtrip(5 * time.Second)
}

func (w *Window) keyboardEvent(m wayland.Message) {
	r := wayland.NewReader(m)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Opcode {
	case 0: // keymap(format, fd, size)
		r.Uint()
		size := r.Uint()
		fd, ok := w.c.TakeFD()
		if !ok {
			return
		}
		defer unix.Close(fd)
		if size == 0 || size > 1<<20 {
			return
		}
		data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			return
		}
		n := len(data)
		for n > 0 && data[n-1] == 0 {
			n--
		}
		w.Keymap = string(data[:n])
		unix.Munmap(data)
	case 3: // key(serial, time, key, state)
		r.Uint()
		r.Uint()
		code, st := r.Uint(), r.Uint()
		mods := uint32(0)
		if len(w.Mods) > 0 {
			mods = w.Mods[len(w.Mods)-1]
		}
		w.Keys = append(w.Keys, KeyEvent{Code: code, Down: st == 1, Mods: mods})
	case 4: // modifiers(serial, depressed, latched, locked, group)
		r.Uint()
		w.Mods = append(w.Mods, r.Uint())
	}
}

func (w *Window) pointerEvent(m wayland.Message) {
	r := wayland.NewReader(m)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Opcode {
	case 0: // enter(serial, surface, x, y)
		r.Uint()
		r.Uint()
		w.Motions = append(w.Motions, [2]float64{r.Fixed(), r.Fixed()})
	case 2: // motion(time, x, y)
		r.Uint()
		w.Motions = append(w.Motions, [2]float64{r.Fixed(), r.Fixed()})
	case 3: // button(serial, time, button, state)
		r.Uint()
		r.Uint()
		w.Buttons = append(w.Buttons, [2]uint32{r.Uint(), r.Uint()})
	case 4: // axis(time, axis, value)
		r.Uint()
		if r.Uint() == 0 { // vertical
			w.Scroll = append(w.Scroll, r.Fixed())
		}
	}
}

// HasKeyboard reports whether the client has bound a wl_keyboard (the
// seat announced one).
func (w *Window) HasKeyboard() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hasKbd
}

// Scrolls returns the vertical axis values received so far.
func (w *Window) Scrolls() []float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]float64(nil), w.Scroll...)
}

// Snapshot returns copies of what was received so far.
func (w *Window) Snapshot() (keys []KeyEvent, motions [][2]float64, buttons [][2]uint32, keymap string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]KeyEvent(nil), w.Keys...), append([][2]float64(nil), w.Motions...), append([][2]uint32(nil), w.Buttons...), w.Keymap
}

// Close disconnects; the compositor unmaps the window.
func (w *Window) Close() {
	w.c.Close()
	for _, b := range w.bufs {
		if b.Data != nil {
			unix.Munmap(b.Data)
		}
	}
}
