package desktop

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// macOS through CoreGraphics, loaded with purego so CGO_ENABLED=0 cross
// builds get a working desktop (kbinani/screenshot needs cgo on macOS and
// reports no displays without it). Written against the documented C API and
// cross-compiled here; it has not been run on a Mac. Capture and input need
// the Screen Recording and Accessibility permissions for the agent binary.

type cgPoint struct{ X, Y float64 }
type cgSize struct{ W, H float64 }
type cgRect struct {
	Origin cgPoint
	Size   cgSize
}

var cg struct {
	once sync.Once
	err  error

	getActiveDisplayList    func(max uint32, ids *uint32, count *uint32) int32
	displayBounds           func(id uint32) cgRect
	mainDisplayID           func() uint32
	displayCreateImageRect  func(id uint32, r cgRect) uintptr
	imageGetWidth           func(img uintptr) uintptr
	imageGetHeight          func(img uintptr) uintptr
	imageGetBytesPerRow     func(img uintptr) uintptr
	imageGetBitsPerPixel    func(img uintptr) uintptr
	imageGetDataProvider    func(img uintptr) uintptr
	dataProviderCopyData    func(p uintptr) uintptr
	dataGetBytePtr          func(d uintptr) unsafe.Pointer
	dataGetLength           func(d uintptr) int
	release                 func(ref uintptr)
	eventCreateMouse        func(src uintptr, typ uint32, p cgPoint, button uint32) uintptr
	eventCreateKeyboard     func(src uintptr, key uint16, down bool) uintptr
	eventSetUnicode         func(ev uintptr, n uintptr, s *uint16)
	eventCreateScroll2      func(src uintptr, units uint32, count uint32, w1, w2, w3 int32) uintptr
	eventPost               func(tap uint32, ev uintptr)
	eventSourceFlagsState   func(state int32) uint64
	eventSetIntegerValueFld func(ev uintptr, field uint32, v int64)
}

func loadCG() error {
	cg.once.Do(func() {
		defer func() {
			if r := recover(); r != nil { // RegisterLibFunc panics on a missing symbol
				cg.err = fmt.Errorf("coregraphics: %v", r)
			}
		}()
		g, err := purego.Dlopen("/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			cg.err = fmt.Errorf("load CoreGraphics: %w", err)
			return
		}
		f, err := purego.Dlopen("/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			cg.err = fmt.Errorf("load CoreFoundation: %w", err)
			return
		}
		purego.RegisterLibFunc(&cg.getActiveDisplayList, g, "CGGetActiveDisplayList")
		purego.RegisterLibFunc(&cg.displayBounds, g, "CGDisplayBounds")
		purego.RegisterLibFunc(&cg.mainDisplayID, g, "CGMainDisplayID")
		purego.RegisterLibFunc(&cg.displayCreateImageRect, g, "CGDisplayCreateImageForRect")
		purego.RegisterLibFunc(&cg.imageGetWidth, g, "CGImageGetWidth")
		purego.RegisterLibFunc(&cg.imageGetHeight, g, "CGImageGetHeight")
		purego.RegisterLibFunc(&cg.imageGetBytesPerRow, g, "CGImageGetBytesPerRow")
		purego.RegisterLibFunc(&cg.imageGetBitsPerPixel, g, "CGImageGetBitsPerPixel")
		purego.RegisterLibFunc(&cg.imageGetDataProvider, g, "CGImageGetDataProvider")
		purego.RegisterLibFunc(&cg.dataProviderCopyData, g, "CGDataProviderCopyData")
		purego.RegisterLibFunc(&cg.eventCreateMouse, g, "CGEventCreateMouseEvent")
		purego.RegisterLibFunc(&cg.eventCreateKeyboard, g, "CGEventCreateKeyboardEvent")
		purego.RegisterLibFunc(&cg.eventSetUnicode, g, "CGEventKeyboardSetUnicodeString")
		// The non-variadic variant: variadic C calls are not portable
		// through purego on arm64.
		purego.RegisterLibFunc(&cg.eventCreateScroll2, g, "CGEventCreateScrollWheelEvent2")
		purego.RegisterLibFunc(&cg.eventPost, g, "CGEventPost")
		purego.RegisterLibFunc(&cg.eventSourceFlagsState, g, "CGEventSourceFlagsState")
		purego.RegisterLibFunc(&cg.eventSetIntegerValueFld, g, "CGEventSetIntegerValueField")
		purego.RegisterLibFunc(&cg.dataGetBytePtr, f, "CFDataGetBytePtr")
		purego.RegisterLibFunc(&cg.dataGetLength, f, "CFDataGetLength")
		purego.RegisterLibFunc(&cg.release, f, "CFRelease")
	})
	return cg.err
}

// cgScreen captures displays in global coordinates (points) and injects
// CGEvents at the HID level.
type cgScreen struct {
	frm      frame
	mu       sync.Mutex
	px, py   float64 // last pointer position we set
	buttons  [3]bool
	keyFlags byte
}

func openScreen(opts Options, log *slog.Logger) (screen, string, error) {
	if err := loadCG(); err != nil {
		return nil, "", fmt.Errorf("%w: %w", errNoDisplay, err)
	}
	s := &cgScreen{}
	if m, err := s.monitors(); err != nil || len(m) == 0 {
		return nil, "", errNoDisplay
	}
	return s, "coregraphics", nil
}

func (s *cgScreen) displays() []uint32 {
	ids := make([]uint32, 16)
	var n uint32
	if cg.getActiveDisplayList(uint32(len(ids)), &ids[0], &n) != 0 {
		return nil
	}
	return ids[:n]
}

func (s *cgScreen) monitors() ([]monitor, error) {
	main := cg.mainDisplayID()
	var out []monitor
	for i, id := range s.displays() {
		b := cg.displayBounds(id)
		out = append(out, monitor{ID: uint16(i + 1), X: int(b.Origin.X), Y: int(b.Origin.Y),
			W: int(b.Size.W), H: int(b.Size.H), Primary: id == main})
	}
	if len(out) == 0 {
		return nil, errNoDisplay
	}
	return out, nil
}

// capture pastes every display that intersects the rectangle into one
// BGRX frame, resampling Retina (2x) images down to points so coordinates
// stay those of the viewer's mouse.
func (s *cgScreen) capture(x, y, w, h int) (*frame, error) {
	need := w * h * 4
	if cap(s.frm.pix) < need {
		s.frm.pix = make([]byte, need)
	}
	s.frm = frame{pix: s.frm.pix[:need], stride: w * 4, w: w, h: h}
	clear(s.frm.pix)
	got := false
	for _, id := range s.displays() {
		b := cg.displayBounds(id)
		dx0, dy0 := int(b.Origin.X), int(b.Origin.Y)
		ix0, iy0 := max(x, dx0), max(y, dy0)
		ix1, iy1 := min(x+w, dx0+int(b.Size.W)), min(y+h, dy0+int(b.Size.H))
		if ix1 <= ix0 || iy1 <= iy0 {
			continue
		}
		r := cgRect{cgPoint{float64(ix0 - dx0), float64(iy0 - dy0)}, cgSize{float64(ix1 - ix0), float64(iy1 - iy0)}}
		if err := s.paste(id, r, ix0-x, iy0-y, ix1-ix0, iy1-iy0); err != nil {
			return nil, err
		}
		got = true
	}
	if !got {
		return nil, errors.New("coregraphics: no display in the capture rectangle")
	}
	return &s.frm, nil
}

func (s *cgScreen) paste(id uint32, r cgRect, ox, oy, w, h int) error {
	img := cg.displayCreateImageRect(id, r)
	if img == 0 {
		return errors.New("coregraphics: CGDisplayCreateImageForRect failed (screen recording permission?)")
	}
	defer cg.release(img)
	if cg.imageGetBitsPerPixel(img) != 32 {
		return fmt.Errorf("coregraphics: %d bits per pixel", cg.imageGetBitsPerPixel(img))
	}
	iw, ih, stride := int(cg.imageGetWidth(img)), int(cg.imageGetHeight(img)), int(cg.imageGetBytesPerRow(img))
	data := cg.dataProviderCopyData(cg.imageGetDataProvider(img))
	if data == 0 {
		return errors.New("coregraphics: no image data")
	}
	defer cg.release(data)
	n := cg.dataGetLength(data)
	if n < (ih-1)*stride+iw*4 {
		return errors.New("coregraphics: short image data")
	}
	src := unsafe.Slice((*byte)(cg.dataGetBytePtr(data)), n)
	// Display images are 32-bit little-endian with alpha first, i.e. BGRA
	// in memory: the same byte order as our frames.
	for yy := 0; yy < h; yy++ {
		sy := yy * ih / h
		drow := s.frm.pix[(oy+yy)*s.frm.stride+ox*4:]
		if iw == w {
			copy(drow[:w*4], src[sy*stride:sy*stride+w*4])
			continue
		}
		for xx := 0; xx < w; xx++ {
			sx := xx * iw / w
			copy(drow[xx*4:xx*4+4], src[sy*stride+sx*4:])
		}
	}
	return nil
}

func (s *cgScreen) damage() (x, y, w, h int, known bool) { return 0, 0, 0, 0, false }
func (s *cgScreen) cursor() (byte, bool)                 { return 0, false }
func (s *cgScreen) close() error                         { return nil }

func (s *cgScreen) keyState() byte {
	const alphaShift = 0x00010000 // kCGEventFlagMaskAlphaShift
	if cg.eventSourceFlagsState(0)&alphaShift != 0 {
		return 4
	}
	return 0
}

// CGEvent types and the HID tap (CGEventTypes.h).
const (
	cgLeftDown, cgLeftUp, cgRightDown, cgRightUp, cgMoved        = 1, 2, 3, 4, 5
	cgLeftDragged, cgRightDragged                                = 6, 7
	cgOtherDown, cgOtherUp, cgOtherDragged                       = 25, 26, 27
	cgHIDTap                                                     = 0
	cgScrollLine                                                 = 1
	cgMouseEventButtonNumber                              uint32 = 3
)

func (s *cgScreen) post(ev uintptr) error {
	if ev == 0 {
		return errors.New("coregraphics: could not create event")
	}
	cg.eventPost(cgHIDTap, ev)
	cg.release(ev)
	return nil
}

func (s *cgScreen) mouseMove(x, y int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.px, s.py = float64(x), float64(y)
	// While a button is held, macOS expects drag events, not moves.
	typ, btn := uint32(cgMoved), uint32(0)
	switch {
	case s.buttons[0]:
		typ = cgLeftDragged
	case s.buttons[2]:
		typ, btn = cgRightDragged, 1
	case s.buttons[1]:
		typ, btn = cgOtherDragged, 2
	}
	return s.post(cg.eventCreateMouse(0, typ, cgPoint{s.px, s.py}, btn))
}

func (s *cgScreen) mouseButton(b int, down bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var typ, btn uint32
	switch b {
	case 1:
		typ, btn = cgLeftUp, 0
		if down {
			typ = cgLeftDown
		}
	case 3:
		typ, btn = cgRightUp, 1
		if down {
			typ = cgRightDown
		}
	case 2:
		typ, btn = cgOtherUp, 2
		if down {
			typ = cgOtherDown
		}
	default:
		return nil
	}
	s.buttons[b-1] = down
	ev := cg.eventCreateMouse(0, typ, cgPoint{s.px, s.py}, btn)
	if ev != 0 && b == 2 {
		cg.eventSetIntegerValueFld(ev, cgMouseEventButtonNumber, 2)
	}
	return s.post(ev)
}

func (s *cgScreen) wheel(delta int) error {
	d := int32(1)
	if delta < 0 {
		d = -1
	}
	return s.post(cg.eventCreateScroll2(0, cgScrollLine, 1, d*3, 0, 0))
}

func (s *cgScreen) key(vk byte, down, _ bool) error {
	code, ok := macKeycodes[vk]
	if !ok {
		return nil
	}
	return s.post(cg.eventCreateKeyboard(0, code, down))
}

func (s *cgScreen) unicode(ch uint16, down bool) error {
	ev := cg.eventCreateKeyboard(0, 0, down)
	if ev != 0 {
		c := ch
		cg.eventSetUnicode(ev, 1, &c)
	}
	return s.post(ev)
}

// macKeycodes maps Windows virtual-key codes to macOS virtual keycodes
// (kVK_* in HIToolbox Events.h; ANSI layout positions).
var macKeycodes = map[byte]uint16{
	'A': 0x00, 'S': 0x01, 'D': 0x02, 'F': 0x03, 'H': 0x04, 'G': 0x05, 'Z': 0x06, 'X': 0x07,
	'C': 0x08, 'V': 0x09, 'B': 0x0b, 'Q': 0x0c, 'W': 0x0d, 'E': 0x0e, 'R': 0x0f, 'Y': 0x10,
	'T': 0x11, '1': 0x12, '2': 0x13, '3': 0x14, '4': 0x15, '6': 0x16, '5': 0x17, '9': 0x19,
	'7': 0x1a, '8': 0x1c, '0': 0x1d, 'O': 0x1f, 'U': 0x20, 'I': 0x22, 'P': 0x23, 'L': 0x25,
	'J': 0x26, 'K': 0x28, 'N': 0x2d, 'M': 0x2e,
	0xbb: 0x18, 0xbd: 0x1b, 0xdd: 0x1e, 0xdb: 0x21, 0xde: 0x27, 0xba: 0x29, 0xdc: 0x2a,
	0xbc: 0x2b, 0xbf: 0x2c, 0xbe: 0x2f, 0xc0: 0x32,
	0x0d: 0x24, 0x09: 0x30, 0x20: 0x31, 0x08: 0x33, 0x1b: 0x35,
	0x5b: 0x37, 0x5c: 0x36, 0x10: 0x38, 0xa0: 0x38, 0xa1: 0x3c, 0x14: 0x39,
	0x12: 0x3a, 0xa4: 0x3a, 0xa5: 0x3d, 0x11: 0x3b, 0xa2: 0x3b, 0xa3: 0x3e,
	0x6e: 0x41, 0x6a: 0x43, 0x6b: 0x45, 0x90: 0x47, 0x6f: 0x4b, 0x6d: 0x4e,
	0x60: 0x52, 0x61: 0x53, 0x62: 0x54, 0x63: 0x55, 0x64: 0x56, 0x65: 0x57, 0x66: 0x58,
	0x67: 0x59, 0x68: 0x5b, 0x69: 0x5c,
	0x70: 0x7a, 0x71: 0x78, 0x72: 0x63, 0x73: 0x76, 0x74: 0x60, 0x75: 0x61, 0x76: 0x62,
	0x77: 0x64, 0x78: 0x65, 0x79: 0x6d, 0x7a: 0x67, 0x7b: 0x6f,
	0x2d: 0x72, 0x24: 0x73, 0x21: 0x74, 0x2e: 0x75, 0x23: 0x77, 0x22: 0x79,
	0x25: 0x7b, 0x27: 0x7c, 0x28: 0x7d, 0x26: 0x7e,
}
