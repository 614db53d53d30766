package desktop

import "errors"

// screen is one platform's desktop: monitors, capture and input. Serve owns
// it from one goroutine for capture, while input may arrive from the reader
// goroutine, so implementations make the input methods safe to call
// concurrently with capture.
type screen interface {
	// monitors lists the selectable displays, in capture coordinates.
	monitors() ([]monitor, error)
	// capture grabs the rectangle (capture coordinates) as BGRX. The frame
	// may alias internal buffers that stay valid until the next capture.
	capture(x, y, w, h int) (*frame, error)
	// damage returns the bounding box (screen coordinates) of what was
	// drawn since the previous call, w == 0 when nothing was, and known
	// false when the platform cannot tell. X DAMAGE makes a static screen
	// nearly free and a small change cost only its own area.
	damage() (x, y, w, h int, known bool)
	// cursor returns the cursor shape index for MOUSE_CURSOR (sessions.md
	// §4.4) and whether it changed since the last call.
	cursor() (shape byte, changed bool)
	// keyState returns the lock-key flags for KEYSTATE.
	keyState() byte

	key(vk byte, down, extended bool) error
	unicode(ch uint16, down bool) error
	mouseMove(x, y int) error
	mouseButton(button int, down bool) error // 1 left, 2 middle, 3 right
	wheel(delta int) error                   // >0 up
	close() error
}

// platformInput is the per-OS input and cursor half of a screen.
type platformInput interface {
	key(vk byte, down, extended bool) error
	unicode(ch uint16, down bool) error
	mouseMove(x, y int) error
	mouseButton(button int, down bool) error
	wheel(delta int) error
	cursor() (byte, bool)
	keyState() byte
}

var errInputUnsupported = errors.New("desktop input not supported on this platform build")

// errNoDisplay means no desktop could be found (yet); Serve keeps looking.
var errNoDisplay = errors.New("no display found")
