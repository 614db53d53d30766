package desktop

import (
	"fmt"
	"sync"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// vkKeysyms maps the Windows virtual-key codes the browser sends in KEY
// commands to X keysyms. Letters map to lower case: the shift state comes
// from the separate Shift key events, as on a real keyboard.
var vkKeysyms = func() map[byte]xproto.Keysym {
	m := map[byte]xproto.Keysym{
		0x08: 0xff08, 0x09: 0xff09, 0x0c: 0xff0b, 0x0d: 0xff0d, 0x10: 0xffe1, 0x11: 0xffe3,
		0x12: 0xffe9, 0x13: 0xff13, 0x14: 0xffe5, 0x1b: 0xff1b, 0x20: 0x20, 0x21: 0xff55,
		0x22: 0xff56, 0x23: 0xff57, 0x24: 0xff50, 0x25: 0xff51, 0x26: 0xff52, 0x27: 0xff53,
		0x28: 0xff54, 0x2c: 0xff61, 0x2d: 0xff63, 0x2e: 0xffff, 0x5b: 0xffeb, 0x5c: 0xffec,
		0x5d: 0xff67, 0x6a: 0xffaa, 0x6b: 0xffab, 0x6c: 0xffac, 0x6d: 0xffad, 0x6e: 0xffae,
		0x6f: 0xffaf, 0x90: 0xff7f, 0x91: 0xff14, 0xa0: 0xffe1, 0xa1: 0xffe2, 0xa2: 0xffe3,
		0xa3: 0xffe4, 0xa4: 0xffe9, 0xa5: 0xffea, 0xba: 0x3b, 0xbb: 0x3d, 0xbc: 0x2c,
		0xbd: 0x2d, 0xbe: 0x2e, 0xbf: 0x2f, 0xc0: 0x60, 0xdb: 0x5b, 0xdc: 0x5c, 0xdd: 0x5d,
		0xde: 0x27, 0xe2: 0x3c,
		// Firefox key codes the viewer may pass through unfixed.
		59: 0x3b, 61: 0x3d, 173: 0x2d,
	}
	for c := byte('0'); c <= '9'; c++ {
		m[c] = xproto.Keysym(c)
	}
	for c := byte('A'); c <= 'Z'; c++ {
		m[c] = xproto.Keysym(c + 32)
	}
	for i := byte(0); i < 10; i++ {
		m[0x60+i] = xproto.Keysym(0xffb0 + uint32(i)) // KP_0..KP_9
	}
	for i := byte(0); i < 24; i++ {
		m[0x70+i] = xproto.Keysym(0xffbe + uint32(i)) // F1..F24
	}
	return m
}()

// keysymFor returns the keysym of a character: Latin-1 keysyms equal the
// code point, everything else uses the Unicode keysym range.
func keysymFor(r rune) xproto.Keysym {
	switch {
	case r == '\r' || r == '\n':
		return 0xff0d
	case r == '\b':
		return 0xff08
	case r == '\t':
		return 0xff09
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xff:
		return xproto.Keysym(r)
	}
	return xproto.Keysym(0x01000000 | uint32(r))
}

type keyPos struct {
	code xproto.Keycode
	col  int
}

// keyboard turns keysyms into XTEST key events using the server's core
// keyboard map, reloaded after MappingNotify.
type keyboard struct {
	mu      sync.Mutex
	setup   *xproto.SetupInfo
	per     int
	syms    []xproto.Keysym
	index   map[xproto.Keysym]keyPos
	stale   bool
	spare   []xproto.Keycode // keycodes with no symbols, for remapping
	spareAt int
	remap   map[xproto.Keysym]xproto.Keycode // spare keycodes we changed
	shift   bool
	shiftKC xproto.Keycode
}

func (k *keyboard) init(c *xgb.Conn, setup *xproto.SetupInfo, root xproto.Window) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setup = setup
	k.remap = map[xproto.Keysym]xproto.Keycode{}
	return k.load(c)
}

func (k *keyboard) invalidate() {
	k.mu.Lock()
	k.stale = true
	k.mu.Unlock()
}

func (k *keyboard) load(c *xgb.Conn) error {
	first := k.setup.MinKeycode
	n := int(k.setup.MaxKeycode) - int(first) + 1
	r, err := xproto.GetKeyboardMapping(c, first, byte(n)).Reply()
	if err != nil {
		return fmt.Errorf("x11 keyboard mapping: %w", err)
	}
	k.per = int(r.KeysymsPerKeycode)
	k.syms = r.Keysyms
	k.index = map[xproto.Keysym]keyPos{}
	k.spare = k.spare[:0]
	for i := 0; i < n; i++ {
		empty := true
		for col := 0; col < k.per; col++ {
			s := k.syms[i*k.per+col]
			if s == 0 {
				continue
			}
			empty = false
			// Only the first two columns are the plain and shifted levels of
			// the core map; prefer the lowest.
			if col > 1 {
				continue
			}
			if p, ok := k.index[s]; !ok || col < p.col {
				k.index[s] = keyPos{xproto.Keycode(int(first) + i), col}
			}
		}
		code := xproto.Keycode(int(first) + i)
		if empty || k.isRemapped(code) {
			k.spare = append(k.spare, code)
		}
	}
	k.shiftKC = k.index[0xffe1].code
	k.stale = false
	return nil
}

func (k *keyboard) isRemapped(code xproto.Keycode) bool {
	for _, c := range k.remap {
		if c == code {
			return true
		}
	}
	return false
}

func (k *keyboard) ensure(c *xgb.Conn) {
	if k.stale || k.index == nil {
		if k.setup != nil {
			k.load(c)
		}
	}
}

func (k *keyboard) key(s *xScreen, vk byte, down bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ensure(s.c)
	sym, ok := vkKeysyms[vk]
	if !ok {
		return nil
	}
	p, ok := k.index[sym]
	if !ok {
		return nil
	}
	if sym == 0xffe1 || sym == 0xffe2 {
		k.shift = down
	}
	t := byte(xproto.KeyRelease)
	if down {
		t = xproto.KeyPress
	}
	return s.fake(t, byte(p.code), 0, 0)
}

// unicode types one character. Like the reference Linux agent it acts on
// key-down only and sends press and release itself; characters the keymap
// lacks get a spare keycode remapped to them.
func (k *keyboard) unicode(s *xScreen, ch uint16, down bool) error {
	if !down || (ch >= 0xd800 && ch <= 0xdfff) {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ensure(s.c)
	sym := keysymFor(rune(ch))
	p, ok := k.index[sym]
	needShift := ok && p.col == 1 && !k.shift
	unshift := ok && p.col == 0 && k.shift && sym != keysymUpper(sym)
	if !ok || unshift {
		code, err := k.spareFor(s.c, sym)
		if err != nil {
			return err
		}
		p, needShift = keyPos{code: code}, false
	}
	if needShift && k.shiftKC != 0 {
		s.fake(xproto.KeyPress, byte(k.shiftKC), 0, 0)
	}
	s.fake(xproto.KeyPress, byte(p.code), 0, 0)
	s.fake(xproto.KeyRelease, byte(p.code), 0, 0)
	if needShift && k.shiftKC != 0 {
		s.fake(xproto.KeyRelease, byte(k.shiftKC), 0, 0)
	}
	return nil
}

// keysymUpper reports the shifted form for ASCII letters, enough to know
// whether Shift would change a level-0 symbol.
func keysymUpper(s xproto.Keysym) xproto.Keysym {
	if s >= 'a' && s <= 'z' {
		return s - 32
	}
	return s
}

// spareFor maps sym onto a spare keycode (all levels), reusing one already
// mapped to it. Mappings stay until the session ends: clients translate the
// event with the map they see when it arrives, so restoring right after the
// key press would race with them.
func (k *keyboard) spareFor(c *xgb.Conn, sym xproto.Keysym) (xproto.Keycode, error) {
	if code, ok := k.remap[sym]; ok {
		return code, nil
	}
	if len(k.spare) == 0 {
		return 0, fmt.Errorf("x11: no spare keycode for keysym %#x", sym)
	}
	code := k.spare[k.spareAt%len(k.spare)]
	k.spareAt++
	for s, kc := range k.remap {
		if kc == code {
			delete(k.remap, s)
		}
	}
	syms := make([]xproto.Keysym, k.per)
	for i := range syms {
		syms[i] = sym
	}
	if err := xproto.ChangeKeyboardMappingChecked(c, 1, code, byte(k.per), syms).Check(); err != nil {
		return 0, fmt.Errorf("x11 remap keycode %d: %w", code, err)
	}
	k.remap[sym] = code
	return code, nil
}

// restore clears the spare keycodes this session remapped.
func (k *keyboard) restore(c *xgb.Conn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, code := range k.remap {
		xproto.ChangeKeyboardMapping(c, 1, code, byte(k.per), make([]xproto.Keysym, k.per))
	}
	k.remap = map[xproto.Keysym]xproto.Keycode{}
}
