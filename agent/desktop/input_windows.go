package desktop

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Windows input goes through SendInput, the same API the C agent uses, so
// applications see it as ordinary hardware input. UIPI still blocks input
// to elevated windows unless the agent itself runs elevated in the session.

var (
	user32           = windows.NewLazySystemDLL("user32.dll")
	procSendInput    = user32.NewProc("SendInput")
	procSetCursorPos = user32.NewProc("SetCursorPos")
	procGetCursorInf = user32.NewProc("GetCursorInfo")
	procLoadCursor   = user32.NewProc("LoadCursorW")
	procGetKeyState  = user32.NewProc("GetKeyState")
)

const (
	inputMouse    = 0
	inputKeyboard = 1

	keyExtended = 0x0001
	keyUp       = 0x0002
	keyUnicode  = 0x0004

	mouseLeftDown   = 0x0002
	mouseLeftUp     = 0x0004
	mouseRightDown  = 0x0008
	mouseRightUp    = 0x0010
	mouseMiddleDown = 0x0020
	mouseMiddleUp   = 0x0040
	mouseWheel      = 0x0800
)

// mouseInput and keybdInput mirror MOUSEINPUT and KEYBDINPUT; Go's
// alignment rules give INPUT's layout on both 32- and 64-bit Windows
// (keybdInput is padded to the size of the union).
type mouseInput struct {
	dx, dy    int32
	mouseData uint32
	flags     uint32
	time      uint32
	extra     uintptr
}

type keybdInput struct {
	vk, scan uint16
	flags    uint32
	time     uint32
	extra    uintptr
	_        [8]byte
}

type mouseINPUT struct {
	typ uint32
	mi  mouseInput
}

type keybdINPUT struct {
	typ uint32
	ki  keybdInput
}

// Both forms must have the size SendInput expects for INPUT.
var _ [unsafe.Sizeof(mouseINPUT{}) - unsafe.Sizeof(keybdINPUT{})]struct{}
var _ [unsafe.Sizeof(keybdINPUT{}) - unsafe.Sizeof(mouseINPUT{})]struct{}

type winInput struct {
	cursors map[uintptr]byte
	last    uintptr
	shape   byte
}

func newPlatformInput() platformInput {
	w := &winInput{cursors: map[uintptr]byte{}}
	// Standard cursor handles are shared system resources, so comparing
	// the current cursor handle against them identifies the shape.
	for id, shape := range map[uintptr]byte{
		32512: 0, 32513: 5, 32514: 13, 32515: 2, 32516: 12, 32642: 10, 32643: 8,
		32644: 11, 32645: 9, 32646: 7, 32648: 15, 32649: 3, 32650: 1, 32651: 4,
	} {
		if h, _, _ := procLoadCursor.Call(0, id); h != 0 {
			w.cursors[h] = shape
		}
	}
	return w
}

func sendInput(p unsafe.Pointer, size uintptr) error {
	n, _, err := procSendInput.Call(1, uintptr(p), size)
	if n != 1 {
		return fmt.Errorf("SendInput: %w", err)
	}
	return nil
}

func (w *winInput) sendKey(ki keybdInput) error {
	in := keybdINPUT{typ: inputKeyboard, ki: ki}
	return sendInput(unsafe.Pointer(&in), unsafe.Sizeof(in))
}

func (w *winInput) sendMouse(mi mouseInput) error {
	in := mouseINPUT{typ: inputMouse, mi: mi}
	return sendInput(unsafe.Pointer(&in), unsafe.Sizeof(in))
}

func (w *winInput) key(vk byte, down, extended bool) error {
	var f uint32
	if !down {
		f |= keyUp
	}
	if extended {
		f |= keyExtended
	}
	return w.sendKey(keybdInput{vk: uint16(vk), flags: f})
}

func (w *winInput) unicode(ch uint16, down bool) error {
	f := uint32(keyUnicode)
	if !down {
		f |= keyUp
	}
	return w.sendKey(keybdInput{scan: ch, flags: f})
}

func (w *winInput) mouseMove(x, y int) error {
	if r, _, err := procSetCursorPos.Call(uintptr(x), uintptr(y)); r == 0 {
		return fmt.Errorf("SetCursorPos: %w", err)
	}
	return nil
}

func (w *winInput) mouseButton(b int, down bool) error {
	flags := map[[2]int]uint32{
		{1, 1}: mouseLeftDown, {1, 0}: mouseLeftUp, {3, 1}: mouseRightDown,
		{3, 0}: mouseRightUp, {2, 1}: mouseMiddleDown, {2, 0}: mouseMiddleUp,
	}
	d := 0
	if down {
		d = 1
	}
	f, ok := flags[[2]int{b, d}]
	if !ok {
		return nil
	}
	return w.sendMouse(mouseInput{flags: f})
}

func (w *winInput) wheel(delta int) error {
	// One notch (WHEEL_DELTA) per message whatever the browser's scale,
	// like the reference agents.
	d := int32(120)
	if delta < 0 {
		d = -120
	}
	return w.sendMouse(mouseInput{flags: mouseWheel, mouseData: uint32(d)})
}

func (w *winInput) cursor() (byte, bool) {
	var ci struct {
		size    uint32
		flags   uint32
		hCursor uintptr
		x, y    int32
	}
	ci.size = uint32(unsafe.Sizeof(ci))
	if r, _, _ := procGetCursorInf.Call(uintptr(unsafe.Pointer(&ci))); r == 0 || ci.hCursor == w.last {
		return w.shape, false
	}
	w.last = ci.hCursor
	shape := w.cursors[ci.hCursor]
	if ci.flags&1 == 0 { // CURSOR_SHOWING clear: hidden
		shape = 14
	}
	ch := shape != w.shape
	w.shape = shape
	return shape, ch
}

func (w *winInput) keyState() byte {
	st := func(vk uintptr) bool { r, _, _ := procGetKeyState.Call(vk); return r&1 != 0 }
	var f byte
	if st(0x90) {
		f |= 1
	}
	if st(0x91) {
		f |= 2
	}
	if st(0x14) {
		f |= 4
	}
	return f
}
