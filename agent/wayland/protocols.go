//go:build linux

package wayland

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Interface names and the versions this package speaks.
const (
	IfShm               = "wl_shm"
	IfOutput            = "wl_output"
	IfSeat              = "wl_seat"
	IfCompositor        = "wl_compositor"
	IfScreencopy        = "zwlr_screencopy_manager_v1"
	IfVirtualPointer    = "zwlr_virtual_pointer_manager_v1"
	IfVirtualKeyboard   = "zwp_virtual_keyboard_manager_v1"
	ShmFormatARGB8888   = 0
	ShmFormatXRGB8888   = 1
	KeymapFormatXKBv1   = 1
	ButtonLeft          = 0x110 // evdev BTN_LEFT
	ButtonRight         = 0x111
	ButtonMiddle        = 0x112
	AxisVertical        = 0
	outputModeCurrent   = 1
	screencopyFlagYInv  = 1
	screencopyVersion   = 3
	outputVersion       = 3
	virtualPointerVers  = 2
	virtualKeyboardVers = 1
)

// ShmBuffer is a wl_buffer backed by memory we map: the compositor writes
// screencopy frames into Data.
type ShmBuffer struct {
	c      *Client
	ID     uint32
	Data   []byte
	W, H   int
	Stride int
	Format uint32
}

// NewShmBuffer creates a pool of exactly one buffer of the given shape.
func NewShmBuffer(c *Client, shm uint32, w, h, stride int, format uint32) (*ShmBuffer, error) {
	size := stride * h
	if w <= 0 || h <= 0 || stride < w*4 || size <= 0 || size > 1<<30 {
		return nil, fmt.Errorf("wayland: bad buffer %dx%d stride %d", w, h, stride)
	}
	f, err := Memfd("meshagent-shm", size)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the compositor holds its own reference once sent
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("wayland mmap: %w", err)
	}
	pool := c.NewID(nil)
	if err := c.Send(shm, 0, new(Writer).Uint(pool).FD(int(f.Fd())).Int(int32(size))); err != nil { // create_pool
		unix.Munmap(data)
		return nil, err
	}
	b := &ShmBuffer{c: c, ID: c.NewID(nil), Data: data, W: w, H: h, Stride: stride, Format: format}
	err = c.Send(pool, 0, new(Writer).Uint(b.ID).Int(0).Int(int32(w)).Int(int32(h)).Int(int32(stride)).Uint(format)) // create_buffer
	c.Send(pool, 1, nil)                                                                                             // pool.destroy: the buffer keeps the memory
	if err != nil {
		unix.Munmap(data)
		return nil, err
	}
	return b, nil
}

// Destroy releases the buffer and unmaps it.
func (b *ShmBuffer) Destroy() {
	b.c.Send(b.ID, 0, nil)
	if b.Data != nil {
		unix.Munmap(b.Data)
		b.Data = nil
	}
}

// OutputInfo is what wl_output tells about a monitor.
type OutputInfo struct {
	X, Y      int
	W, H      int // current mode, in pixels
	Transform int32
	Scale     int32
	Make      string
	Model     string
}

// Output is a bound wl_output; Info is complete after its done event.
type Output struct {
	ID     uint32
	Global Global
	mu     sync.Mutex
	info   OutputInfo
	done   bool
}

// Info returns the latest geometry and whether it was ever completed.
func (o *Output) Info() (OutputInfo, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.info, o.done
}

// BindOutputs binds every advertised wl_output and waits for their
// geometry.
func BindOutputs(c *Client) ([]*Output, error) {
	var outs []*Output
	for _, g := range c.Globals() {
		if g.Interface != IfOutput {
			continue
		}
		o := &Output{Global: g, info: OutputInfo{Scale: 1}}
		id, err := c.Bind(g, outputVersion, o.event)
		if err != nil {
			return nil, err
		}
		o.ID = id
		outs = append(outs, o)
	}
	if err := c.Roundtrip(5 * time.Second); err != nil {
		return nil, err
	}
	// Sort by global name: the compositor's order.
	for i := 1; i < len(outs); i++ {
		for j := i; j > 0 && outs[j].Global.Name < outs[j-1].Global.Name; j-- {
			outs[j], outs[j-1] = outs[j-1], outs[j]
		}
	}
	return outs, nil
}

func (o *Output) event(m Message) {
	r := NewReader(m)
	o.mu.Lock()
	defer o.mu.Unlock()
	switch m.Opcode {
	case 0: // geometry(x, y, phys w, phys h, subpixel, make, model, transform)
		x, y := r.Int(), r.Int()
		r.Int()
		r.Int()
		r.Int()
		mk, model, tr := r.String(), r.String(), r.Int()
		if r.Err() == nil {
			o.info.X, o.info.Y, o.info.Make, o.info.Model, o.info.Transform = int(x), int(y), mk, model, tr
		}
	case 1: // mode(flags, width, height, refresh)
		flags, w, h := r.Uint(), r.Int(), r.Int()
		if r.Err() == nil && flags&outputModeCurrent != 0 {
			o.info.W, o.info.H = int(w), int(h)
		}
	case 2: // done
		o.done = true
	case 3: // scale
		if s := r.Int(); r.Err() == nil && s > 0 {
			o.info.Scale = s
		}
	}
}

// FrameBuffer is the shm buffer shape a screencopy frame asks for.
type FrameBuffer struct {
	Format        uint32
	W, H, Stride  int
	YInvert       bool
	DamageX       int
	DamageY       int
	DamageW       int
	DamageH       int
	Damaged       bool
	Failed        bool
	ReadyTime     time.Time
	bufferOffered bool
}

// ScreencopyFrame is one zwlr_screencopy_frame_v1: capture_output, then
// its buffer event, then Copy into a buffer, then ready or failed.
type ScreencopyFrame struct {
	c       *Client
	ID      uint32
	mu      sync.Mutex
	st      FrameBuffer
	shaped  chan struct{} // closed once the buffer shape is known
	settled chan struct{} // closed on ready or failed
	version uint32
	once1   sync.Once
	once2   sync.Once
}

// CaptureOutput starts capturing one output (overlayCursor: draw the
// cursor into the frame). Wait on Shape, then Copy.
func CaptureOutput(c *Client, manager, managerVersion uint32, output uint32, overlayCursor bool) (*ScreencopyFrame, error) {
	f := &ScreencopyFrame{c: c, shaped: make(chan struct{}), settled: make(chan struct{}), version: managerVersion}
	f.ID = c.NewID(f.event)
	cur := int32(0)
	if overlayCursor {
		cur = 1
	}
	if err := c.Send(manager, 0, new(Writer).Uint(f.ID).Int(cur).Uint(output)); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *ScreencopyFrame) event(m Message) {
	r := NewReader(m)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m.Opcode {
	case 0: // buffer(format, width, height, stride): the shm shape
		fm, w, h, s := r.Uint(), r.Uint(), r.Uint(), r.Uint()
		if r.Err() == nil && !f.st.bufferOffered {
			f.st.Format, f.st.W, f.st.H, f.st.Stride = fm, int(w), int(h), int(s)
			f.st.bufferOffered = true
		}
		if f.version < 3 { // no buffer_done before v3
			f.once1.Do(func() { close(f.shaped) })
		}
	case 1: // flags
		if fl := r.Uint(); r.Err() == nil {
			f.st.YInvert = fl&screencopyFlagYInv != 0
		}
	case 2: // ready(tv_sec_hi, tv_sec_lo, tv_nsec)
		hi, lo, ns := r.Uint(), r.Uint(), r.Uint()
		f.st.ReadyTime = time.Unix(int64(hi)<<32|int64(lo), int64(ns))
		f.once2.Do(func() { close(f.settled) })
	case 3: // failed
		f.st.Failed = true
		f.once1.Do(func() { close(f.shaped) })
		f.once2.Do(func() { close(f.settled) })
	case 4: // damage(x, y, width, height): may come several times
		x, y, w, h := r.Uint(), r.Uint(), r.Uint(), r.Uint()
		if r.Err() == nil {
			if !f.st.Damaged {
				f.st.DamageX, f.st.DamageY, f.st.DamageW, f.st.DamageH = int(x), int(y), int(w), int(h)
			} else {
				x0, y0 := min(f.st.DamageX, int(x)), min(f.st.DamageY, int(y))
				x1 := max(f.st.DamageX+f.st.DamageW, int(x+w))
				y1 := max(f.st.DamageY+f.st.DamageH, int(y+h))
				f.st.DamageX, f.st.DamageY, f.st.DamageW, f.st.DamageH = x0, y0, x1-x0, y1-y0
			}
			f.st.Damaged = true
		}
	case 6: // buffer_done
		f.once1.Do(func() { close(f.shaped) })
	}
}

// Shape waits for the buffer the compositor wants.
func (f *ScreencopyFrame) Shape(timeout time.Duration) (FrameBuffer, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.shaped:
	case <-f.c.Done():
		return FrameBuffer{}, f.c.Err()
	case <-t.C:
		return FrameBuffer{}, fmt.Errorf("wayland: no screencopy buffer offer in %v", timeout)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st.Failed || !f.st.bufferOffered {
		return f.st, fmt.Errorf("wayland: screencopy failed (no shm buffer offered)")
	}
	return f.st, nil
}

// Copy asks for the frame in b; withDamage waits until something changed
// (copy_with_damage, v2) so a static screen costs nothing.
func (f *ScreencopyFrame) Copy(b *ShmBuffer, withDamage bool) error {
	op := uint16(0)
	if withDamage && f.version >= 2 {
		op = 2
	}
	return f.c.Send(f.ID, op, new(Writer).Uint(b.ID))
}

// Settled is closed on ready or failed.
func (f *ScreencopyFrame) Settled() <-chan struct{} { return f.settled }

// Result returns the frame state after Settled.
func (f *ScreencopyFrame) Result() FrameBuffer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// Destroy frees the frame object.
func (f *ScreencopyFrame) Destroy() { f.c.Send(f.ID, 1, nil) }

// VirtualPointer is a zwlr_virtual_pointer_v1.
type VirtualPointer struct {
	c  *Client
	ID uint32
}

// NewVirtualPointer creates a pointer on the default seat, bound to output
// when the manager is v2 and output != 0 (absolute motion then spans it).
func NewVirtualPointer(c *Client, manager, managerVersion, output uint32) (*VirtualPointer, error) {
	p := &VirtualPointer{c: c, ID: c.NewID(nil)}
	var err error
	if managerVersion >= 2 && output != 0 {
		err = c.Send(manager, 2, new(Writer).Uint(0).Uint(output).Uint(p.ID))
	} else {
		err = c.Send(manager, 0, new(Writer).Uint(0).Uint(p.ID))
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

func msec() uint32 { return uint32(time.Now().UnixMilli()) }

// MoveAbsolute puts the pointer at (x, y) of an extent w x h.
func (p *VirtualPointer) MoveAbsolute(x, y, w, h uint32) error {
	if err := p.c.Send(p.ID, 1, new(Writer).Uint(msec()).Uint(x).Uint(y).Uint(w).Uint(h)); err != nil {
		return err
	}
	return p.c.Send(p.ID, 4, nil) // frame
}

// Button presses or releases an evdev button code.
func (p *VirtualPointer) Button(code uint32, down bool) error {
	st := uint32(0)
	if down {
		st = 1
	}
	if err := p.c.Send(p.ID, 2, new(Writer).Uint(msec()).Uint(code).Uint(st)); err != nil {
		return err
	}
	return p.c.Send(p.ID, 4, nil)
}

// Scroll sends discrete wheel steps (positive: down, as Wayland counts).
func (p *VirtualPointer) Scroll(steps int32) error {
	if err := p.c.Send(p.ID, 5, new(Writer).Uint(0)); err != nil { // axis_source wheel
		return err
	}
	if err := p.c.Send(p.ID, 7, new(Writer).Uint(msec()).Uint(AxisVertical).Fixed(float64(steps)*15).Int(steps)); err != nil {
		return err
	}
	return p.c.Send(p.ID, 4, nil)
}

// Destroy frees the pointer.
func (p *VirtualPointer) Destroy() { p.c.Send(p.ID, 8, nil) }

// VirtualKeyboard is a zwp_virtual_keyboard_v1.
type VirtualKeyboard struct {
	c  *Client
	ID uint32
}

// NewVirtualKeyboard creates a keyboard on seat.
func NewVirtualKeyboard(c *Client, manager, seat uint32) (*VirtualKeyboard, error) {
	k := &VirtualKeyboard{c: c, ID: c.NewID(nil)}
	if err := c.Send(manager, 0, new(Writer).Uint(seat).Uint(k.ID)); err != nil {
		return nil, err
	}
	return k, nil
}

// Keymap uploads an XKB v1 keymap text; it must precede any key.
func (k *VirtualKeyboard) Keymap(text string) error {
	f, err := Memfd("meshagent-keymap", len(text)+1)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(append([]byte(text), 0), 0); err != nil {
		return fmt.Errorf("keymap write: %w", err)
	}
	return k.c.Send(k.ID, 0, new(Writer).Uint(KeymapFormatXKBv1).FD(int(f.Fd())).Uint(uint32(len(text)+1)))
}

// Key presses or releases an evdev key code (XKB keycode - 8).
func (k *VirtualKeyboard) Key(code uint32, down bool) error {
	st := uint32(0)
	if down {
		st = 1
	}
	return k.c.Send(k.ID, 1, new(Writer).Uint(msec()).Uint(code).Uint(st))
}

// Modifiers sets the modifier masks of the keymap's modifiers.
func (k *VirtualKeyboard) Modifiers(depressed, latched, locked, group uint32) error {
	return k.c.Send(k.ID, 2, new(Writer).Uint(depressed).Uint(latched).Uint(locked).Uint(group))
}

// Destroy frees the keyboard.
func (k *VirtualKeyboard) Destroy() { k.c.Send(k.ID, 3, nil) }
