package desktop

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
	"github.com/meshgo/meshagent/agent/wayland"
)

// waylandTarget is a compositor socket to try.
type waylandTarget struct {
	path   string
	source string // for logs: "options", "env", "runtime-dir"
}

// runUserRoot is /run/user, replaceable in tests.
var runUserRoot = "/run/user"

// consoleUID is the console user's uid by agent/osuser's one rule ("" for
// none), replaceable in tests.
var consoleUID = func() string {
	u, err := osuser.Console()
	if err != nil {
		return ""
	}
	return u.UID
}

// discoverWayland lists compositor sockets, best first: the explicit
// option, WAYLAND_DISPLAY (relative to XDG_RUNTIME_DIR), the console
// user's (agent/osuser's rule: logind's active seat0 user first)
// /run/user/UID/wayland-N, then every other user's, newest first. As root
// we may connect to any of them: the socket's mode does not stop root.
func discoverWayland(opts Options) []waylandTarget {
	var out []waylandTarget
	seen := map[string]bool{}
	add := func(p, src string) {
		if p == "" || seen[p] {
			return
		}
		seen[p] = true
		out = append(out, waylandTarget{p, src})
	}
	if opts.WaylandDisplay != "" {
		add(wayland.SocketPath(opts.WaylandDisplay, os.Getenv("XDG_RUNTIME_DIR")), "options")
	}
	if d := os.Getenv("WAYLAND_DISPLAY"); d != "" {
		add(wayland.SocketPath(d, os.Getenv("XDG_RUNTIME_DIR")), "env")
	}
	socks := waylandSockets()
	if uid := consoleUID(); uid != "" {
		for _, p := range socks {
			if filepath.Base(filepath.Dir(p)) == uid {
				add(p, "console-user")
			}
		}
	}
	for _, p := range socks {
		add(p, "runtime-dir")
	}
	return out
}

// waylandSockets globs /run/user/*/wayland-N, newest first.
func waylandSockets() []string {
	all, _ := filepath.Glob(filepath.Join(runUserRoot, "*", "wayland-*"))
	type sock struct {
		p string
		t time.Time
	}
	var socks []sock
	for _, p := range all {
		if filepath.Ext(p) == ".lock" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		socks = append(socks, sock{p, fi.ModTime()})
	}
	sort.Slice(socks, func(i, j int) bool { return socks[i].t.After(socks[j].t) })
	out := make([]string, len(socks))
	for i, s := range socks {
		out[i] = s.p
	}
	return out
}

// openWayland connects to the first compositor that offers wlr-screencopy.
func openWayland(opts Options, log *slog.Logger) (screen, string, error) {
	var errs []error
	for _, t := range discoverWayland(opts) {
		s, err := newWLScreen(t.path, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("desktop: using Wayland compositor", "socket", t.path, "source", t.source,
			"width", s.outW, "height", s.outH, "damage", s.scVer >= 2)
		return s, t.path, nil
	}
	if len(errs) == 0 {
		return nil, "", errNoDisplay
	}
	return nil, "", fmt.Errorf("%w: %w", errNoDisplay, errors.Join(errs...))
}

// wlScreen captures a wlroots compositor's first output with
// wlr-screencopy and injects input with the virtual pointer and keyboard
// protocols. A goroutine keeps one copy_with_damage request outstanding:
// the compositor answers only when the output changed, so a static screen
// costs no CPU, and each answer's damage box is all that is copied.
type wlScreen struct {
	c     *wayland.Client
	log   *slog.Logger
	shm   uint32
	out   *wayland.Output
	scMgr uint32
	scVer uint32

	mu      sync.Mutex
	front   []byte // latest output image, BGRX, stride outW*4
	outW    int
	outH    int
	dmgBox  rect
	dmgAll  bool
	ready   chan struct{} // closed after the first frame
	readyOK sync.Once
	loopErr error
	dead    atomic.Bool
	stop    chan struct{}
	loopEnd chan struct{}

	frm    frame
	frontB pixBuf // backs front
	frmB   pixBuf // backs frm.pix

	inMu    sync.Mutex
	ptr     *wayland.VirtualPointer
	kbd     *wayland.VirtualKeyboard
	keys    *wlKeymap
	mods    uint32 // depressed modifier mask
	locked  uint32
	inErr   error
	lastCur byte
}

func newWLScreen(path string, log *slog.Logger) (*wlScreen, error) {
	c, err := wayland.Dial(path)
	if err != nil {
		return nil, err
	}
	s := &wlScreen{c: c, log: log, ready: make(chan struct{}), stop: make(chan struct{}), loopEnd: make(chan struct{}), dmgAll: true}
	fail := func(err error) (*wlScreen, error) {
		c.Close()
		return nil, fmt.Errorf("wayland %s: %w", path, err)
	}
	shm, ok := c.Find(wayland.IfShm)
	if !ok {
		return fail(errors.New("no wl_shm"))
	}
	sc, ok := c.Find(wayland.IfScreencopy)
	if !ok {
		return fail(errors.New("compositor offers no zwlr_screencopy_manager_v1 (not wlroots-based?)"))
	}
	if s.shm, err = c.Bind(shm, 1, nil); err != nil {
		return fail(err)
	}
	s.scVer = min(sc.Version, 3)
	if s.scMgr, err = c.Bind(sc, s.scVer, nil); err != nil {
		return fail(err)
	}
	outs, err := wayland.BindOutputs(c)
	if err != nil {
		return fail(err)
	}
	if len(outs) == 0 {
		return fail(errors.New("no wl_output"))
	}
	s.out = outs[0]
	if info, _ := s.out.Info(); info.W > 0 {
		s.outW, s.outH = info.W, info.H
	}
	s.initInput()
	go s.loop()
	select {
	case <-s.ready:
	case <-time.After(5 * time.Second):
		s.close()
		return nil, fmt.Errorf("wayland %s: no first frame in 5s", path)
	}
	if s.loopErr != nil {
		err := s.loopErr
		s.close()
		return nil, fmt.Errorf("wayland %s: %w", path, err)
	}
	return s, nil
}

// initInput creates the virtual pointer and keyboard; without them the
// screen still shows, and input calls return why not.
func (s *wlScreen) initInput() {
	c := s.c
	if vp, ok := c.Find(wayland.IfVirtualPointer); ok {
		ver := min(vp.Version, 2)
		if id, err := c.Bind(vp, ver, nil); err == nil {
			s.ptr, _ = wayland.NewVirtualPointer(c, id, ver, s.out.ID)
		}
	}
	vk, okK := c.Find(wayland.IfVirtualKeyboard)
	seat, okS := c.Find(wayland.IfSeat)
	if okK && okS {
		seatID, err1 := c.Bind(seat, 1, nil)
		mgr, err2 := c.Bind(vk, 1, nil)
		if err1 == nil && err2 == nil {
			if k, err := wayland.NewVirtualKeyboard(c, mgr, seatID); err == nil {
				s.keys = newWLKeymap()
				if err := k.Keymap(s.keys.text()); err == nil {
					s.kbd = k
				}
			}
		}
	}
	if s.ptr == nil || s.kbd == nil {
		s.log.Warn("desktop: Wayland virtual input incomplete", "pointer", s.ptr != nil, "keyboard", s.kbd != nil)
	}
}

// loop keeps one screencopy frame in flight and folds each result into
// front.
func (s *wlScreen) loop() {
	defer close(s.loopEnd)
	var buf *wayland.ShmBuffer
	defer func() {
		if buf != nil {
			buf.Destroy()
		}
	}()
	first := true
	failures := 0
	end := func(err error) {
		s.loopErr = err
		s.dead.Store(true)
		s.readyOK.Do(func() { close(s.ready) })
	}
	for {
		f, err := wayland.CaptureOutput(s.c, s.scMgr, s.scVer, s.out.ID, false)
		if err != nil {
			end(err)
			return
		}
		shape, err := f.Shape(5 * time.Second)
		if err != nil {
			f.Destroy()
			if failures++; failures > 20 || first {
				end(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !supportedShm(shape.Format) {
			f.Destroy()
			end(fmt.Errorf("screencopy shm format %#x not supported", shape.Format))
			return
		}
		if buf == nil || buf.W != shape.W || buf.H != shape.H || buf.Stride != shape.Stride || buf.Format != shape.Format {
			if buf != nil {
				buf.Destroy()
			}
			if buf, err = wayland.NewShmBuffer(s.c, s.shm, shape.W, shape.H, shape.Stride, shape.Format); err != nil {
				f.Destroy()
				end(err)
				return
			}
			first = true // new buffer: copy it whole, not only damage
		}
		if err := f.Copy(buf, !first); err != nil {
			end(err)
			return
		}
		select {
		case <-f.Settled():
		case <-s.stop:
			f.Destroy()
			return
		case <-s.c.Done():
			end(s.c.Err())
			return
		}
		res := f.Result()
		f.Destroy()
		if res.Failed {
			if failures++; failures > 20 {
				end(errors.New("screencopy keeps failing"))
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		failures = 0
		s.fold(buf, res, first)
		first = false
		s.readyOK.Do(func() { close(s.ready) })
	}
}

func supportedShm(f uint32) bool {
	switch f {
	case wayland.ShmFormatARGB8888, wayland.ShmFormatXRGB8888, fourccXBGR8888, fourccABGR8888:
		return true
	}
	return false
}

const (
	fourccXBGR8888 = 0x34324258 // 'XB24': R, G, B, X in memory
	fourccABGR8888 = 0x34324241
)

// fold copies the damaged part of a finished frame into front, converting
// to BGRX and undoing a y-inverted buffer.
func (s *wlScreen) fold(b *wayland.ShmBuffer, res wayland.FrameBuffer, whole bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outW != b.W || s.outH != b.H || len(s.front) != b.W*b.H*4 {
		s.outW, s.outH = b.W, b.H
		s.front = s.frontB.grow(b.W * b.H * 4)
		clear(s.front)
		s.dmgAll = true
		whole = true
	}
	r := rect{0, 0, b.W, b.H}
	if !whole && res.Damaged {
		r = rect{res.DamageX, res.DamageY, res.DamageW, res.DamageH}
		// Damage is in buffer coordinates; flip it with the buffer.
		if res.YInvert {
			r.y = b.H - r.y - r.h
		}
		x0, y0 := max(r.x, 0), max(r.y, 0)
		x1, y1 := min(r.x+r.w, b.W), min(r.y+r.h, b.H)
		if x1 <= x0 || y1 <= y0 {
			return
		}
		r = rect{x0, y0, x1 - x0, y1 - y0}
	}
	swap := b.Format == fourccXBGR8888 || b.Format == fourccABGR8888
	for y := r.y; y < r.y+r.h; y++ {
		sy := y
		if res.YInvert {
			sy = b.H - 1 - y
		}
		src := b.Data[sy*b.Stride+r.x*4 : sy*b.Stride+(r.x+r.w)*4]
		dst := s.front[(y*b.W+r.x)*4 : (y*b.W+r.x+r.w)*4]
		copy(dst, src)
		if swap {
			for i := 0; i+3 < len(dst); i += 4 {
				dst[i], dst[i+2] = dst[i+2], dst[i]
			}
		}
	}
	s.dmgBox = union(s.dmgBox, r)
}

func (s *wlScreen) monitors() ([]monitor, error) {
	if s.dead.Load() {
		return nil, fmt.Errorf("wayland: capture ended: %w", s.loopErr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return []monitor{{ID: 1, W: s.outW, H: s.outH, Primary: true}}, nil
}

func (s *wlScreen) capture(x, y, w, h int) (*frame, error) {
	if s.dead.Load() {
		return nil, fmt.Errorf("wayland: capture ended: %w", s.loopErr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if x < 0 || y < 0 || w <= 0 || h <= 0 || x+w > s.outW || y+h > s.outH {
		return nil, fmt.Errorf("wayland: capture %dx%d+%d+%d outside the %dx%d output", w, h, x, y, s.outW, s.outH)
	}
	size := w * h * 4
	s.frm = frame{pix: s.frmB.grow(size), stride: w * 4, w: w, h: h}
	for row := 0; row < h; row++ {
		o := ((y+row)*s.outW + x) * 4
		copy(s.frm.pix[row*w*4:(row+1)*w*4], s.front[o:o+w*4])
	}
	return &s.frm, nil
}

func (s *wlScreen) damage() (x, y, w, h int, known bool) {
	if s.scVer < 2 {
		return 0, 0, 0, 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, all := s.dmgBox, s.dmgAll
	s.dmgBox, s.dmgAll = rect{}, false
	if all {
		return 0, 0, 0, 0, false
	}
	return b.x, b.y, b.w, b.h, true
}

// cursor: wlr-screencopy gives no cursor shape; the viewer keeps an arrow.
func (s *wlScreen) cursor() (byte, bool) { return s.lastCur, false }

func (s *wlScreen) keyState() byte {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	var f byte
	if s.locked&modLock != 0 {
		f |= 4
	}
	if s.locked&modMod2 != 0 {
		f |= 1
	}
	return f
}

var errNoVirtualPointer = errors.New("wayland: compositor offers no virtual pointer")
var errNoVirtualKeyboard = errors.New("wayland: compositor offers no virtual keyboard")

func (s *wlScreen) mouseMove(x, y int) error {
	if s.ptr == nil {
		return errNoVirtualPointer
	}
	s.mu.Lock()
	w, h := s.outW, s.outH
	s.mu.Unlock()
	x, y = min(max(x, 0), w-1), min(max(y, 0), h-1)
	return s.ptr.MoveAbsolute(uint32(x), uint32(y), uint32(w), uint32(h))
}

func (s *wlScreen) mouseButton(b int, down bool) error {
	if s.ptr == nil {
		return errNoVirtualPointer
	}
	code := map[int]uint32{1: wayland.ButtonLeft, 2: wayland.ButtonMiddle, 3: wayland.ButtonRight}[b]
	if code == 0 {
		return nil
	}
	return s.ptr.Button(code, down)
}

func (s *wlScreen) wheel(delta int) error {
	if s.ptr == nil {
		return errNoVirtualPointer
	}
	steps := int32(-1) // Wayland's positive axis scrolls down
	if delta < 0 {
		steps = 1
	}
	return s.ptr.Scroll(steps)
}

func (s *wlScreen) key(vk byte, down, _ bool) error {
	if s.kbd == nil {
		return errNoVirtualKeyboard
	}
	s.inMu.Lock()
	defer s.inMu.Unlock()
	code, ok := s.keys.vkCode[vk]
	if !ok {
		return nil
	}
	if err := s.kbd.Key(code-8, down); err != nil {
		return err
	}
	if _, bit := modOf(s.keys.levels[code][0]); bit != 0 {
		switch {
		case bit == modLock || bit == modMod2:
			if down {
				s.locked ^= bit
			}
		case down:
			s.mods |= bit
		default:
			s.mods &^= bit
		}
		return s.kbd.Modifiers(s.mods, 0, s.locked, 0)
	}
	return nil
}

// unicode types one character on key-down, like the X path: a keycode of
// its own, a one-level key so Shift does not change it.
func (s *wlScreen) unicode(ch uint16, down bool) error {
	if !down || (ch >= 0xd800 && ch <= 0xdfff) {
		return nil
	}
	if s.kbd == nil {
		return errNoVirtualKeyboard
	}
	s.inMu.Lock()
	defer s.inMu.Unlock()
	sym := uint32(keysymFor(rune(ch)))
	code, changed := s.keys.unicodeKey(sym)
	if changed {
		if err := s.kbd.Keymap(s.keys.text()); err != nil {
			return err
		}
	}
	if err := s.kbd.Key(code-8, true); err != nil {
		return err
	}
	return s.kbd.Key(code-8, false)
}

func (s *wlScreen) close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	if s.ptr != nil {
		s.ptr.Destroy()
	}
	if s.kbd != nil {
		s.kbd.Destroy()
	}
	s.c.Roundtrip(time.Second)
	s.c.Close()
	<-s.loopEnd
	s.mu.Lock()
	s.front, s.frm = nil, frame{}
	s.frontB.free()
	s.frmB.free()
	s.mu.Unlock()
	return nil
}
