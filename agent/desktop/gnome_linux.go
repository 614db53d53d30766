package desktop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/meshgo/meshagent/agent/mutter"
	"github.com/meshgo/meshagent/agent/wayland"
)

// gnomeTarget is a GNOME (Mutter) session found from its compositor
// process: whose it is and where its session bus and runtime dir are.
type gnomeTarget struct {
	pid     int
	start   uint64 // start time in clock ticks since boot: newest wins
	uid     int
	gid     int
	bus     string // DBUS_SESSION_BUS_ADDRESS
	runtime string // XDG_RUNTIME_DIR
	source  string
}

// discoverGNOME picks the Mutter compositors (gnome-shell, mutter) from
// the process scan and their session bus and runtime dir (a root agent has
// no session of its own to inherit them from). The console user's sessions
// come first (agent/osuser's rule), then the newest; root's are left out
// (GDM's greeter runs as its own user and is found, ranked after the
// console user's).
func discoverGNOME(opts Options) []gnomeTarget {
	var out []gnomeTarget
	for _, p := range scanCompositors(opts) { // newest first
		if p.family != "gnome" {
			continue
		}
		t := gnomeTarget{pid: p.pid, start: p.start, uid: p.uid, gid: p.gid, bus: p.bus, runtime: p.runtime, source: "process"}
		if t.bus == "" {
			t.bus = "unix:path=" + filepath.Join(t.runtime, "bus")
		}
		out = append(out, t)
	}
	console := consoleUID()
	sort.SliceStable(out, func(i, j int) bool {
		ic, jc := strconv.Itoa(out[i].uid) == console, strconv.Itoa(out[j].uid) == console
		if ic != jc {
			return ic
		}
		return out[i].start > out[j].start
	})
	return out
}

// procStart reads a process's start time (field 22 of /proc/PID/stat);
// pids wrap, start times do not.
func procStart(dir string) uint64 {
	start, _ := procStat(dir)
	return start
}

// procStat reads a process's start time (field 22 of /proc/PID/stat) and
// its parent's pid (field 4).
func procStat(dir string) (start uint64, ppid int) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0
	}
	start, _ = strconv.ParseUint(f[19], 10, 64)
	ppid, _ = strconv.Atoi(f[1])
	return start, ppid
}

// gnomeAvailable reports whether a discovered GNOME session offers
// Mutter's RemoteDesktop and ScreenCast services.
func gnomeAvailable() bool {
	for _, t := range discoverGNOME(Options{}) {
		c, err := mutter.Dial(t.bus, t.uid)
		if err != nil {
			continue
		}
		ok := mutter.Available(c)
		c.Close()
		if ok {
			return true
		}
	}
	return false
}

// openGNOME starts a Mutter remote desktop session on the first GNOME
// session that grants one.
func openGNOME(opts Options, log *slog.Logger) (screen, string, error) {
	var errs []error
	for _, t := range discoverGNOME(opts) {
		s, err := newGnomeScreen(t, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := fmt.Sprintf("gnome:%d", t.pid)
		log.Info("desktop: using GNOME (Mutter) remote desktop", "pid", t.pid, "uid", t.uid, "bus", t.bus,
			"width", s.w, "height", s.h, "monitors", len(s.mons))
		return s, name, nil
	}
	if len(errs) == 0 {
		return nil, "", errNoDisplay
	}
	return nil, "", fmt.Errorf("%w: %w", errNoDisplay, errors.Join(errs...))
}

// gnomeScreen shows a Mutter session's monitors: one ScreenCast stream
// recorded per logical monitor, whose PipeWire video is read (by a
// gst-launch-1.0 subprocess run as the session user) only while the
// viewer's region covers that monitor; input goes through RemoteDesktop's
// Notify* calls, the pointer relative to the stream of the monitor under
// it. Mutter sends a frame only when a monitor's content changed, so a
// static screen costs nothing; each frame is compared with the last to
// find the changed box.
//
// The portal route (portal_linux.go) uses the same screen with a portal
// session and its one stream: what differs is only how the session is got
// and how a stream's frames are started.
type gnomeScreen struct {
	log   *slog.Logger
	what  string // "gnome" or "portal", for errors
	conn  *dbus.Conn
	sess  rdSession
	start func(idx int) (*mutter.Frames, error) // starts reading stream idx
	mons  []*gnomeMon                           // in stream order
	w, h  int                                   // the stage's bounding box

	mu     sync.Mutex // guards each monitor's running state and pictures
	frm    frame
	frmBuf pixBuf

	inMu   sync.Mutex
	locked uint32 // lock keys toggled through us: 1 NumLock, 4 CapsLock
}

// gnomeMon is one recorded monitor and, while it is watched, its frame
// reader.
type gnomeMon struct {
	idx        int // in sess.Streams
	x, y, w, h int // in the stage
	primary    bool

	frames  *mutter.Frames // nil while not watched
	front   []byte
	bufs    [2]pixBuf
	dmgBox  rect // monitor coordinates
	loopErr error
	dead    atomic.Bool
	loopEnd chan struct{}
	nFrames atomic.Int64
}

// rdSession is a remote desktop session whose monitors come as PipeWire
// streams: Mutter's (mutter.Session) or a portal's (portal.Session).
// Pointer positions are relative to stream i.
type rdSession interface {
	Done() <-chan struct{}
	Close() error
	PointerMotionAbsolute(i int, x, y float64) error
	PointerButton(code int32, down bool) error
	PointerAxisDiscrete(axis uint32, steps int32) error
	KeyboardKeysym(sym uint32, down bool) error
}

func newGnomeScreen(t gnomeTarget, log *slog.Logger) (*gnomeScreen, error) {
	c, err := mutter.Dial(t.bus, t.uid)
	if err != nil {
		return nil, fmt.Errorf("gnome session of uid %d: %w", t.uid, err)
	}
	if !mutter.Available(c) {
		c.Close()
		return nil, fmt.Errorf("gnome session of uid %d (%s): Mutter's RemoteDesktop/ScreenCast services are not on its bus", t.uid, t.bus)
	}
	// Every logical monitor, ordered left to right then top to bottom
	// (the viewer's display 1, 2, ...); the primary one alone when
	// DisplayConfig cannot tell.
	var connectors []string
	primary := map[string]bool{}
	if lm, err := mutter.Monitors(c); err == nil {
		sort.SliceStable(lm, func(i, j int) bool {
			if lm[i].X != lm[j].X {
				return lm[i].X < lm[j].X
			}
			return lm[i].Y < lm[j].Y
		})
		for _, m := range lm {
			connectors = append(connectors, m.Connector)
			primary[m.Connector] = m.Primary
		}
	} else {
		log.Debug("desktop: gnome monitor list unavailable, recording the primary monitor", "err", err)
	}
	// Recorded without the pointer (cursor-mode 0), as X11 capture is:
	// MeshCentral's viewer shows the browser's own pointer over the canvas
	// (shaped by the KVM cursor message), so a pointer embedded in the
	// frames (mode 1) would be a second one trailing it by a frame's
	// delay. Mode 2 (metadata) gives position and bitmap in PipeWire
	// buffer metadata, which the gst-launch reader drops.
	sess, err := mutter.Start(c, connectors, mutter.CursorHidden)
	if err != nil {
		c.Close()
		return nil, err
	}
	var mons []*gnomeMon
	for i, st := range sess.Streams {
		if st.W <= 0 || st.H <= 0 {
			sess.Close()
			c.Close()
			return nil, fmt.Errorf("gnome: monitor %q has no size in its stream parameters", st.Connector)
		}
		mons = append(mons, &gnomeMon{idx: i, x: st.X, y: st.Y, w: st.W, h: st.H, primary: primary[st.Connector] || st.Connector == ""})
	}
	cred, env := userCred(t.uid, t.gid), userEnv(t.runtime)
	start := func(idx int) (*mutter.Frames, error) {
		return mutter.StartFrames(sess.Streams[idx].Node, cred, env)
	}
	return newPipeWireScreen(log, "gnome", c, sess, mons, start)
}

// userCred is who helpers for a session user's run as (nil: the agent
// itself, when it is that user).
func userCred(uid, gid int) *syscall.Credential {
	if uid == syscall.Geteuid() {
		return nil
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// userEnv is the environment of helpers run for a session user: where
// its PipeWire is, and gst's plugin registry cache in its runtime dir.
func userEnv(runtime string) []string {
	return []string{"XDG_RUNTIME_DIR=" + runtime, "PATH=" + osPath(), "HOME=/nonexistent",
		"GST_REGISTRY=" + filepath.Join(runtime, "meshagent-gst-registry.bin")}
}

// newPipeWireScreen is the screen of sess's monitors (mons, stage
// coordinates; a size of 0 for a lone monitor means the stream's), whose
// frames start reads. It watches the primary monitor now, so a session
// that cannot stream fails here (and the next desktop is tried) rather
// than later; on failure it closes sess and c.
func newPipeWireScreen(log *slog.Logger, what string, c *dbus.Conn, sess rdSession, mons []*gnomeMon,
	start func(idx int) (*mutter.Frames, error)) (*gnomeScreen, error) {
	s := &gnomeScreen{log: log, what: what, conn: c, sess: sess, start: start, mons: mons}
	for _, m := range mons {
		s.w, s.h = max(s.w, m.x+m.w), max(s.h, m.y+m.h)
	}
	first := s.mons[0]
	for _, m := range s.mons {
		if m.primary {
			first = m
			break
		}
	}
	s.mu.Lock()
	err := s.watchMon(first)
	s.mu.Unlock()
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// watchMon starts reading m's stream and waits for its first frame; mu is
// held.
func (s *gnomeScreen) watchMon(m *gnomeMon) error {
	if m.frames != nil {
		return nil
	}
	fr, err := s.start(m.idx)
	if err != nil {
		return err
	}
	type sized struct {
		w, h int
		err  error
	}
	sz := make(chan sized, 1)
	go func() {
		w, h, err := fr.Size()
		sz <- sized{w, h, err}
	}()
	select {
	case z := <-sz:
		if z.err != nil {
			fr.Close()
			return z.err
		}
		if z.w != m.w || z.h != m.h {
			// A scaled monitor streams more pixels than its logical size.
			// Alone it is simply shown at the stream's size (input is in
			// stream pixels too); beside others, mapping logical positions
			// and pixel sizes together is not done.
			if len(s.mons) != 1 {
				fr.Close()
				return fmt.Errorf("%s: pipewire stream %dx%d for a %dx%d monitor: scaled monitors beside others are not supported", s.what, z.w, z.h, m.w, m.h)
			}
			m.x, m.y, m.w, m.h = 0, 0, z.w, z.h
			s.w, s.h = z.w, z.h
		}
	case <-time.After(15 * time.Second):
		fr.Close()
		return fmt.Errorf("%s: pipewire stream not negotiated in 15s", s.what)
	}
	m.frames = fr
	m.front = m.bufs[0].grow(m.w * m.h * 4)
	m.dead.Store(false)
	m.loopErr = nil
	m.loopEnd = make(chan struct{})
	first := make(chan error, 1)
	go s.loop(m, fr, first)
	// The loop takes mu to swap pictures: let it while waiting.
	s.mu.Unlock()
	var ferr error
	select {
	case ferr = <-first:
	case <-time.After(15 * time.Second):
		ferr = fmt.Errorf("%s: no first frame from the pipewire stream in 15s", s.what)
	}
	s.mu.Lock()
	if ferr != nil {
		s.unwatchMon(m)
		return ferr
	}
	return nil
}

// unwatchMon stops reading m's stream; mu is held.
func (s *gnomeScreen) unwatchMon(m *gnomeMon) {
	if m.frames == nil {
		return
	}
	m.frames.Close()
	s.mu.Unlock()
	<-m.loopEnd
	s.mu.Lock()
	m.frames = nil
	m.front = nil
	m.dmgBox = rect{}
	m.dead.Store(false) // stopped on purpose: not a failure
	for i := range m.bufs {
		m.bufs[i].free()
	}
}

// focus watches the monitors the viewer's region covers and stops
// reading the others (serve.go calls it when the region changes).
func (s *gnomeScreen) focus(x, y, w, h int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mons {
		if !overlaps(m, x, y, w, h) {
			s.unwatchMon(m)
		}
	}
}

func overlaps(m *gnomeMon, x, y, w, h int) bool {
	return x < m.x+m.w && m.x < x+w && y < m.y+m.h && m.y < y+h
}

// osPath is the PATH for helpers: the agent's own, or a standard one.
func osPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// loop reads m's frames, finds the changed box against its current
// picture and swaps the new one in.
func (s *gnomeScreen) loop(m *gnomeMon, fr *mutter.Frames, first chan<- error) {
	defer close(m.loopEnd)
	back := m.bufs[1].grow(m.w * m.h * 4)
	stride := m.w * 4
	sent := false
	for {
		if err := fr.Read(back); err != nil {
			s.mu.Lock()
			m.loopErr = err
			s.mu.Unlock()
			m.dead.Store(true)
			if !sent {
				first <- err
			}
			return
		}
		m.nFrames.Add(1)
		s.mu.Lock()
		if r, ok := changedBox(m.front, back, stride, m.w, m.h); ok {
			m.dmgBox = union(m.dmgBox, r)
		}
		m.front, back = back, m.front
		s.mu.Unlock()
		if !sent {
			sent = true
			first <- nil
		}
	}
}

// changedBox is the bounding box of the pixels that differ between two
// frames of the same size: rows by memcmp, then each changed row's first
// and last differing byte, a word at a time.
func changedBox(a, b []byte, stride, w, h int) (rect, bool) {
	y0, y1 := -1, -1
	x0, x1 := w, -1
	n := w * 4
	for y := 0; y < h; y++ {
		ra, rb := a[y*stride:y*stride+n], b[y*stride:y*stride+n]
		if bytes.Equal(ra, rb) {
			continue
		}
		if y0 < 0 {
			y0 = y
		}
		y1 = y
		x0 = min(x0, firstDiff(ra, rb)/4)
		x1 = max(x1, lastDiff(ra, rb)/4)
	}
	if y0 < 0 {
		return rect{}, false
	}
	return rect{x0, y0, x1 - x0 + 1, y1 - y0 + 1}, true
}

// firstDiff is the index of the first byte where a and b (same length,
// known to differ) differ.
func firstDiff(a, b []byte) int {
	i := 0
	for ; i+8 <= len(a); i += 8 {
		if binary.LittleEndian.Uint64(a[i:]) != binary.LittleEndian.Uint64(b[i:]) {
			break
		}
	}
	for ; i < len(a); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a) - 1
}

// lastDiff is the index of the last byte where a and b differ.
func lastDiff(a, b []byte) int {
	i := len(a)
	for ; i-8 >= 0; i -= 8 {
		if binary.LittleEndian.Uint64(a[i-8:]) != binary.LittleEndian.Uint64(b[i-8:]) {
			break
		}
	}
	for i--; i >= 0; i-- {
		if a[i] != b[i] {
			return i
		}
	}
	return 0
}

func (s *gnomeScreen) ended() error {
	select {
	case <-s.sess.Done():
		if s.what == "portal" {
			return errors.New("portal: the portal closed the remote desktop session")
		}
		return errors.New("gnome: Mutter closed the remote desktop session")
	default:
	}
	for _, m := range s.mons {
		if m.dead.Load() {
			s.mu.Lock()
			err := m.loopErr
			s.mu.Unlock()
			return fmt.Errorf("%s: capture ended: %w", s.what, err)
		}
	}
	return nil
}

func (s *gnomeScreen) monitors() ([]monitor, error) {
	if err := s.ended(); err != nil {
		return nil, err
	}
	out := make([]monitor, len(s.mons))
	for i, m := range s.mons {
		out[i] = monitor{ID: uint16(i + 1), X: m.x, Y: m.y, W: m.w, H: m.h, Primary: m.primary}
	}
	return out, nil
}

// capture composes the rectangle (stage coordinates) from the monitors it
// covers, watching any not yet watched; what no monitor covers is black.
func (s *gnomeScreen) capture(x, y, w, h int) (*frame, error) {
	if err := s.ended(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if x < 0 || y < 0 || w <= 0 || h <= 0 || x+w > s.w || y+h > s.h {
		return nil, fmt.Errorf("%s: capture %dx%d+%d+%d outside the %dx%d stage", s.what, w, h, x, y, s.w, s.h)
	}
	for _, m := range s.mons {
		if overlaps(m, x, y, w, h) {
			if err := s.watchMon(m); err != nil {
				return nil, err
			}
		}
	}
	s.frm = frame{pix: s.frmBuf.grow(w * h * 4), stride: w * 4, w: w, h: h}
	covered := 0
	for _, m := range s.mons {
		x0, y0 := max(x, m.x), max(y, m.y)
		x1, y1 := min(x+w, m.x+m.w), min(y+h, m.y+m.h)
		if x1 > x0 && y1 > y0 {
			covered += (x1 - x0) * (y1 - y0)
		}
	}
	if covered < w*h {
		clear(s.frm.pix) // gaps between monitors of a non-rectangular layout
	}
	for _, m := range s.mons {
		x0, y0 := max(x, m.x), max(y, m.y)
		x1, y1 := min(x+w, m.x+m.w), min(y+h, m.y+m.h)
		if x1 <= x0 || y1 <= y0 || m.front == nil {
			continue
		}
		n := (x1 - x0) * 4
		for row := y0; row < y1; row++ {
			o := ((row-m.y)*m.w + x0 - m.x) * 4
			d := ((row-y)*w + x0 - x) * 4
			copy(s.frm.pix[d:d+n], m.front[o:o+n])
		}
	}
	return &s.frm, nil
}

// damage is the union, in stage coordinates, of what changed on the
// watched monitors.
func (s *gnomeScreen) damage() (x, y, w, h int, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b rect
	for _, m := range s.mons {
		if m.dmgBox.w > 0 {
			b = union(b, rect{m.x + m.dmgBox.x, m.y + m.dmgBox.y, m.dmgBox.w, m.dmgBox.h})
		}
		m.dmgBox = rect{}
	}
	return b.x, b.y, b.w, b.h, true
}

// cursor: the stream is recorded without the cursor (the viewer draws its
// own arrow); Mutter's cursor metadata does not pass through gst-launch.
func (s *gnomeScreen) cursor() (byte, bool) { return 0, false }

func (s *gnomeScreen) keyState() byte {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	return byte(s.locked)
}

// mouseMove moves the pointer to a stage point, relative to the stream of
// the monitor under it (or nearest to it, in a gap of the layout).
func (s *gnomeScreen) mouseMove(x, y int) error {
	best, dist := s.mons[0], -1
	for _, m := range s.mons {
		dx := max(m.x-x, 0, x-(m.x+m.w-1))
		dy := max(m.y-y, 0, y-(m.y+m.h-1))
		if d := dx*dx + dy*dy; dist < 0 || d < dist {
			best, dist = m, d
		}
	}
	mx := min(max(x-best.x, 0), best.w-1)
	my := min(max(y-best.y, 0), best.h-1)
	return s.sess.PointerMotionAbsolute(best.idx, float64(mx), float64(my))
}

func (s *gnomeScreen) mouseButton(b int, down bool) error {
	code := map[int]uint32{1: wayland.ButtonLeft, 2: wayland.ButtonMiddle, 3: wayland.ButtonRight}[b]
	if code == 0 {
		return nil
	}
	return s.sess.PointerButton(int32(code), down)
}

func (s *gnomeScreen) wheel(delta int) error {
	steps := int32(-1) // axis 0 positive scrolls down
	if delta < 0 {
		steps = 1
	}
	return s.sess.PointerAxisDiscrete(0, steps)
}

// key sends the VK's keysym; Mutter finds its key in the session keymap.
func (s *gnomeScreen) key(vk byte, down, _ bool) error {
	sym, ok := vkKeysyms[vk]
	if !ok {
		return nil
	}
	if down {
		s.inMu.Lock()
		switch sym {
		case 0xff7f: // Num_Lock
			s.locked ^= 1
		case 0xffe5: // Caps_Lock
			s.locked ^= 4
		}
		s.inMu.Unlock()
	}
	return s.sess.KeyboardKeysym(uint32(sym), down)
}

// unicode types one character on key-down as its keysym. Mutter types only
// keysyms its keymap has (with their Shift/AltGr level); others fail.
func (s *gnomeScreen) unicode(ch uint16, down bool) error {
	if !down || (ch >= 0xd800 && ch <= 0xdfff) {
		return nil
	}
	sym := uint32(keysymFor(rune(ch)))
	if err := s.sess.KeyboardKeysym(sym, true); err != nil {
		return err
	}
	return s.sess.KeyboardKeysym(sym, false)
}

func (s *gnomeScreen) close() error {
	s.mu.Lock()
	for _, m := range s.mons {
		s.unwatchMon(m)
	}
	s.frm = frame{}
	s.frmBuf.free()
	s.mu.Unlock()
	err := s.sess.Close()
	s.conn.Close()
	return err
}
