package desktop

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// Options tunes a desktop session. The zero value discovers the display by
// itself, which is what the agent wants; the fields exist for tests,
// benchmarks and explicit configuration.
type Options struct {
	// Display and XAuthority name an X display to try before discovery
	// (Linux only), e.g. ":0" and "/run/user/1000/gdm/Xauthority".
	Display    string
	XAuthority string
	// ProcRoot is the process table discovery scans for X servers and
	// sessions (Linux); "" means /proc. Tests point it at a copy that
	// holds only their own X server.
	ProcRoot string
	// WaylandDisplay names a Wayland compositor socket to try (Linux
	// only) when no X display works: a path, or a name relative to
	// XDG_RUNTIME_DIR like WAYLAND_DISPLAY.
	WaylandDisplay string
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Lock locks the local screen (the toolbar's Lock, auto-lock on
	// disconnect); nil means LockScreen.
	Lock func(context.Context) error
	// LogEvent, when set, records an event with MeshCentral's msgid in
	// the server's log for this session (LockMsgID).
	LogEvent func(msgID int)
	// OnFrame, when set, is called after every capture pass that sent
	// tiles, with their number and total bytes; cmd/deskbench measures
	// with it.
	OnFrame func(tiles, bytes int)
	// ThreadSetup, when set, runs on the OS thread of every capture and
	// input call (the GDI screen on Windows), with that thread locked for
	// the call. The Windows session worker attaches the thread to the
	// current input desktop there, so capture and input follow the lock
	// screen and the UAC secure desktop.
	ThreadSetup func()
	// StateDir is where the agent keeps state (its data directory): the
	// xdg-desktop-portal route stores each user's restore token there
	// (owner-only), so the user's one grant allows later sessions. ""
	// keeps no token: every portal session asks the user.
	StateDir string
	// Portal makes the Wayland route the xdg-desktop-portal one for every
	// compositor, not only those without a route of their own (KDE
	// Plasma and others); tests use it on compositors that have one.
	Portal bool

	// notice, set by Serve, tells the viewer something it should show
	// (a portal waiting for the user's grant).
	notice func(string)
}

// WebRTC is the desktop's WebRTC upgrade policy (sessions.md §5): the
// browser may move the session onto a data channel, and large KVM commands
// are fragmented there because the viewer reassembles them (§5.4). After a
// switch Serve itself sends a full screen on the new path.
var WebRTC = session.UpgradePolicy{Allow: true, FragmentBinary: true}

// ErrDenied is returned when the session's rights do not allow the desktop.
var ErrDenied = errors.New("desktop: no remote desktop rights")

// Timing limits of the protocol's frame timer (sessions.md §4.5) and how
// often to look for a display while none is found.
const (
	minFrame        = 20 * time.Millisecond
	maxFrame        = 5 * time.Second
	defaultFrame    = 100 * time.Millisecond
	defaultQuality  = 60
	discoverEvery   = 2 * time.Second
	lostRetry       = 250 * time.Millisecond
	geometryEvery   = time.Second
	fullCheckEvery  = 2 * time.Second
	scaleFull       = 1024
	minScale        = 64
	noDisplayNotice = "Unable to capture display: no desktop found yet, still looking"
	// settingsWait bounds how long the first frame waits for the viewer's
	// settings. MeshCentral's viewer answers the first SCREEN with
	// COMPRESSION (image type, quality, scaling, frame timer), UNPAUSE and
	// an input-lock query (agent-desktop-0.0.2.js ProcessScreenMsg); a
	// frame sent before that answer is in the wrong type and quality and
	// is sent again in full once it arrives. A client that sends no
	// settings gets its first frame this much later.
	settingsWait = time.Second
)

// Serve runs a remote desktop (relay protocol 2) session on ch until the
// viewer leaves, ctx ends, or the channel fails; it closes ch on return.
// The caller has already exchanged "c" and the protocol number "2" and
// obtained any user consent. Rights come from info: without desktop rights
// Serve refuses; without input rights (view-only) viewer input is dropped
// while refresh, quality and display selection still work.
func Serve(ctx context.Context, ch session.Channel, info session.Info, opts Options) error {
	defer ch.Close()
	if !session.AllowDesktopView(info.Rights) {
		return ErrDenied
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &sess{
		ch:       ch,
		opts:     opts,
		log:      log.With("session", info.SessionID, "user", info.UserID),
		input:    session.AllowDesktopInput(info.Rights, info.ViewOnly),
		cmds:     make(chan kvm.Command, 256),
		quality:  defaultQuality,
		scale:    scaleFull,
		interval: defaultFrame,
		tiles:    newTiler(),
	}
	s.opts.notice = func(msg string) { s.send(ctx, kvm.EncodeText(kvm.Error, msg)) }
	s.log.Debug("desktop: session start", "input", s.input, "jpeg", encoderName(), "libwebp", webpVersion())
	s.noteTSID(ctx, info)
	s.autolock.Store(autolockOption(info.Options) && s.input)
	defer func() {
		if s.autolock.Load() {
			s.lockNow(context.WithoutCancel(ctx))
		}
	}()
	readErr := make(chan error, 1)
	go func() { readErr <- s.readLoop(ctx); cancel() }()
	go s.refreshOnSwitch(ctx)
	err := s.run(ctx)
	s.closeScreen()
	cancel()
	ch.Close()
	rerr := <-readErr
	if err == nil || errors.Is(err, context.Canceled) {
		err = rerr
	}
	if errors.Is(err, session.ErrClosed) || errors.Is(err, errViewerClosed) || (errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		return nil
	}
	return err
}

var (
	errViewerClosed = errors.New("viewer closed the session")
	// errWrite marks channel failures, which end the session, as opposed
	// to display failures, which send it back to discovery.
	errWrite = errors.New("desktop write")
)

type sess struct {
	ch    session.Channel
	opts  Options
	log   *slog.Logger
	input bool
	cmds  chan kvm.Command
	// autolock: lock the screen when the session ends (options.autolock
	// or the "autolock" control message).
	autolock atomic.Bool

	wmu sync.Mutex // serialises Write: control replies come from the reader

	// mu guards scr and the coordinate mapping used by input injection,
	// which runs on the reader goroutine to keep input latency independent
	// of encoding.
	mu     sync.Mutex
	scr    screen
	region monitor // captured area in screen coordinates
	scale  int     // 1024 = 100 %
	outW   int
	outH   int

	// capture-loop state (run goroutine only)
	mons     []monitor
	selected uint16
	quality  int
	// imageType is what the viewer asked for in COMPRESSION (1 JPEG,
	// 2 PNG, 3 TIFF, 4 WebP; 0 from clients that send none).
	imageType byte
	// settings: a COMPRESSION has arrived (the first frame waits for it,
	// up to settingsWait).
	settings bool
	interval time.Duration
	paused   bool
	tiles    *tiler
	scaled   frame
	rects    []rect
	encs     []jpegEncoder
	webps    []jpegEncoder // lossless WebP, one per worker, made on first use
	webpOff  atomic.Bool   // libwebp missing or failing: JPEG only
	webpMu   sync.Mutex    // guards webps while workers make their encoders
	lossless []bool        // per rectangle of this pass
	// losslessNs is the recent lossless WebP cost in ns per 1024 pixels
	// (0 before the first), for chooseLossless's CPU budget.
	losslessNs atomic.Int64
	bufs       [][]byte
	scratch    [][]byte
	lastGeom   time.Time
	lastFull   time.Time // last whole-region capture
}

func (s *sess) write(ctx context.Context, b []byte, binary bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.ch.Write(ctx, session.Frame{Binary: binary, Data: b}); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

func (s *sess) send(ctx context.Context, b []byte) error { return s.write(ctx, b, true) }

// readLoop handles everything from the viewer: control messages (text),
// input (injected right here) and settings (passed to the capture loop).
func (s *sess) readLoop(ctx context.Context) error {
	var p kvm.Parser
	for {
		f, err := s.ch.Read(ctx)
		if err != nil {
			return err
		}
		if !f.Binary {
			if err := s.control(ctx, f.Data); err != nil {
				return err
			}
			continue
		}
		cmds, bad := p.Feed(f.Data)
		if bad {
			s.log.Debug("desktop: dropped malformed viewer input")
		}
		for _, c := range cmds {
			if s.handleInput(ctx, c) {
				continue
			}
			select {
			case s.cmds <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// refreshOnSwitch asks the capture loop for a full refresh once the
// channel's output has moved to a WebRTC data channel, as the reference
// does when it re-pipes the KVM (sessions.md §5.2): the viewer then gets
// SCREEN and a whole frame on the new path.
func (s *sess) refreshOnSwitch(ctx context.Context) {
	select {
	case <-session.Switched(s.ch):
	case <-ctx.Done():
		return
	}
	s.log.Debug("desktop: moved to WebRTC, sending a full frame")
	select {
	case s.cmds <- kvm.Command{Cmd: kvm.Refresh}:
	case <-ctx.Done():
	}
}

// control answers the relay control messages that can arrive mid-session
// (sessions.md §1.8).
func (s *sess) control(ctx context.Context, data []byte) error {
	var m struct {
		Type  string          `json:"type"`
		Time  json.RawMessage `json:"time"`
		Value bool            `json:"value"`
	}
	if len(data) < 2 || data[0] != '{' || json.Unmarshal(data, &m) != nil {
		return nil
	}
	switch m.Type {
	case "close":
		return errViewerClosed
	case "lock":
		if s.input {
			s.lockNow(ctx)
		}
	case "autolock":
		s.autolock.Store(m.Value && s.input)
	case "ping":
		return s.write(ctx, session.ControlJSON("pong"), false)
	case "rtt":
		if len(m.Time) == 0 {
			m.Time = json.RawMessage("0")
		}
		return s.write(ctx, []byte(`{"ctrlChannel":"`+session.CtrlChannel+`","type":"rtt","time":`+string(m.Time)+`}`), false)
	}
	return nil
}

// Windows virtual-key codes of the Ctrl+Alt+Del chord.
const (
	vkControl = 0x11
	vkMenu    = 0x12
	vkDelete  = 0x2e
)

// handleInput injects keyboard and mouse commands and reports whether c was
// one. View-only sessions drop them here, so nothing reaches the screen.
func (s *sess) handleInput(ctx context.Context, c kvm.Command) bool {
	switch c.Cmd {
	case kvm.Key, kvm.KeyUnicode, kvm.Mouse, kvm.CtrlAltDel, kvm.Touch:
	default:
		return false
	}
	if !s.input {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scr == nil {
		return true
	}
	d := c.Data
	var err error
	switch c.Cmd {
	case kvm.Key:
		if len(d) < 2 {
			return true
		}
		down := d[0] == 0 || d[0] == 4
		err = s.scr.key(d[1], down, d[0] == 3 || d[0] == 4)
		if !down && (d[1] == 0x14 || d[1] == 0x90 || d[1] == 0x91) {
			ks := s.scr.keyState()
			go s.send(ctx, kvm.EncodeByte(kvm.KeyState, ks))
		}
	case kvm.CtrlAltDel:
		// The toolbar's Ctrl+Alt+Del: the chord itself, pressed and
		// released in order (the C agent drops it on Linux; on X11 the
		// desktop decides what it means, e.g. GNOME's log-out dialog).
		for _, k := range []struct {
			vk   byte
			down bool
		}{{vkControl, true}, {vkMenu, true}, {vkDelete, true}, {vkDelete, false}, {vkMenu, false}, {vkControl, false}} {
			if err == nil {
				err = s.scr.key(k.vk, k.down, k.vk == vkDelete)
			}
		}
	case kvm.KeyUnicode:
		if len(d) < 3 {
			return true
		}
		err = s.scr.unicode(binary.BigEndian.Uint16(d[1:]), d[0] == 0)
	case kvm.Mouse:
		if len(d) < 6 {
			return true
		}
		btn := d[1]
		x, y := s.toScreen(int(binary.BigEndian.Uint16(d[2:])), int(binary.BigEndian.Uint16(d[4:])))
		err = s.scr.mouseMove(x, y)
		if btn != 0x88 { // double-click: the down/up pairs already came
			for _, b := range []struct {
				bit  byte
				btn  int
				down bool
			}{{0x02, 1, true}, {0x04, 1, false}, {0x08, 3, true}, {0x10, 3, false}, {0x20, 2, true}, {0x40, 2, false}} {
				if btn&b.bit != 0 && err == nil {
					err = s.scr.mouseButton(b.btn, b.down)
				}
			}
		}
		if len(d) >= 8 && err == nil {
			if delta := int16(binary.BigEndian.Uint16(d[6:])); delta != 0 {
				err = s.scr.wheel(int(delta))
			}
		}
	}
	if err != nil {
		s.log.Debug("desktop: input failed", "cmd", c.Cmd, "err", err)
	}
	return true
}

// toScreen maps viewer canvas coordinates (the last SCREEN size) back to
// screen coordinates through the scaling and the selected display offset.
func (s *sess) toScreen(x, y int) (int, int) {
	if s.outW > 0 && s.outW != s.region.W {
		x = x * s.region.W / s.outW
		y = y * s.region.H / s.outH
	}
	x = min(max(x, 0), max(s.region.W-1, 0))
	y = min(max(y, 0), max(s.region.H-1, 0))
	return s.region.X + x, s.region.Y + y
}

func (s *sess) closeScreen() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scr != nil {
		s.scr.close()
		s.scr = nil
	}
	for _, e := range s.encs {
		e.close()
	}
	s.encs = nil
	for _, e := range s.webps {
		if e != nil {
			e.close()
		}
	}
	s.webps = nil
}

// run is the capture loop: find a display, stream it, and when it goes
// away (X server restart, logout) tell the viewer and look again.
func (s *sess) run(ctx context.Context) error {
	for {
		if err := s.waitScreen(ctx); err != nil {
			return err
		}
		err := s.stream(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errWrite) {
			return err
		}
		s.log.Warn("desktop: display lost", "err", err)
		s.closeScreen()
		s.tiles.reset()
		// A display that opens but fails at once (GDI refusing BitBlt on
		// a desktop being switched) is retried a few times a second, not
		// in a busy loop.
		if err := s.idle(ctx, lostRetry); err != nil {
			return err
		}
	}
}

// waitScreen discovers a display, retrying every discoverEvery; the viewer
// is told once that none was found yet, so a desktop that appears later
// (display manager started after the agent) still works.
func (s *sess) waitScreen(ctx context.Context) error {
	noticeSent := false
	for {
		scr, name, err := openScreen(s.opts, s.log)
		if err == nil {
			s.mu.Lock()
			s.scr = scr
			s.mu.Unlock()
			s.log.Info("desktop: capturing", "display", name)
			return nil
		}
		if !noticeSent {
			s.log.Warn("desktop: no display yet", "err", err)
			if err := s.send(ctx, kvm.EncodeText(kvm.Error, noDisplayNotice)); err != nil {
				return err
			}
			noticeSent = true
		}
		if err := s.idle(ctx, discoverEvery); err != nil {
			return err
		}
	}
}

// stream sends the opening sequence and then one pass per frame interval
// until an error.
func (s *sess) stream(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	if !s.settings {
		if err := s.awaitSettings(ctx, settingsWait); err != nil {
			return err
		}
	}
	next := time.Now()
	for {
		if err := s.idle(ctx, time.Until(next)); err != nil {
			return err
		}
		start := time.Now()
		if err := s.pass(ctx); err != nil {
			return err
		}
		next = start.Add(s.interval)
		if time.Since(start) > s.interval {
			// Falling behind: leave the reader a moment rather than spin.
			next = time.Now().Add(time.Millisecond)
		}
	}
}

// idle waits up to d while applying viewer settings as they arrive.
func (s *sess) idle(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		// Still apply pending commands without blocking.
		for {
			select {
			case c := <-s.cmds:
				if err := s.apply(ctx, c); err != nil {
					return err
				}
			default:
				return ctx.Err()
			}
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case c := <-s.cmds:
			if err := s.apply(ctx, c); err != nil {
				return err
			}
		}
	}
}

// awaitSettings applies viewer commands until the viewer's COMPRESSION
// has arrived or d has passed, so the first frame goes out once, in the
// image type and quality the viewer chose (see settingsWait).
func (s *sess) awaitSettings(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for !s.settings {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			s.log.Debug("desktop: no viewer settings yet, sending the first frame as JPEG")
			return nil
		case c := <-s.cmds:
			if err := s.apply(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// start sends the opening sequence: sizes, display list, key state.
func (s *sess) start(ctx context.Context) error {
	mons, err := s.scr.monitors()
	if err != nil {
		return err
	}
	s.mons = mons
	s.lastGeom = time.Now()
	if s.selected == 0 || !s.validDisplay(s.selected) {
		s.selected = mons[0].ID
		for _, m := range mons {
			if m.Primary {
				s.selected = m.ID
				break
			}
		}
	}
	s.updateRegion()
	msgs := [][]byte{
		s.screenMsg(),
		kvm.Encode(kvm.SetDisplay, s.selected),
		kvm.EncodeByte(kvm.KeyState, s.scr.keyState()),
	}
	if len(mons) > 1 {
		msgs = append(msgs, encodeDisplayInfo(mons))
	}
	msgs = append(msgs, encodeDisplays(mons, s.selected))
	shape, _ := s.scr.cursor()
	msgs = append(msgs, kvm.EncodeByte(kvm.Cursor, shape))
	for _, m := range msgs {
		if err := s.send(ctx, m); err != nil {
			return err
		}
	}
	s.tiles.reset()
	return nil
}

func (s *sess) validDisplay(id uint16) bool {
	if id == kvm.AllDisplays {
		return len(s.mons) > 1
	}
	for _, m := range s.mons {
		if m.ID == id {
			return true
		}
	}
	return false
}

// updateRegion recomputes the captured area and the scaled output size.
func (s *sess) updateRegion() {
	r := s.mons[0]
	if s.selected == kvm.AllDisplays {
		x0, y0, x1, y1 := r.X, r.Y, r.X+r.W, r.Y+r.H
		for _, m := range s.mons {
			x0, y0 = min(x0, m.X), min(y0, m.Y)
			x1, y1 = max(x1, m.X+m.W), max(y1, m.Y+m.H)
		}
		r = monitor{ID: kvm.AllDisplays, X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
	} else {
		for _, m := range s.mons {
			if m.ID == s.selected {
				r = m
			}
		}
	}
	s.mu.Lock()
	s.region = r
	s.outW = max(1, r.W*s.scale/scaleFull)
	s.outH = max(1, r.H*s.scale/scaleFull)
	s.mu.Unlock()
	if f, ok := s.scr.(regionFocuser); ok {
		f.focus(r.X, r.Y, r.W, r.H)
	}
}

// regionFocuser is a screen that reads each monitor separately (GNOME: a
// PipeWire stream each) and stops reading the ones outside the captured
// region; capture starts the others again when asked for them.
type regionFocuser interface {
	focus(x, y, w, h int)
}

func (s *sess) screenMsg() []byte { return kvm.Encode(kvm.Screen, uint16(s.outW), uint16(s.outH)) }

// apply acts on a non-input viewer command (sessions.md §4.5).
func (s *sess) apply(ctx context.Context, c kvm.Command) error {
	d := c.Data
	u16 := func(i int) int { return int(binary.BigEndian.Uint16(d[i:])) }
	switch c.Cmd {
	case kvm.Compression:
		s.log.Debug("desktop: viewer settings", "compression", fmt.Sprintf("%x", d))
		s.settings = true
		if len(d) >= 1 && d[0] != s.imageType {
			s.imageType = d[0]
			s.tiles.reset()
		}
		if len(d) >= 2 {
			q := int(d[1])
			if q < 1 || q > 100 {
				q = defaultQuality
			}
			if q != s.quality {
				s.quality = q
				s.tiles.reset()
			}
		}
		if len(d) >= 4 {
			sc := u16(2)
			if sc < minScale || sc > 4096 {
				sc = scaleFull
			}
			sc = min(sc, scaleFull) // never upscale: it only costs bytes
			if sc != s.scale {
				s.scale = sc
				if s.scr != nil && len(s.mons) > 0 {
					s.updateRegion()
					s.tiles.reset()
					return s.send(ctx, s.screenMsg())
				}
			}
		}
		if len(d) >= 6 {
			s.setInterval(u16(4))
		}
	case kvm.FrameTimer:
		if len(d) >= 2 {
			s.setInterval(u16(0))
		}
	case kvm.Refresh:
		s.tiles.reset()
		if s.scr != nil && len(s.mons) > 0 {
			return s.send(ctx, s.screenMsg())
		}
	case kvm.Pause:
		if len(d) >= 1 {
			s.paused = d[0] != 0
		}
	case kvm.GetDisplays:
		if s.scr == nil || len(s.mons) == 0 {
			return s.send(ctx, encodeDisplays(nil, 0))
		}
		if len(s.mons) > 1 {
			if err := s.send(ctx, encodeDisplayInfo(s.mons)); err != nil {
				return err
			}
		}
		return s.send(ctx, encodeDisplays(s.mons, s.selected))
	case kvm.SetDisplay:
		if len(d) >= 2 && s.scr != nil && len(s.mons) > 0 && s.validDisplay(uint16(u16(0))) {
			s.selected = uint16(u16(0))
			s.updateRegion()
			s.tiles.reset()
			for _, m := range [][]byte{s.screenMsg(), kvm.Encode(kvm.SetDisplay, s.selected), encodeDisplays(s.mons, s.selected)} {
				if err := s.send(ctx, m); err != nil {
					return err
				}
			}
		}
	case kvm.InputLock:
		// 0 unlock, 1 lock, 2 query; the answer is the state in force.
		return s.send(ctx, kvm.EncodeByte(kvm.InputLock, s.inputLock(c.Data)))
	case kvm.Message, kvm.InitTouch:
		// No local UI for messages; touch is emulated as mouse by the viewer.
	}
	return nil
}

// inputLocker is a screen that can hold the local keyboard and pointer
// while remote input goes on (X11: XI2 device grabs).
type inputLocker interface {
	lockInput(on bool) (int, error)
	inputLocked() bool
}

// inputLock serves the toolbar's remote input lock (KVM 87) and returns
// the real state: 1 only while the local devices are held. Screens that
// cannot hold them (Wayland, Windows and macOS here) answer 0, as the C
// agent does on Linux. View-only viewers may only ask.
func (s *sess) inputLock(d []byte) byte {
	s.mu.Lock()
	l, ok := s.scr.(inputLocker)
	s.mu.Unlock()
	if !ok {
		return 0
	}
	if len(d) > 0 && d[0] <= 1 && s.input {
		n, err := l.lockInput(d[0] == 1)
		if err != nil {
			s.log.Warn("desktop: remote input lock failed", "err", err)
		} else {
			s.log.Info("desktop: remote input lock", "locked", d[0] == 1, "devices", n)
		}
	}
	if l.inputLocked() {
		return 1
	}
	return 0
}

func (s *sess) setInterval(ms int) {
	d := time.Duration(ms) * time.Millisecond
	s.interval = min(max(d, minFrame), maxFrame)
}

// checkGeometry re-reads the monitor layout now and then; a resolution or
// monitor change sends the new size and a full frame.
func (s *sess) checkGeometry(ctx context.Context) error {
	if time.Since(s.lastGeom) < geometryEvery {
		return nil
	}
	s.lastGeom = time.Now()
	mons, err := s.scr.monitors()
	if err != nil {
		return err
	}
	if equalMonitors(mons, s.mons) {
		return nil
	}
	s.mons = mons
	if !s.validDisplay(s.selected) {
		s.selected = mons[0].ID
	}
	s.updateRegion()
	s.tiles.reset()
	for _, m := range [][]byte{s.screenMsg(), encodeDisplays(mons, s.selected)} {
		if err := s.send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func equalMonitors(a, b []monitor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pass is one capture cycle. With DAMAGE a static screen costs one atomic
// load per interval; otherwise a grab plus tile hashing finds the changes.
func (s *sess) pass(ctx context.Context) error {
	if err := s.checkGeometry(ctx); err != nil {
		return err
	}
	if shape, changed := s.scr.cursor(); changed {
		if err := s.send(ctx, kvm.EncodeByte(kvm.Cursor, shape)); err != nil {
			return err
		}
	}
	if s.paused {
		return nil
	}
	r := s.region
	dx, dy, dw, dh, known := s.scr.damage()
	scaled := s.outW != r.W || s.outH != r.H
	var n int
	if known && !scaled && s.tiles.canDiffAt(r.W, r.H) && time.Since(s.lastFull) < fullCheckEvery {
		// Only the damaged box, clipped to the captured region.
		x0, y0 := max(dx, r.X), max(dy, r.Y)
		x1, y1 := min(dx+dw, r.X+r.W), min(dy+dh, r.Y+r.H)
		if x1 <= x0 || y1 <= y0 {
			return nil
		}
		f, err := s.scr.capture(x0, y0, x1-x0, y1-y0)
		if err != nil {
			return err
		}
		n = s.tiles.diffAt(f, x0-r.X, y0-r.Y)
	} else {
		if known && dw == 0 && s.tiles.valid && time.Since(s.lastFull) < fullCheckEvery {
			return nil
		}
		// Without damage information, after a reset, when scaling, and now
		// and then as a safety net for drawing DAMAGE does not see: all of it.
		s.lastFull = time.Now()
		f, err := s.scr.capture(r.X, r.Y, r.W, r.H)
		if err != nil {
			return err
		}
		if scaled {
			scaleFrame(&s.scaled, f, s.outW, s.outH)
			f = &s.scaled
		}
		n = s.tiles.diff(f)
	}
	if n == 0 {
		return nil
	}
	s.rects = s.tiles.rects(s.rects[:0])
	if err := s.encodeRects(s.tiles.current()); err != nil {
		return err
	}
	total := 0
	for i, rc := range s.rects {
		msg := kvm.FramePicture(s.bufs[i], rc.x, rc.y)
		if err := s.send(ctx, msg); err != nil {
			return err
		}
		total += len(msg)
	}
	if s.opts.OnFrame != nil {
		s.opts.OnFrame(len(s.rects), total)
	}
	return nil
}

// encodeRects encodes every changed rectangle, spreading them over one
// encoder per CPU (at most 4): a full-screen change is then bounded by
// memory bandwidth rather than one core. Rectangles chooseLossless picks
// go out as lossless WebP, the rest as JPEG.
func (s *sess) encodeRects(f *frame) error {
	n := len(s.rects)
	workers := min(runtime.NumCPU(), 4, n)
	for len(s.encs) < workers {
		e, err := newJPEGEncoder()
		if err != nil {
			return err
		}
		s.encs = append(s.encs, e)
		s.scratch = append(s.scratch, nil)
	}
	s.chooseLossless(f, workers)
	for len(s.bufs) < n {
		s.bufs = append(s.bufs, nil)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var sub frame
				sub, s.scratch[w] = f.sub(s.rects[i], s.scratch[w])
				buf := append(s.bufs[i][:0], make([]byte, kvm.PictureHeader)...)
				var err error
				if s.lossless[i] && !s.webpOff.Load() {
					var ok bool
					if buf, ok = s.encodeWebP(w, buf, sub); ok {
						s.bufs[i] = buf
						continue
					}
				}
				buf, err = s.encs[w].encode(buf, sub, s.quality)
				if err != nil {
					errs[w] = err
					return
				}
				s.bufs[i] = buf
			}
		}(w)
	}
	wg.Wait()
	return errors.Join(errs...)
}
