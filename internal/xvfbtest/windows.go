//go:build linux

package xvfbtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// Window is a mapped window found on the display, in root coordinates.
type Window struct {
	ID         xproto.Window
	X, Y, W, H int
}

// Center is the window's middle, in root coordinates.
func (w Window) Center() (int, int) { return w.X + w.W/2, w.Y + w.H/2 }

// FindWindow returns the first mapped window (depth first from the root)
// whose WM_NAME is name.
func FindWindow(c *xgb.Conn, name string) (Window, bool) {
	return findWindow(c, name, nil)
}

// findWindow is FindWindow for windows that also satisfy keep (nil: any).
func findWindow(c *xgb.Conn, name string, keep func(Window) bool) (Window, bool) {
	root := xproto.Setup(c).DefaultScreen(c).Root
	var walk func(xproto.Window) (Window, bool)
	walk = func(win xproto.Window) (Window, bool) {
		tree, err := xproto.QueryTree(c, win).Reply()
		if err != nil {
			return Window{}, false
		}
		for _, ch := range tree.Children {
			if a, err := xproto.GetWindowAttributes(c, ch).Reply(); err != nil || a.MapState != xproto.MapStateViewable {
				continue
			}
			p, err := xproto.GetProperty(c, false, ch, xproto.AtomWmName, xproto.GetPropertyTypeAny, 0, 1024).Reply()
			if err == nil && string(p.Value) == name {
				g, err1 := xproto.GetGeometry(c, xproto.Drawable(ch)).Reply()
				tr, err2 := xproto.TranslateCoordinates(c, ch, root, 0, 0).Reply()
				if err1 == nil && err2 == nil {
					w := Window{ID: ch, X: int(tr.DstX), Y: int(tr.DstY), W: int(g.Width), H: int(g.Height)}
					if keep == nil || keep(w) {
						return w, true
					}
				}
			}
			if w, ok := walk(ch); ok {
				return w, true
			}
		}
		return Window{}, false
	}
	return walk(root)
}

// WaitWindowText waits up to timeout for a window named name whose
// property prop (e.g. _MESHAGENT_TEXT) contains text: the agent's prompt
// and its session notification share a title, and an earlier
// notification may still be on the screen.
func WaitWindowText(c *xgb.Conn, name, prop, text string, timeout time.Duration) (Window, error) {
	keep := func(w Window) bool {
		v, err := TextProperty(c, w.ID, prop)
		return err == nil && strings.Contains(v, text)
	}
	deadline := time.Now().Add(timeout)
	for {
		if w, ok := findWindow(c, name, keep); ok {
			return w, nil
		}
		if time.Now().After(deadline) {
			return Window{}, fmt.Errorf("no window named %q with %s containing %q appeared within %v", name, prop, text, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitWindow waits up to timeout for FindWindow to find name.
func WaitWindow(c *xgb.Conn, name string, timeout time.Duration) (Window, error) {
	deadline := time.Now().Add(timeout)
	for {
		if w, ok := FindWindow(c, name); ok {
			return w, nil
		}
		if time.Now().After(deadline) {
			return Window{}, fmt.Errorf("no window named %q appeared within %v", name, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TextProperty reads a window's string property (e.g. _MESHAGENT_TEXT).
func TextProperty(c *xgb.Conn, w xproto.Window, prop string) (string, error) {
	a, err := xproto.InternAtom(c, true, uint16(len(prop)), prop).Reply()
	if err != nil {
		return "", err
	}
	p, err := xproto.GetProperty(c, false, w, a.Atom, xproto.GetPropertyTypeAny, 0, 1<<16).Reply()
	if err != nil {
		return "", err
	}
	return string(p.Value), nil
}

// Click moves the pointer to (x, y) and clicks button 1, through XTEST:
// what a person's click does, as the server sees it.
func Click(c *xgb.Conn, x, y int) error {
	if err := xtest.Init(c); err != nil {
		return fmt.Errorf("xtest: %w", err)
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	for _, ev := range []struct {
		typ    byte
		detail byte
	}{{xproto.MotionNotify, 0}, {xproto.ButtonPress, 1}, {xproto.ButtonRelease, 1}} {
		if err := xtest.FakeInputChecked(c, ev.typ, ev.detail, 0, root, int16(x), int16(y), 0).Check(); err != nil {
			return fmt.Errorf("xtest fake input: %w", err)
		}
	}
	return nil
}
