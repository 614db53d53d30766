package desktop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/randr"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
	"golang.org/x/sys/unix"
)

// authConn presents our own cookie in the X connection setup. xgb only
// reads XAUTHORITY from the process environment, which we must not change
// (other goroutines, other sessions), so the first write — the setup
// request — is rewritten with the cookie found for this display.
type authConn struct {
	net.Conn
	cookie []byte
	done   bool
}

func (c *authConn) Write(b []byte) (int, error) {
	if c.done || len(b) < 12 {
		return c.Conn.Write(b)
	}
	c.done = true
	if c.cookie == nil {
		return c.Conn.Write(b)
	}
	name := []byte(cookieName)
	pad := func(n int) int { return (n + 3) &^ 3 }
	out := make([]byte, 12+pad(len(name))+pad(len(c.cookie)))
	copy(out, b[:6]) // byte order, major, minor as xgb wrote them
	order := binary.ByteOrder(binary.LittleEndian)
	if b[0] == 'B' {
		order = binary.BigEndian
	}
	order.PutUint16(out[6:], uint16(len(name)))
	order.PutUint16(out[8:], uint16(len(c.cookie)))
	copy(out[12:], name)
	copy(out[12+pad(len(name)):], c.cookie)
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

var quietXGB sync.Once

// xext guards xgb's extension setup. Each extension's Init writes
// process-global event and error tables that every connection's reader
// goroutine reads, so calling it while other connections are open is a data
// race (and can abort the process with a concurrent map access). The
// tables depend only on the server's event and error bases, so Init runs
// once per distinct base; later connections only record their opcode.
var xext struct {
	sync.Mutex
	done map[string][2]byte
}

func initExt(c *xgb.Conn, name string, initFn func(*xgb.Conn) error) error {
	r, err := xproto.QueryExtension(c, uint16(len(name)), name).Reply()
	if err != nil {
		return fmt.Errorf("x11 query %s: %w", name, err)
	}
	if !r.Present {
		return fmt.Errorf("x11: no %s extension", name)
	}
	xext.Lock()
	defer xext.Unlock()
	bases := [2]byte{r.FirstEvent, r.FirstError}
	if b, ok := xext.done[name]; ok && b == bases {
		c.ExtLock.Lock()
		c.Extensions[name] = r.MajorOpcode
		c.ExtLock.Unlock()
		return nil
	}
	if err := initFn(c); err != nil {
		return err
	}
	if xext.done == nil {
		xext.done = map[string][2]byte{}
	}
	xext.done[name] = bases
	return nil
}

// connectX opens a display with the cookie from the given Xauthority file
// (none when the file is empty or has no entry: the server may allow local
// connections by other means, e.g. xhost +si:localuser).
func connectX(t xTarget) (*xgb.Conn, error) {
	quietXGB.Do(func() {
		// xgb logs every connection without XAUTHORITY in the environment,
		// which is how we always connect; its errors reach us as values.
		xgb.Logger = log.New(io.Discard, "", 0)
	})
	nc, num, err := dialX(t.display)
	if err != nil {
		return nil, err
	}
	ac := &authConn{Conn: nc}
	if t.authority != "" {
		if ck, err := findCookie(t.authority, num); err == nil {
			ac.cookie = ck
		}
	}
	c, err := xgb.NewConnNet(ac)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("x11 connect %s: %w", t.display, err)
	}
	return c, nil
}

// xScreen captures and controls an X11 display over one persistent
// connection: MIT-SHM for capture, DAMAGE for change hints, XFIXES for the
// cursor shape, RandR for monitors and XTEST for input.
type xScreen struct {
	c     *xgb.Conn
	log   *slog.Logger
	root  xproto.Window
	setup *xproto.SetupInfo

	// shared memory capture segment (shmid < 0: plain GetImage)
	shmSeg  shm.Seg
	shmID   int
	shmMem  []byte
	useShm  bool
	frm     frame
	hasDmg  bool
	dmgMu   sync.Mutex
	dmgBox  rect // drawn since the last damage() call
	dmgAll  bool // size change: everything
	dmg     damage.Damage
	hasFix  bool
	curDirt atomic.Bool
	lastCur byte
	hasRR   bool
	dead    atomic.Bool

	in keyboard

	// remote input lock (inputlock_linux.go)
	lockMu  sync.Mutex
	xiOp    byte
	grabbed []uint16
	locked  bool
}

// openX connects to the first display that works and prepares it.
func openX(opts Options, log *slog.Logger) (screen, string, error) {
	var errs []error
	for _, t := range discoverX(opts) {
		c, err := connectX(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, err := newXScreen(c, log)
		if err != nil {
			c.Close()
			errs = append(errs, err)
			continue
		}
		log.Info("desktop: using X display", "display", t.display, "auth", t.authority, "source", t.source, "shm", s.useShm, "damage", s.hasDmg)
		return s, t.display, nil
	}
	if len(errs) == 0 {
		return nil, "", errNoDisplay
	}
	return nil, "", fmt.Errorf("%w: %w", errNoDisplay, errors.Join(errs...))
}

func newXScreen(c *xgb.Conn, log *slog.Logger) (*xScreen, error) {
	s := &xScreen{c: c, log: log, shmID: -1}
	s.setup = xproto.Setup(c)
	scr := s.setup.DefaultScreen(c)
	s.root = scr.Root
	bpp := 0
	for _, f := range s.setup.PixmapFormats {
		if f.Depth == scr.RootDepth {
			bpp = int(f.BitsPerPixel)
		}
	}
	if (scr.RootDepth != 24 && scr.RootDepth != 32) || bpp != 32 || s.setup.ImageByteOrder != xproto.ImageOrderLSBFirst {
		return nil, fmt.Errorf("x11: unsupported visual: depth %d, %d bpp, byte order %d", scr.RootDepth, bpp, s.setup.ImageByteOrder)
	}
	if err := initExt(c, "XTEST", xtest.Init); err != nil {
		// Capture still works; input will fail with this error.
		log.Warn("desktop: XTEST unavailable, input disabled", "err", err)
	}
	if initExt(c, "MIT-SHM", shm.Init) == nil {
		s.useShm = true
	}
	if initExt(c, "XFIXES", xfixes.Init) == nil {
		if _, err := xfixes.QueryVersion(c, 5, 0).Reply(); err == nil {
			s.hasFix = true
			xfixes.SelectCursorInput(c, s.root, xfixes.CursorNotifyMaskDisplayCursor)
			s.curDirt.Store(true)
		}
	}
	if s.hasFix && initExt(c, "DAMAGE", damage.Init) == nil {
		if _, err := damage.QueryVersion(c, 1, 1).Reply(); err == nil {
			if id, err := c.NewId(); err == nil {
				s.dmg = damage.Damage(id)
				// Bounding-box level: one event whenever the box grows, so a
				// busy screen cannot flood us, and the box bounds the work.
				if damage.CreateChecked(c, s.dmg, xproto.Drawable(s.root), damage.ReportLevelBoundingBox).Check() == nil {
					s.hasDmg = true
				}
			}
		}
	}
	if initExt(c, "RANDR", randr.Init) == nil {
		if _, err := randr.QueryVersion(c, 1, 5).Reply(); err == nil {
			s.hasRR = true
			randr.SelectInput(c, s.root, randr.NotifyMaskScreenChange)
		}
	}
	if err := s.in.init(c, s.setup, s.root); err != nil {
		log.Warn("desktop: keyboard map unavailable", "err", err)
	}
	go s.events()
	return s, nil
}

// events drains the X event queue: DAMAGE and cursor notifications become
// flags the capture loop polls; errors from unchecked requests are logged.
func (s *xScreen) events() {
	for {
		ev, err := s.c.WaitForEvent()
		if ev == nil && err == nil {
			s.dead.Store(true)
			return
		}
		if err != nil {
			s.log.Debug("desktop: x11 error", "err", err)
			continue
		}
		switch e := ev.(type) {
		case damage.NotifyEvent:
			s.addDamage(e.Area)
		case xfixes.CursorNotifyEvent:
			s.curDirt.Store(true)
		case randr.ScreenChangeNotifyEvent:
			s.dmgMu.Lock()
			s.dmgAll = true
			s.dmgMu.Unlock()
		case xproto.MappingNotifyEvent:
			s.in.invalidate()
		}
	}
}

func (s *xScreen) monitors() ([]monitor, error) {
	if s.dead.Load() {
		return nil, errors.New("x11: connection closed")
	}
	g, err := xproto.GetGeometry(s.c, xproto.Drawable(s.root)).Reply()
	if err != nil {
		return nil, fmt.Errorf("x11 root geometry: %w", err)
	}
	whole := monitor{ID: 1, W: int(g.Width), H: int(g.Height)}
	if !s.hasRR {
		return []monitor{whole}, nil
	}
	r, err := randr.GetMonitors(s.c, s.root, true).Reply()
	if err != nil || len(r.Monitors) == 0 {
		return []monitor{whole}, nil
	}
	var all []monitor
	for _, m := range r.Monitors {
		mm := monitor{X: int(m.X), Y: int(m.Y), W: int(m.Width), H: int(m.Height), Primary: m.Primary}
		// Clip to the root window so a stale monitor cannot make GetImage fail.
		mm.W = min(mm.W, whole.W-mm.X)
		mm.H = min(mm.H, whole.H-mm.Y)
		if mm.W > 0 && mm.H > 0 && mm.X >= 0 && mm.Y >= 0 {
			all = append(all, mm)
		}
	}
	return distinctMonitors(all, whole), nil
}

// distinctMonitors drops monitors that contain another one (a virtual
// monitor spanning the others, as Xvfb and some drivers report next to
// user-defined ones: "all displays" already covers it) and numbers the rest
// 1…N in server order.
func distinctMonitors(all []monitor, whole monitor) []monitor {
	contains := func(a, b monitor) bool {
		return a.X <= b.X && a.Y <= b.Y && a.X+a.W >= b.X+b.W && a.Y+a.H >= b.Y+b.H
	}
	var out []monitor
	for i, a := range all {
		spans := false
		for j, b := range all {
			if i != j && contains(a, b) && a != b {
				spans = true
			}
		}
		dup := false
		for _, o := range out {
			if o.X == a.X && o.Y == a.Y && o.W == a.W && o.H == a.H {
				dup = true
			}
		}
		if !spans && !dup {
			a.ID = uint16(len(out) + 1)
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return []monitor{whole}
	}
	return out
}

func (s *xScreen) damage() (x, y, w, h int, known bool) {
	if !s.hasDmg {
		return 0, 0, 0, 0, false
	}
	s.dmgMu.Lock()
	b, all := s.dmgBox, s.dmgAll
	s.dmgBox, s.dmgAll = rect{}, false
	s.dmgMu.Unlock()
	// Clear the server's region before the capture that follows: whatever
	// is drawn from here on raises a new notification.
	damage.Subtract(s.c, s.dmg, 0, 0)
	if all {
		return 0, 0, 0, 0, false
	}
	return b.x, b.y, b.w, b.h, true
}

// addDamage grows the pending damage box.
func (s *xScreen) addDamage(r xproto.Rectangle) {
	s.dmgMu.Lock()
	defer s.dmgMu.Unlock()
	s.dmgBox = union(s.dmgBox, rect{int(r.X), int(r.Y), int(r.Width), int(r.Height)})
}

// union returns the bounding box of two rectangles; empty ones (w or h 0)
// are ignored.
func union(a, b rect) rect {
	if b.w <= 0 || b.h <= 0 {
		return a
	}
	if a.w <= 0 || a.h <= 0 {
		return b
	}
	x0, y0 := min(a.x, b.x), min(a.y, b.y)
	x1, y1 := max(a.x+a.w, b.x+b.w), max(a.y+a.h, b.y+b.h)
	return rect{x0, y0, x1 - x0, y1 - y0}
}

// ensureShm makes the shared segment at least size bytes. On failure the
// screen falls back to GetImage over the socket (remote displays, X servers
// that may not attach our segment).
func (s *xScreen) ensureShm(size int) bool {
	if !s.useShm {
		return false
	}
	if s.shmID >= 0 && len(s.shmMem) >= size {
		return true
	}
	s.freeShm()
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|0o600)
	if err != nil {
		s.log.Warn("desktop: shmget failed, using GetImage", "err", err)
		s.useShm = false
		return false
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		s.useShm = false
		return false
	}
	seg, err := s.c.NewId()
	if err == nil {
		err = shm.AttachChecked(s.c, shm.Seg(seg), uint32(id), false).Check()
	}
	// Marked for removal now: the kernel frees it once both sides detach,
	// even if we crash.
	unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if err != nil {
		unix.SysvShmDetach(mem)
		s.log.Warn("desktop: MIT-SHM attach failed, using GetImage", "err", err)
		s.useShm = false
		return false
	}
	s.shmID, s.shmMem, s.shmSeg = id, mem, shm.Seg(seg)
	return true
}

func (s *xScreen) freeShm() {
	if s.shmID < 0 {
		return
	}
	shm.Detach(s.c, s.shmSeg)
	unix.SysvShmDetach(s.shmMem)
	s.shmID, s.shmMem = -1, nil
}

func (s *xScreen) capture(x, y, w, h int) (*frame, error) {
	if s.dead.Load() {
		return nil, errors.New("x11: connection closed")
	}
	size := w * h * 4
	if s.ensureShm(size) {
		_, err := shm.GetImage(s.c, xproto.Drawable(s.root), int16(x), int16(y), uint16(w), uint16(h),
			0xffffffff, xproto.ImageFormatZPixmap, s.shmSeg, 0).Reply()
		if err != nil {
			return nil, fmt.Errorf("x11 shm getimage: %w", err)
		}
		s.frm = frame{pix: s.shmMem[:size], stride: w * 4, w: w, h: h}
		return &s.frm, nil
	}
	// Without SHM, fetch in bands so no reply exceeds the server's limits.
	if cap(s.frm.pix) < size || s.shmMem != nil {
		s.frm.pix = make([]byte, size)
	}
	s.frm = frame{pix: s.frm.pix[:size], stride: w * 4, w: w, h: h}
	band := max(1, (4<<20)/(w*4))
	for y0 := 0; y0 < h; y0 += band {
		bh := min(band, h-y0)
		r, err := xproto.GetImage(s.c, xproto.ImageFormatZPixmap, xproto.Drawable(s.root),
			int16(x), int16(y+y0), uint16(w), uint16(bh), 0xffffffff).Reply()
		if err != nil {
			return nil, fmt.Errorf("x11 getimage: %w", err)
		}
		copy(s.frm.pix[y0*w*4:], r.Data)
	}
	return &s.frm, nil
}

// cursorShapes maps X cursor names (core cursor font and CSS/freedesktop
// names used by themed cursors) to MOUSE_CURSOR indexes.
var cursorShapes = map[string]byte{
	"left_ptr": 0, "default": 0, "arrow": 0, "top_left_arrow": 0,
	"left_ptr_watch": 1, "progress": 1, "half-busy": 1,
	"crosshair": 2, "cross": 2, "tcross": 2,
	"hand": 3, "hand1": 3, "hand2": 3, "pointer": 3, "pointing_hand": 3,
	"question_arrow": 4, "help": 4, "whats_this": 4,
	"xterm": 5, "text": 5, "ibeam": 5,
	"no-drop": 6, "dnd-no-drop": 6,
	"fleur": 7, "move": 7, "all-scroll": 7, "size_all": 7,
	"nesw-resize": 8, "size_bdiag": 8, "fd_double_arrow": 8, "bottom_left_corner": 8, "top_right_corner": 8,
	"ns-resize": 9, "sb_v_double_arrow": 9, "size_ver": 9, "v_double_arrow": 9, "top_side": 9, "bottom_side": 9, "row-resize": 9,
	"nwse-resize": 10, "size_fdiag": 10, "bd_double_arrow": 10, "top_left_corner": 10, "bottom_right_corner": 10,
	"ew-resize": 11, "sb_h_double_arrow": 11, "size_hor": 11, "h_double_arrow": 11, "left_side": 11, "right_side": 11, "col-resize": 11,
	"alias": 12, "up-arrow": 12, "center_ptr": 12,
	"watch": 13, "wait": 13,
	"not-allowed": 15, "crossed_circle": 15, "forbidden": 15, "circle": 15,
}

func (s *xScreen) cursor() (byte, bool) {
	if !s.hasFix || !s.curDirt.Swap(false) {
		return s.lastCur, false
	}
	r, err := xfixes.GetCursorImageAndName(s.c).Reply()
	if err != nil {
		return s.lastCur, false
	}
	shape := cursorShapes[r.Name] // unnamed or unknown: arrow
	ch := shape != s.lastCur
	s.lastCur = shape
	return shape, ch
}

func (s *xScreen) keyState() byte {
	r, err := xproto.QueryPointer(s.c, s.root).Reply()
	if err != nil {
		return 0
	}
	var f byte
	if r.Mask&xproto.ModMaskLock != 0 {
		f |= 4
	}
	if r.Mask&xproto.ModMask2 != 0 { // NumLock on every common keymap
		f |= 1
	}
	return f
}

func (s *xScreen) fake(typ, detail byte, x, y int) error {
	if _, ok := s.c.Extensions["XTEST"]; !ok {
		return errors.New("x11: XTEST not available")
	}
	xtest.FakeInput(s.c, typ, detail, 0, s.root, int16(x), int16(y), 0)
	return nil
}

func (s *xScreen) mouseMove(x, y int) error { return s.fake(xproto.MotionNotify, 0, x, y) }

func (s *xScreen) mouseButton(b int, down bool) error {
	t := byte(xproto.ButtonRelease)
	if down {
		t = xproto.ButtonPress
	}
	return s.fake(t, byte(b), 0, 0)
}

func (s *xScreen) wheel(delta int) error {
	b := 4
	if delta < 0 {
		b = 5
	}
	if err := s.mouseButton(b, true); err != nil {
		return err
	}
	return s.mouseButton(b, false)
}

func (s *xScreen) key(vk byte, down, _ bool) error {
	return s.in.key(s, vk, down)
}

func (s *xScreen) unicode(ch uint16, down bool) error {
	return s.in.unicode(s, ch, down)
}

func (s *xScreen) close() error {
	s.in.restore(s.c)
	s.freeShm()
	if s.hasDmg {
		damage.Destroy(s.c, s.dmg)
	}
	// A round trip makes sure the cleanup requests left before closing.
	xproto.GetInputFocus(s.c).Reply()
	s.c.Close()
	return nil
}
