package sessionclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"slices"
	"sync"

	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// Mouse button codes (MOUSEEVENTF bits, sessions.md §4.5).
const (
	MouseMove      = kvm.MouseMove
	MouseLeftDown  = kvm.MouseLeftDown
	MouseLeftUp    = kvm.MouseLeftUp
	MouseRightDown = kvm.MouseRightDown
	MouseRightUp   = kvm.MouseRightUp
)

// Tile is one PICTURE the agent sent, in screen coordinates.
type Tile struct {
	Seq  int // 1, 2, ... in arrival order
	Rect image.Rectangle
}

// Desktop is a remote desktop viewer (relay protocol 2, sessions.md §4):
// it follows SCREEN sizes, draws the JPEG tiles onto a canvas the way the
// web UI does, and tells when one full frame has been assembled. Like
// MeshCentral's viewer it answers every SCREEN with its settings
// (COMPRESSION: JPEG, quality, scaling, frame timer): an agent holds its
// first frame until a viewer's settings arrive (ours up to 1 s). Input
// helpers encode mouse and keyboard commands.
type Desktop struct {
	ch session.Channel
	r  *reader

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every state change
	canvas   *image.RGBA
	covered  []bool // 16-pixel cells painted since the last SCREEN
	cw, chh  int    // cells across and down
	left     int    // cells not yet painted
	screens  int
	selected int // last SET_DISPLAY from the agent; -1 before
	displays []uint16
	hasList  bool
	tiles    []Tile
	bytes    int64
	errs     []string
	err      error  // the session's end
	partial  []byte // a command still arriving in fragments
	// settings is the COMPRESSION sent after each SCREEN; answer is set
	// when a SCREEN arrived and the loop has not sent it yet.
	settings []byte
	answer   bool
}

// Default viewer settings, the agent's own defaults: JPEG quality 60, no
// scaling, a 100 ms frame timer.
const (
	defaultQuality = 60
	defaultScaling = 1024
	defaultFrameMS = 100
)

// NewDesktop starts a viewer on ch, which must already carry protocol 2.
func NewDesktop(ch session.Channel) *Desktop {
	d := &Desktop{ch: ch, r: newReader(ch, 64), changed: make(chan struct{}), selected: -1,
		settings: kvm.CompressionCmd(defaultQuality, defaultScaling, defaultFrameMS)}
	go d.loop()
	return d
}

// Close ends the session.
func (d *Desktop) Close() error { return d.r.close() }

func (d *Desktop) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Desktop) loop() {
	for {
		f, err := d.r.next(context.Background())
		d.mu.Lock()
		if err != nil {
			d.err = err
			d.notifyLocked()
			d.mu.Unlock()
			return
		}
		if f.Binary {
			if perr := d.feedLocked(f.Data); perr != nil {
				d.err = perr
				d.notifyLocked()
				d.mu.Unlock()
				d.r.close()
				return
			}
		} else if msg, ok := ConsoleMessage(f.Data); ok {
			d.errs = append(d.errs, msg)
		}
		var answer []byte
		if d.answer {
			answer, d.answer = d.settings, false
		}
		d.notifyLocked()
		d.mu.Unlock()
		if answer != nil {
			// Outside the lock: a full channel must not stop State and Wait.
			if err := d.ch.Write(context.Background(), session.Frame{Binary: true, Data: answer}); err != nil {
				d.mu.Lock()
				d.err = fmt.Errorf("desktop: sending settings: %w", err)
				d.notifyLocked()
				d.mu.Unlock()
				d.r.close()
				return
			}
		}
	}
}

// feedLocked reassembles a command the agent split over several
// data-channel messages (a WebRTC peer fragments large KVM commands,
// sessions.md §5.4; over the relay every message is whole) and applies
// each whole command.
func (d *Desktop) feedLocked(b []byte) error {
	if len(d.partial) > 0 {
		d.partial = append(d.partial, b...)
		b = d.partial
	}
	need := kvm.MessageLen(b)
	if len(b) < need && need <= kvm.MaxMessage {
		if len(d.partial) == 0 {
			d.partial = append([]byte(nil), b...)
		}
		return nil
	}
	d.partial = nil
	return d.applyLocked(b)
}

// applyLocked decodes one agent→viewer command (one per message, §4.2).
func (d *Desktop) applyLocked(b []byte) error {
	c, ok, err := kvm.Unwrap(b)
	if err != nil {
		return fmt.Errorf("desktop: %w", err)
	}
	if !ok {
		return nil // the browser ignores these too
	}
	p := c.Data
	switch c.Cmd {
	case kvm.Screen:
		if len(p) < 4 {
			return fmt.Errorf("desktop: short SCREEN")
		}
		w, h := int(binary.BigEndian.Uint16(p)), int(binary.BigEndian.Uint16(p[2:]))
		d.canvas = image.NewRGBA(image.Rect(0, 0, w, h))
		d.cw, d.chh = (w+15)/16, (h+15)/16
		d.covered = make([]bool, d.cw*d.chh)
		d.left = len(d.covered)
		d.screens++
		d.answer = true
	case kvm.Picture:
		if d.canvas == nil {
			return fmt.Errorf("desktop: PICTURE before SCREEN")
		}
		if len(p) < 4 {
			return fmt.Errorf("desktop: short PICTURE")
		}
		x, y := int(binary.BigEndian.Uint16(p)), int(binary.BigEndian.Uint16(p[2:]))
		img, err := jpeg.Decode(bytes.NewReader(p[4:]))
		if err != nil {
			return fmt.Errorf("desktop: tile at %d,%d: %w", x, y, err)
		}
		r := image.Rect(x, y, x+img.Bounds().Dx(), y+img.Bounds().Dy())
		draw.Draw(d.canvas, r, img, img.Bounds().Min, draw.Src)
		d.bytes += int64(len(b))
		d.tiles = append(d.tiles, Tile{Seq: len(d.tiles) + 1, Rect: r})
		// Mark the 16-pixel cells wholly inside the tile (clipped to the
		// screen): edge tiles extend past the screen and are clipped.
		c := r.Intersect(d.canvas.Bounds())
		for cy := (c.Min.Y + 15) / 16; cy*16 < c.Max.Y && cy < d.chh; cy++ {
			if min(cy*16+16, d.canvas.Bounds().Dy()) > c.Max.Y {
				continue
			}
			for cx := (c.Min.X + 15) / 16; cx*16 < c.Max.X && cx < d.cw; cx++ {
				if min(cx*16+16, d.canvas.Bounds().Dx()) > c.Max.X {
					continue
				}
				if i := cy*d.cw + cx; !d.covered[i] {
					d.covered[i] = true
					d.left--
				}
			}
		}
	case kvm.GetDisplays:
		d.displays = append(d.displays[:0], kvm.Displays(p)...)
		d.hasList = true
	case kvm.SetDisplay:
		if len(p) >= 2 {
			d.selected = int(binary.BigEndian.Uint16(p))
		}
	case kvm.Error:
		d.errs = append(d.errs, string(p))
	}
	return nil
}

// State is a snapshot of the viewer.
type State struct {
	Width, Height int
	Screens       int      // SCREEN messages so far
	Complete      bool     // every pixel painted since the last SCREEN
	Selected      int      // the agent's selected display; -1 before it said
	Displays      []uint16 // the agent's display list (ids; empty with one monitor)
	HasDisplays   bool     // the display list arrived
	Tiles         int      // PICTURE messages so far
	Bytes         int64    // bytes of PICTURE messages so far
	Errors        []string // ERROR commands and console messages
}

func (d *Desktop) stateLocked() State {
	s := State{Screens: d.screens, Selected: d.selected, Displays: slices.Clone(d.displays), HasDisplays: d.hasList,
		Tiles: len(d.tiles), Bytes: d.bytes, Errors: slices.Clone(d.errs)}
	if d.canvas != nil {
		s.Width, s.Height = d.canvas.Bounds().Dx(), d.canvas.Bounds().Dy()
		s.Complete = d.left == 0
	}
	return s
}

// State returns the current state.
func (d *Desktop) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stateLocked()
}

// Wait blocks until cond holds for the state (checked on every change),
// ctx is done, or the session ends.
func (d *Desktop) Wait(ctx context.Context, cond func(State) bool) (State, error) {
	for {
		d.mu.Lock()
		s := d.stateLocked()
		ch, err := d.changed, d.err
		d.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		if err != nil {
			if len(s.Errors) > 0 {
				return s, fmt.Errorf("desktop: %s: %w", s.Errors[len(s.Errors)-1], err)
			}
			return s, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if len(s.Errors) > 0 {
				return s, fmt.Errorf("desktop: %s: %w", s.Errors[len(s.Errors)-1], ctx.Err())
			}
			return s, ctx.Err()
		}
	}
}

// Image returns a copy of the canvas (nil before the first SCREEN).
func (d *Desktop) Image() *image.RGBA {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.canvas == nil {
		return nil
	}
	c := image.NewRGBA(d.canvas.Bounds())
	copy(c.Pix, d.canvas.Pix)
	return c
}

// TilesSince returns the tiles received after sequence number seq.
func (d *Desktop) TilesSince(seq int) []Tile {
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq >= len(d.tiles) {
		return nil
	}
	return slices.Clone(d.tiles[seq:])
}

// ErrNoDisplay reports a display id the agent does not offer.
var ErrNoDisplay = errors.New("no such display")

// Frame returns one complete frame of the wanted display (-1: whatever the
// agent selected). It selects the display first when needed, then waits
// until every pixel was painted after the last SCREEN.
func (d *Desktop) Frame(ctx context.Context, display int) (*image.RGBA, error) {
	s, err := d.Wait(ctx, func(s State) bool { return s.HasDisplays && s.Selected >= 0 })
	if err != nil {
		return nil, fmt.Errorf("desktop: waiting for the display list: %w", err)
	}
	if display >= 0 && display != s.Selected {
		if !slices.Contains(s.Displays, uint16(display)) {
			return nil, fmt.Errorf("desktop: %w %d (displays: %v, selected %d)", ErrNoDisplay, display, s.Displays, s.Selected)
		}
		if err := d.SetDisplay(ctx, uint16(display)); err != nil {
			return nil, err
		}
	}
	_, err = d.Wait(ctx, func(s State) bool { return s.Complete && (display < 0 || s.Selected == display) })
	if err != nil {
		return nil, fmt.Errorf("desktop: waiting for a full frame: %w", err)
	}
	return d.Image(), nil
}

// Send writes viewer commands in one message.
func (d *Desktop) Send(ctx context.Context, cmds ...[]byte) error {
	return d.ch.Write(ctx, session.Frame{Binary: true, Data: bytes.Join(cmds, nil)})
}

// Refresh asks for SCREEN and a full frame.
func (d *Desktop) Refresh(ctx context.Context) error { return d.Send(ctx, kvm.RefreshCmd()) }

// SetDisplay selects a display by id (0xFFFF: all).
func (d *Desktop) SetDisplay(ctx context.Context, id uint16) error {
	return d.Send(ctx, kvm.SetDisplayCmd(id))
}

// Compression sets JPEG quality (1-100), scaling (1024 = 100 %) and the
// frame interval in milliseconds, now and in the answer to later SCREENs.
func (d *Desktop) Compression(ctx context.Context, quality, scaling, frameMS int) error {
	c := kvm.CompressionCmd(quality, scaling, frameMS)
	d.mu.Lock()
	d.settings = c
	d.mu.Unlock()
	return d.Send(ctx, c)
}

// MouseCmd encodes a mouse command at screen coordinates x, y.
func MouseCmd(button byte, x, y int) []byte { return kvm.MouseCmd(button, x, y) }

// KeyCmd encodes a key press (down) or release by Windows virtual-key code.
func KeyCmd(vk byte, down bool) []byte { return kvm.KeyCmd(vk, down) }

// UnicodeCmd encodes a typed character (a UTF-16 code unit).
func UnicodeCmd(ch uint16, down bool) []byte { return kvm.UnicodeCmd(ch, down) }

// Mouse moves the pointer, with button for clicks (MouseLeftDown, ...).
func (d *Desktop) Mouse(ctx context.Context, button byte, x, y int) error {
	return d.Send(ctx, MouseCmd(button, x, y))
}

// Key presses and releases a key by virtual-key code.
func (d *Desktop) Key(ctx context.Context, vk byte) error {
	return d.Send(ctx, KeyCmd(vk, true), KeyCmd(vk, false))
}
