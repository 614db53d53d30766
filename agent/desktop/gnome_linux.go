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
			"width", s.w, "height", s.h, "pipewire_node", s.sess.Node)
		return s, name, nil
	}
	if len(errs) == 0 {
		return nil, "", errNoDisplay
	}
	return nil, "", fmt.Errorf("%w: %w", errNoDisplay, errors.Join(errs...))
}

// gnomeScreen shows one Mutter monitor: frames from the ScreenCast
// PipeWire stream (read by a gst-launch-1.0 subprocess run as the session
// user), input through RemoteDesktop's Notify* calls. Mutter sends a frame
// only when the monitor's content changed, so a static screen costs
// nothing; each frame is compared with the last to find the changed box.
type gnomeScreen struct {
	log    *slog.Logger
	conn   *dbus.Conn
	sess   *mutter.Session
	frames *mutter.Frames

	mu      sync.Mutex
	front   []byte
	w, h    int
	dmgBox  rect
	dmgAll  bool
	loopErr error
	dead    atomic.Bool
	loopEnd chan struct{}
	frm     frame
	bufs    [3]pixBuf // front, back, frm.pix
	nFrames atomic.Int64

	inMu   sync.Mutex
	locked uint32 // lock keys toggled through us: 1 NumLock, 4 CapsLock
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
	sess, err := mutter.Start(c, "", mutter.CursorHidden)
	if err != nil {
		c.Close()
		return nil, err
	}
	var cred *syscall.Credential
	if t.uid != syscall.Geteuid() {
		cred = &syscall.Credential{Uid: uint32(t.uid), Gid: uint32(t.gid)}
	}
	env := []string{"XDG_RUNTIME_DIR=" + t.runtime, "PATH=" + osPath(), "HOME=/nonexistent",
		// gst keeps its plugin registry cache in the session's runtime dir.
		"GST_REGISTRY=" + filepath.Join(t.runtime, "meshagent-gst-registry.bin")}
	fr, err := mutter.StartFrames(sess.Node, cred, env)
	if err != nil {
		sess.Close()
		c.Close()
		return nil, err
	}
	s := &gnomeScreen{log: log, conn: c, sess: sess, frames: fr, dmgAll: true, loopEnd: make(chan struct{})}
	fail := func(err error) (*gnomeScreen, error) {
		fr.Close()
		sess.Close()
		c.Close()
		return nil, err
	}
	type sized struct{ w, h int }
	sz := make(chan sized, 1)
	var szErr error
	go func() {
		w, h, err := fr.Size()
		szErr = err
		sz <- sized{w, h}
	}()
	select {
	case z := <-sz:
		if szErr != nil {
			return fail(szErr)
		}
		s.w, s.h = z.w, z.h
	case <-time.After(15 * time.Second):
		return fail(errors.New("gnome: pipewire stream not negotiated in 15s"))
	}
	s.front = s.bufs[0].grow(s.w * s.h * 4)
	first := make(chan error, 1)
	go s.loop(first)
	select {
	case err := <-first:
		if err != nil {
			<-s.loopEnd
			return fail(err)
		}
	case <-time.After(15 * time.Second):
		s.close()
		return nil, errors.New("gnome: no first frame from the pipewire stream in 15s")
	}
	return s, nil
}

// osPath is the PATH for helpers: the agent's own, or a standard one.
func osPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// loop reads frames, finds the changed box against the current picture
// and swaps the new one in.
func (s *gnomeScreen) loop(first chan<- error) {
	defer close(s.loopEnd)
	back := s.bufs[1].grow(s.w * s.h * 4)
	stride := s.w * 4
	sent := false
	for {
		if err := s.frames.Read(back); err != nil {
			s.loopErr = err
			s.dead.Store(true)
			if !sent {
				first <- err
			}
			return
		}
		s.nFrames.Add(1)
		s.mu.Lock()
		if r, ok := changedBox(s.front, back, stride, s.w, s.h); ok {
			s.dmgBox = union(s.dmgBox, r)
		}
		s.front, back = back, s.front
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
		return errors.New("gnome: Mutter closed the remote desktop session")
	default:
	}
	if s.dead.Load() {
		return fmt.Errorf("gnome: capture ended: %w", s.loopErr)
	}
	return nil
}

func (s *gnomeScreen) monitors() ([]monitor, error) {
	if err := s.ended(); err != nil {
		return nil, err
	}
	return []monitor{{ID: 1, W: s.w, H: s.h, Primary: true}}, nil
}

func (s *gnomeScreen) capture(x, y, w, h int) (*frame, error) {
	if err := s.ended(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if x < 0 || y < 0 || w <= 0 || h <= 0 || x+w > s.w || y+h > s.h {
		return nil, fmt.Errorf("gnome: capture %dx%d+%d+%d outside the %dx%d monitor", w, h, x, y, s.w, s.h)
	}
	size := w * h * 4
	s.frm = frame{pix: s.bufs[2].grow(size), stride: w * 4, w: w, h: h}
	for row := 0; row < h; row++ {
		o := ((y+row)*s.w + x) * 4
		copy(s.frm.pix[row*w*4:(row+1)*w*4], s.front[o:o+w*4])
	}
	return &s.frm, nil
}

func (s *gnomeScreen) damage() (x, y, w, h int, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, all := s.dmgBox, s.dmgAll
	s.dmgBox, s.dmgAll = rect{}, false
	if all {
		return 0, 0, 0, 0, false
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

func (s *gnomeScreen) mouseMove(x, y int) error {
	x, y = min(max(x, 0), s.w-1), min(max(y, 0), s.h-1)
	return s.sess.PointerMotionAbsolute(float64(x), float64(y))
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
	s.frames.Close()
	<-s.loopEnd
	err := s.sess.Close()
	s.conn.Close()
	s.mu.Lock()
	s.front, s.frm = nil, frame{}
	for i := range s.bufs {
		s.bufs[i].free()
	}
	s.mu.Unlock()
	return err
}
