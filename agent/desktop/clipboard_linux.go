package desktop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// The web UI moves clipboard text over the agent's control channel
// (getclip/setclip, sessions.md §4.8), not over the KVM stream, so these are
// separate entry points for whoever handles those messages. They find the
// display the same way Serve does.

// ReadClipboard returns the desktop's CLIPBOARD text (UTF-8): from X, from
// a wlroots compositor through data-control, or from GNOME through
// Mutter's RemoteDesktop clipboard, in openScreen's order.
func ReadClipboard(ctx context.Context, opts Options) (string, error) {
	var errs []error
	for _, read := range clipOrder(opts, readXClipboard, readWLClipboard, readGNOMEClipboard) {
		s, err := read(ctx, opts)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// WriteClipboard makes text the desktop's CLIPBOARD (and PRIMARY on X)
// content, on X, a wlroots compositor or GNOME, in openScreen's order.
func WriteClipboard(ctx context.Context, opts Options, text string) error {
	var errs []error
	for _, write := range clipOrder(opts, writeXClipboard, writeWLClipboard, writeGNOMEClipboard) {
		err := write(ctx, opts, text)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// clipOrder puts the Wayland ways (wlroots, then GNOME) first when
// openScreen would.
func clipOrder[F any](opts Options, x, wl, gnome F) []F {
	if waylandFirst(opts) {
		return []F{wl, gnome, x}
	}
	return []F{x, wl, gnome}
}

func readXClipboard(ctx context.Context, opts Options) (string, error) {
	c, err := clipConn(opts)
	if err != nil {
		return "", err
	}
	defer c.Close()
	win, at, err := clipWindow(c)
	if err != nil {
		return "", err
	}
	prop := at["MESHGO_CLIP"]
	for _, target := range []xproto.Atom{at["UTF8_STRING"], xproto.AtomString} {
		xproto.ConvertSelection(c, win, at["CLIPBOARD"], target, prop, xproto.TimeCurrentTime)
		ev, err := waitX(ctx, c, func(e xgb.Event) bool { _, ok := e.(xproto.SelectionNotifyEvent); return ok })
		if err != nil {
			return "", err
		}
		if ev.(xproto.SelectionNotifyEvent).Property == xproto.AtomNone {
			continue // owner cannot give this target (or there is no owner)
		}
		r, err := xproto.GetProperty(c, true, win, prop, xproto.GetPropertyTypeAny, 0, 1<<24).Reply()
		if err != nil {
			return "", fmt.Errorf("clipboard property: %w", err)
		}
		if r.Type == at["INCR"] {
			return "", errors.New("clipboard: incremental transfers are not supported")
		}
		return string(r.Value), nil
	}
	return "", nil
}

// clipOwner keeps the selection after WriteClipboard returns: X has no
// clipboard storage, the owner must answer every paste until another
// client takes the selection.
var clipOwner struct {
	mu   sync.Mutex
	stop func()
}

func writeXClipboard(ctx context.Context, opts Options, text string) error {
	c, err := clipConn(opts)
	if err != nil {
		return err
	}
	win, at, err := clipWindow(c)
	if err != nil {
		c.Close()
		return err
	}
	for _, sel := range []xproto.Atom{at["CLIPBOARD"], xproto.AtomPrimary} {
		xproto.SetSelectionOwner(c, win, sel, xproto.TimeCurrentTime)
	}
	r, err := xproto.GetSelectionOwner(c, at["CLIPBOARD"]).Reply()
	if err != nil || r.Owner != win {
		c.Close()
		return fmt.Errorf("clipboard: could not own the selection: %v", err)
	}
	clipOwner.mu.Lock()
	if clipOwner.stop != nil {
		clipOwner.stop()
	}
	var once sync.Once
	clipOwner.stop = func() { once.Do(c.Close) }
	stop := clipOwner.stop
	clipOwner.mu.Unlock()
	go serveSelection(c, win, at, []byte(text), stop)
	return nil
}

// serveSelection answers paste requests until the selection is taken.
func serveSelection(c *xgb.Conn, win xproto.Window, at map[string]xproto.Atom, data []byte, stop func()) {
	defer stop()
	owned := 2
	for {
		ev, err := c.WaitForEvent()
		if ev == nil && err == nil {
			return
		}
		switch e := ev.(type) {
		case xproto.SelectionClearEvent:
			if owned--; owned == 0 {
				return
			}
		case xproto.SelectionRequestEvent:
			prop := e.Property
			if prop == xproto.AtomNone {
				prop = e.Target // obsolete clients
			}
			switch e.Target {
			case at["TARGETS"]:
				targets := []xproto.Atom{at["TARGETS"], at["UTF8_STRING"], xproto.AtomString, at["TEXT"]}
				buf := make([]byte, 4*len(targets))
				for i, a := range targets {
					xgb.Put32(buf[4*i:], uint32(a))
				}
				xproto.ChangeProperty(c, xproto.PropModeReplace, e.Requestor, prop, xproto.AtomAtom, 32, uint32(len(targets)), buf)
			case at["UTF8_STRING"], xproto.AtomString, at["TEXT"]:
				typ := e.Target
				if typ == at["TEXT"] {
					typ = at["UTF8_STRING"]
				}
				xproto.ChangeProperty(c, xproto.PropModeReplace, e.Requestor, prop, typ, 8, uint32(len(data)), data)
			default:
				prop = xproto.AtomNone
			}
			n := xproto.SelectionNotifyEvent{Time: e.Time, Requestor: e.Requestor, Selection: e.Selection, Target: e.Target, Property: prop}
			xproto.SendEvent(c, false, e.Requestor, 0, string(n.Bytes()))
		}
	}
}

func clipConn(opts Options) (*xgb.Conn, error) {
	var errs []error
	for _, t := range discoverX(opts) {
		c, err := connectX(t)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("clipboard: %w", errNoDisplay)
	}
	return nil, fmt.Errorf("clipboard: %w: %w", errNoDisplay, errors.Join(errs...))
}

// clipWindow creates the invisible window that owns or receives the
// selection, and interns the atoms the transfer needs.
func clipWindow(c *xgb.Conn) (xproto.Window, map[string]xproto.Atom, error) {
	scr := xproto.Setup(c).DefaultScreen(c)
	id, err := c.NewId()
	if err != nil {
		return 0, nil, fmt.Errorf("clipboard window: %w", err)
	}
	win := xproto.Window(id)
	if err := xproto.CreateWindowChecked(c, 0, win, scr.Root, -10, -10, 1, 1, 0, xproto.WindowClassInputOnly,
		scr.RootVisual, xproto.CwEventMask, []uint32{xproto.EventMaskPropertyChange}).Check(); err != nil {
		return 0, nil, fmt.Errorf("clipboard window: %w", err)
	}
	at := map[string]xproto.Atom{}
	for _, n := range []string{"CLIPBOARD", "UTF8_STRING", "TARGETS", "TEXT", "INCR", "MESHGO_CLIP"} {
		r, err := xproto.InternAtom(c, false, uint16(len(n)), n).Reply()
		if err != nil {
			return 0, nil, fmt.Errorf("clipboard atom %s: %w", n, err)
		}
		at[n] = r.Atom
	}
	return win, at, nil
}

// waitX waits for a matching event, bounded by ctx and a 3 s ceiling so an
// owner that never answers cannot hang the caller.
func waitX(ctx context.Context, c *xgb.Conn, match func(xgb.Event) bool) (xgb.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	got := make(chan xgb.Event, 1)
	go func() {
		for {
			ev, err := c.WaitForEvent()
			if ev == nil && err == nil {
				close(got)
				return
			}
			if ev != nil && match(ev) {
				got <- ev
				return
			}
		}
	}()
	select {
	case ev, ok := <-got:
		if !ok {
			return nil, errors.New("clipboard: X connection closed")
		}
		return ev, nil
	case <-ctx.Done():
		c.Close() // unblocks the reader goroutine
		return nil, fmt.Errorf("clipboard: %w", ctx.Err())
	}
}
