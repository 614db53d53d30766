package desktop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/osuser"
)

// X11UI is consent.UI on Linux/X11: the consent prompt, the session
// notification and the privacy bar are small windows the agent draws
// itself over the X protocol, on the console user's display (found by
// osuser's rule and its session environment, then by the same discovery
// the desktop uses). Drawing them natively, rather than running zenity or
// kdialog as the user as the C agent does, needs no toolkit on the
// machine and works wherever the desktop itself works.
//
// Each window is its own X client, so closing the connection removes it.
// Buttons are child windows named by their label (WM_NAME), and every
// window carries its whole text in the _MESHAGENT_TEXT property, so
// assistive tools and tests can find and read them.
type X11UI struct {
	// Options names the display for tests (Display, XAuthority, ProcRoot);
	// the zero value finds the console user's.
	Options Options
	Logger  *slog.Logger
	// NotifyFor is how long a notification stays; 0 means 10 s.
	NotifyFor time.Duration
}

// NewConsentUI returns this platform's consent.UI.
func NewConsentUI(log *slog.Logger) consent.UI { return &X11UI{Logger: log} }

// Window classes (WM_CLASS) of the three windows.
const (
	ClassPrompt = "meshagent-consent"
	ClassNotify = "meshagent-notify"
	ClassBar    = "meshagent-privacybar"
)

func (u *X11UI) log() *slog.Logger {
	if u.Logger != nil {
		return u.Logger
	}
	return slog.Default()
}

// targets lists the displays to show windows on, best first: explicit
// options, the console user's session display, then discovery.
func (u *X11UI) targets() []xTarget {
	var out []xTarget
	if u.Options.Display != "" {
		out = append(out, xTarget{u.Options.Display, u.Options.XAuthority, "options"})
	}
	if cu, err := osuser.Console(); err == nil {
		if env, err := osuser.SessionEnv(cu); err == nil {
			t := xTarget{source: "console user " + cu.Name}
			for _, kv := range env {
				if v, ok := strings.CutPrefix(kv, "DISPLAY="); ok {
					t.display = v
				}
				if v, ok := strings.CutPrefix(kv, "XAUTHORITY="); ok {
					t.authority = v
				}
			}
			if t.display != "" {
				out = append(out, t)
			}
		}
	}
	return append(out, discoverX(u.Options)...)
}

func (u *X11UI) connect() (*xgb.Conn, error) {
	var errs []error
	for _, t := range u.targets() {
		c, err := connectX(t)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", consent.ErrNoUI, errors.Join(append(errs, errNoDisplay)...))
}

// Ask implements consent.UI: a dialog centred on the screen with the
// message and Allow / Deny buttons, until a click, the timeout or ctx.
func (u *X11UI) Ask(ctx context.Context, p consent.Prompt) (consent.Answer, error) {
	c, err := u.connect()
	if err != nil {
		return consent.Denied, err
	}
	defer c.Close()
	w, err := newXWin(c)
	if err != nil {
		return consent.Denied, err
	}
	lines := wrapText(p.Message, 56)
	pad := 16
	bw, bh := max(w.textWidth(p.Allow), w.textWidth(p.Deny))+32, w.lineH+12
	width := max(w.textWidth(strings.Repeat("m", 56))+2*pad, 2*bw+3*pad)
	for _, l := range lines {
		width = max(width, w.textWidth(l)+2*pad)
	}
	height := pad + w.lineH*(len(lines)+2) + pad + bh + pad
	x, y := (int(w.scr.WidthInPixels)-width)/2, (int(w.scr.HeightInPixels)-height)/3
	if err := w.create(x, y, width, height, false, p.Title, ClassPrompt, p.Title+"\n"+p.Message); err != nil {
		return consent.Denied, err
	}
	by := height - pad - bh
	allow, err := w.button(width-2*(bw+pad), by, bw, bh, p.Allow)
	if err != nil {
		return consent.Denied, err
	}
	deny, err := w.button(width-bw-pad, by, bw, bh, p.Deny)
	if err != nil {
		return consent.Denied, err
	}
	w.draw = func() {
		w.text(w.win, pad, pad, p.Title)
		for i, l := range lines {
			w.text(w.win, pad, pad+w.lineH*(i+2), l)
		}
	}
	w.show()
	u.log().Info("consent prompt shown", "title", p.Title, "timeout", p.Timeout)
	t := time.NewTimer(p.Timeout)
	defer t.Stop()
	select {
	case b := <-w.clicked:
		if b == allow {
			return consent.Accepted, nil
		}
		_ = deny
		return consent.Denied, nil
	case <-w.closed:
		return consent.Denied, nil
	case <-t.C:
		return consent.TimedOut, nil
	case <-ctx.Done():
		return consent.Denied, nil
	}
}

// Notify implements consent.UI: a box in the top right corner with the
// title and message, gone after NotifyFor or a click on it.
func (u *X11UI) Notify(ctx context.Context, title, message string) error {
	c, err := u.connect()
	if err != nil {
		return err
	}
	w, err := newXWin(c)
	if err != nil {
		c.Close()
		return err
	}
	lines := wrapText(message, 48)
	pad := 12
	width := w.textWidth(strings.Repeat("m", 48)) + 2*pad
	height := pad + w.lineH*(len(lines)+1) + pad
	x := int(w.scr.WidthInPixels) - width - 16
	if err := w.create(x, 16, width, height, true, title, ClassNotify, title+"\n"+message); err != nil {
		c.Close()
		return err
	}
	w.draw = func() {
		w.text(w.win, pad, pad, title)
		for i, l := range lines {
			w.text(w.win, pad, pad+w.lineH*(i+1), l)
		}
	}
	w.clickable(w.win)
	w.show()
	d := u.NotifyFor
	if d <= 0 {
		d = 10 * time.Second
	}
	go func() {
		defer c.Close()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-w.clicked:
		case <-w.closed:
		case <-t.C:
		case <-ctx.Done():
		}
	}()
	return nil
}

// ShowBar implements consent.UI: a bar at the top centre of the screen
// with the text and a Disconnect button, above other windows.
func (u *X11UI) ShowBar(text string, onDisconnect func()) (consent.Bar, error) {
	c, err := u.connect()
	if err != nil {
		return nil, err
	}
	w, err := newXWin(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	b := &xBar{w: w}
	if err := b.layout(text, true); err != nil {
		c.Close()
		return nil, err
	}
	w.show()
	go func() {
		select {
		case <-w.clicked:
			b.Close()
			onDisconnect()
		case <-w.closed:
		}
	}()
	return b, nil
}

type xBar struct {
	mu   sync.Mutex
	w    *xWin
	btn  xproto.Window
	text string
}

const barLabel = "Disconnect"

func (b *xBar) layout(text string, first bool) error {
	w := b.w
	pad := 8
	bw, bh := w.textWidth(barLabel)+24, w.lineH+8
	width := w.textWidth(text) + bw + 3*pad
	height := bh + 2*pad
	x := (int(w.scr.WidthInPixels) - width) / 2
	if first {
		if err := w.create(x, 0, width, height, true, text, ClassBar, text); err != nil {
			return err
		}
		btn, err := w.button(width-bw-pad, pad, bw, bh, barLabel)
		if err != nil {
			return err
		}
		b.btn = btn
	} else {
		xproto.ConfigureWindow(w.c, w.win, xproto.ConfigWindowX|xproto.ConfigWindowWidth, []uint32{uint32(x), uint32(width)})
		xproto.ConfigureWindow(w.c, b.btn, xproto.ConfigWindowX, []uint32{uint32(width - bw - pad)})
		w.setText(text, text)
		xproto.ClearArea(w.c, true, w.win, 0, 0, 0, 0)
	}
	b.text = text
	w.draw = func() { w.text(w.win, pad, pad+4, b.text) }
	return nil
}

func (b *xBar) SetText(text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.layout(text, false)
}

func (b *xBar) Close() error {
	b.w.c.Close()
	return nil
}

// xWin is one top-level window with its own connection: a white box with
// a black border and text in the server's "fixed" font.
type xWin struct {
	c       *xgb.Conn
	scr     *xproto.ScreenInfo
	win     xproto.Window
	gc      xproto.Gcontext
	font    xproto.Font
	charW   int
	ascent  int
	lineH   int
	names   map[xproto.Window]string // button labels, by window
	draw    func()
	clicked chan xproto.Window
	closed  chan struct{}
	atomDel xproto.Atom
}

func newXWin(c *xgb.Conn) (*xWin, error) {
	setup := xproto.Setup(c)
	w := &xWin{c: c, scr: setup.DefaultScreen(c), names: map[xproto.Window]string{},
		clicked: make(chan xproto.Window, 4), closed: make(chan struct{})}
	fid, err := xproto.NewFontId(c)
	if err != nil {
		return nil, err
	}
	if err := xproto.OpenFontChecked(c, fid, uint16(len("fixed")), "fixed").Check(); err != nil {
		return nil, fmt.Errorf("x11: open font fixed: %w", err)
	}
	w.font = fid
	q, err := xproto.QueryFont(c, xproto.Fontable(fid)).Reply()
	if err != nil {
		return nil, fmt.Errorf("x11: query font: %w", err)
	}
	w.charW = int(q.MaxBounds.CharacterWidth)
	w.ascent = int(q.FontAscent)
	w.lineH = int(q.FontAscent+q.FontDescent) + 4
	return w, nil
}

func (w *xWin) textWidth(s string) int { return utf8.RuneCountInString(s) * w.charW }

func (w *xWin) atom(name string) xproto.Atom {
	r, err := xproto.InternAtom(w.c, false, uint16(len(name)), name).Reply()
	if err != nil {
		return 0
	}
	return r.Atom
}

// create makes the top-level window. override keeps window managers away
// (notification, bar); a prompt is a normal dialog the WM may decorate.
func (w *xWin) create(x, y, width, height int, override bool, title, class, text string) error {
	id, err := xproto.NewWindowId(w.c)
	if err != nil {
		return err
	}
	w.win = id
	ov := uint32(0)
	if override {
		ov = 1
	}
	mask := uint32(xproto.EventMaskExposure | xproto.EventMaskStructureNotify)
	if err := xproto.CreateWindowChecked(w.c, w.scr.RootDepth, id, w.scr.Root, int16(x), int16(y), uint16(width), uint16(height), 2,
		xproto.WindowClassInputOutput, w.scr.RootVisual,
		xproto.CwBackPixel|xproto.CwBorderPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{w.scr.WhitePixel, w.scr.BlackPixel, ov, mask}).Check(); err != nil {
		return fmt.Errorf("x11: create window: %w", err)
	}
	gc, err := xproto.NewGcontextId(w.c)
	if err != nil {
		return err
	}
	w.gc = gc
	xproto.CreateGC(w.c, gc, xproto.Drawable(id), xproto.GcForeground|xproto.GcBackground|xproto.GcFont,
		[]uint32{w.scr.BlackPixel, w.scr.WhitePixel, uint32(w.font)})
	w.setText(title, text)
	cls := class + "\x00" + class + "\x00"
	xproto.ChangeProperty(w.c, xproto.PropModeReplace, id, xproto.AtomWmClass, xproto.AtomString, 8, uint32(len(cls)), []byte(cls))
	if !override {
		typ, dialog := w.atom("_NET_WM_WINDOW_TYPE"), w.atom("_NET_WM_WINDOW_TYPE_DIALOG")
		state, above := w.atom("_NET_WM_STATE"), w.atom("_NET_WM_STATE_ABOVE")
		w.setAtoms(typ, dialog)
		w.setAtoms(state, above)
		w.atomDel = w.atom("WM_DELETE_WINDOW")
		w.setAtoms(w.atom("WM_PROTOCOLS"), w.atomDel)
	}
	return nil
}

func (w *xWin) setAtoms(prop xproto.Atom, vals ...xproto.Atom) {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		xgb.Put32(b[4*i:], uint32(v))
	}
	xproto.ChangeProperty(w.c, xproto.PropModeReplace, w.win, prop, xproto.AtomAtom, 32, uint32(len(vals)), b)
}

// setText sets WM_NAME (latin-1), _NET_WM_NAME and _MESHAGENT_TEXT (UTF-8).
func (w *xWin) setText(title, text string) {
	setName(w.c, w.win, title)
	utf := w.atom("UTF8_STRING")
	xproto.ChangeProperty(w.c, xproto.PropModeReplace, w.win, w.atom("_MESHAGENT_TEXT"), utf, 8, uint32(len(text)), []byte(text))
}

func setName(c *xgb.Conn, win xproto.Window, name string) {
	l1 := latin1(name)
	xproto.ChangeProperty(c, xproto.PropModeReplace, win, xproto.AtomWmName, xproto.AtomString, 8, uint32(len(l1)), l1)
	if r, err := xproto.InternAtom(c, false, 12, "_NET_WM_NAME").Reply(); err == nil {
		if u, err := xproto.InternAtom(c, false, 11, "UTF8_STRING").Reply(); err == nil {
			xproto.ChangeProperty(c, xproto.PropModeReplace, win, r.Atom, u.Atom, 8, uint32(len(name)), []byte(name))
		}
	}
}

// button makes a child window drawn as a labelled button.
func (w *xWin) button(x, y, width, height int, label string) (xproto.Window, error) {
	id, err := xproto.NewWindowId(w.c)
	if err != nil {
		return 0, err
	}
	if err := xproto.CreateWindowChecked(w.c, w.scr.RootDepth, id, w.win, int16(x), int16(y), uint16(width), uint16(height), 1,
		xproto.WindowClassInputOutput, w.scr.RootVisual, xproto.CwBackPixel|xproto.CwBorderPixel|xproto.CwEventMask,
		[]uint32{w.scr.WhitePixel, w.scr.BlackPixel, xproto.EventMaskExposure}).Check(); err != nil {
		return 0, fmt.Errorf("x11: create button: %w", err)
	}
	setName(w.c, id, label)
	w.names[id] = label
	w.clickable(id)
	return id, nil
}

// clickable makes win report button presses and releases.
func (w *xWin) clickable(win xproto.Window) {
	xproto.ChangeWindowAttributes(w.c, win, xproto.CwEventMask,
		[]uint32{xproto.EventMaskExposure | xproto.EventMaskButtonPress | xproto.EventMaskButtonRelease | xproto.EventMaskStructureNotify})
}

func (w *xWin) text(win xproto.Window, x, y int, s string) {
	for len(s) > 0 {
		n := min(len(s), 200)
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		chunk := s[:n]
		s = s[n:]
		var chars []xproto.Char2b
		for _, r := range chunk {
			if r > 0xffff {
				r = '?'
			}
			chars = append(chars, xproto.Char2b{Byte1: byte(r >> 8), Byte2: byte(r)})
		}
		xproto.ImageText16(w.c, byte(len(chars)), xproto.Drawable(win), w.gc, int16(x), int16(y+w.ascent), chars)
		x += len(chars) * w.charW
	}
}

// show maps everything and runs the event loop until the connection
// closes: exposures redraw, a release inside a button (or the clickable
// window) reports it on clicked, a WM close reports closed.
func (w *xWin) show() {
	xproto.MapSubwindows(w.c, w.win)
	xproto.MapWindow(w.c, w.win)
	go func() {
		defer close(w.closed)
		for {
			ev, err := w.c.WaitForEvent()
			if ev == nil && err == nil {
				return // connection closed
			}
			switch e := ev.(type) {
			case xproto.ExposeEvent:
				if e.Count != 0 {
					continue
				}
				if e.Window == w.win && w.draw != nil {
					w.draw()
				} else if label, ok := w.names[e.Window]; ok {
					w.text(e.Window, 16, 6, label)
				}
			case xproto.ButtonReleaseEvent:
				if e.Detail == 1 {
					select {
					case w.clicked <- e.Event:
					default:
					}
				}
			case xproto.ClientMessageEvent:
				if w.atomDel != 0 && e.Format == 32 && xproto.Atom(e.Data.Data32[0]) == w.atomDel {
					return
				}
			case xproto.DestroyNotifyEvent:
				if e.Window == w.win {
					return
				}
			}
		}
	}()
}

// latin1 encodes s for WM_NAME; characters outside Latin-1 become '?'.
func latin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return b
}

// wrapText breaks s into lines of at most n characters at spaces (a
// longer word gets its own line, cut at n).
func wrapText(s string, n int) []string {
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			for utf8.RuneCountInString(word) > n {
				if line != "" {
					lines = append(lines, line)
					line = ""
				}
				r := []rune(word)
				lines = append(lines, string(r[:n]))
				word = string(r[n:])
			}
			switch {
			case line == "":
				line = word
			case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= n:
				line += " " + word
			default:
				lines = append(lines, line)
				line = word
			}
		}
		lines = append(lines, line)
	}
	return lines
}
