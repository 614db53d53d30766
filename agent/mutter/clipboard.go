//go:build linux

package mutter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// TextTypes are the MIME types a text selection is offered as and asked
// for, in order of preference: what Wayland clients (text/plain variants)
// and X clients through Xwayland (UTF8_STRING, STRING, TEXT) use.
var TextTypes = []string{"text/plain;charset=utf-8", "text/plain", "UTF8_STRING", "STRING", "TEXT"}

// maxClip bounds a selection read: the viewer's clipboard is text.
const maxClip = 16 << 20

// Clipboard is a RemoteDesktop session used for Mutter's clipboard:
// EnableClipboard makes the session see the CLIPBOARD selection's owner
// (SelectionOwnerChanged), read it (SelectionRead) and own it
// (SetSelection, then SelectionTransfer asks for the data, answered
// through SelectionWrite). It needs no screen cast and is never Started,
// so the desktop shows no "screen is being shared" indicator for it.
type Clipboard struct {
	c    *dbus.Conn
	rd   dbus.BusObject
	path dbus.ObjectPath
	sig  chan *dbus.Signal

	mu    sync.Mutex
	types []string      // the current owner's MIME types, nil when none
	owner bool          // the current owner is this session
	data  []byte        // what this session offers
	lost  chan struct{} // closed when another owner took the selection after Offer, or the session ended
}

// OpenClipboard creates the session on c and enables its clipboard.
func OpenClipboard(c *dbus.Conn) (*Clipboard, error) {
	var p dbus.ObjectPath
	if err := c.Object(rdName, rdPath).Call(rdName+".CreateSession", 0).Store(&p); err != nil {
		return nil, fmt.Errorf("mutter RemoteDesktop.CreateSession: %w", err)
	}
	cb := &Clipboard{c: c, rd: c.Object(rdName, p), path: p, sig: make(chan *dbus.Signal, 32),
		lost: make(chan struct{})}
	c.Signal(cb.sig)
	if err := c.AddMatchSignal(dbus.WithMatchObjectPath(p), dbus.WithMatchInterface(rdSession)); err != nil {
		cb.Close()
		return nil, fmt.Errorf("mutter match clipboard signals: %w", err)
	}
	go cb.watch()
	if err := cb.rd.Call(rdSession+".EnableClipboard", 0, map[string]dbus.Variant{}).Err; err != nil {
		cb.Close()
		return nil, fmt.Errorf("mutter EnableClipboard: %w", err)
	}
	return cb, nil
}

// watch follows the session's signals: owner changes, transfer requests
// for what this session offers, and the session's end.
func (cb *Clipboard) watch() {
	for sg := range cb.sig {
		if sg.Path != cb.path {
			continue
		}
		switch sg.Name {
		case rdSession + ".SelectionOwnerChanged":
			if len(sg.Body) != 1 {
				continue
			}
			opts, _ := sg.Body[0].(map[string]dbus.Variant)
			types, own := OwnerChange(opts)
			cb.mu.Lock()
			wasOwner := cb.owner
			cb.types, cb.owner = types, own
			cb.mu.Unlock()
			if wasOwner && !own {
				cb.closeLost()
			}
		case rdSession + ".SelectionTransfer":
			if len(sg.Body) != 2 {
				continue
			}
			serial, _ := sg.Body[1].(uint32)
			go cb.transfer(serial)
		case rdSession + ".Closed":
			cb.closeLost()
			return
		}
	}
	cb.closeLost() // the connection closed
}

func (cb *Clipboard) closeLost() {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	select {
	case <-cb.lost:
	default:
		close(cb.lost)
	}
}

// OwnerChange reads SelectionOwnerChanged's options: the owner's MIME
// types and whether the owner is this session. Mutter 43 sends
// "mime-types" as a one-field struct holding the string array, not as the
// array itself; both are accepted.
func OwnerChange(opts map[string]dbus.Variant) (types []string, own bool) {
	if v, ok := opts["mime-types"]; ok {
		switch t := v.Value().(type) {
		case []string:
			types = t
		case []any:
			if len(t) == 1 {
				types, _ = t[0].([]string)
			}
		}
	}
	if v, ok := opts["session-is-owner"]; ok {
		own, _ = v.Value().(bool)
	}
	return types, own
}

// transfer answers one paste of what this session offers.
func (cb *Clipboard) transfer(serial uint32) {
	cb.mu.Lock()
	data := cb.data
	cb.mu.Unlock()
	var fd dbus.UnixFD
	if err := cb.rd.Call(rdSession+".SelectionWrite", 0, serial).Store(&fd); err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "mutter-selection-write")
	_, err := f.Write(data)
	f.Close()
	cb.rd.Call(rdSession+".SelectionWriteDone", 0, serial, err == nil)
}

// ReadText returns the CLIPBOARD selection's text: "" when nothing owns
// it or its owner offers no text type. The owner has until ctx ends (and
// at most 5 s) to write it.
func (cb *Clipboard) ReadText(ctx context.Context) (string, error) {
	// EnableClipboard announced the current owner before it returned; the
	// signal may still be on its way through the connection's queue.
	var types []string
	deadline := time.Now().Add(300 * time.Millisecond)
	for {
		cb.mu.Lock()
		types = cb.types
		cb.mu.Unlock()
		if types != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mime := TextTypes[0]
	if types != nil {
		mime = ""
		for _, t := range TextTypes {
			if slices.Contains(types, t) {
				mime = t
				break
			}
		}
		if mime == "" {
			return "", nil // an image or files: no text to give
		}
	}
	var fd dbus.UnixFD
	if err := cb.rd.Call(rdSession+".SelectionRead", 0, mime).Store(&fd); err != nil {
		var de dbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.FileNotFound" {
			return "", nil // no owner
		}
		return "", fmt.Errorf("mutter SelectionRead %s: %w", mime, err)
	}
	f := os.NewFile(uintptr(fd), "mutter-selection-read")
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		f.SetReadDeadline(dl) // a pipe: works when the fd is non-blocking
	}
	type result struct {
		b   []byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(f, maxClip))
		got <- result{b, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			return "", fmt.Errorf("mutter selection read: %w", r.err)
		}
		return string(r.b), nil
	case <-ctx.Done():
		f.Close()
		return "", fmt.Errorf("mutter selection read: %w", ctx.Err())
	}
}

// Offer makes this session the CLIPBOARD owner with text; pastes are
// answered until another client takes the selection (Lost) or Close.
func (cb *Clipboard) Offer(text string) error {
	cb.mu.Lock()
	cb.data = []byte(text)
	cb.owner = true
	cb.mu.Unlock()
	if err := cb.rd.Call(rdSession+".SetSelection", 0,
		map[string]dbus.Variant{"mime-types": dbus.MakeVariant(TextTypes)}).Err; err != nil {
		return fmt.Errorf("mutter SetSelection: %w", err)
	}
	return nil
}

// Lost is closed once another client owns the selection after Offer, or
// the session ended.
func (cb *Clipboard) Lost() <-chan struct{} { return cb.lost }

// Close ends the session (Mutter drops its selection with it). The
// caller closes the connection afterwards, which also ends the session if
// Mutter refused Stop (it stops only started sessions in some versions).
func (cb *Clipboard) Close() {
	cb.rd.Call(rdSession+".Stop", 0)
	cb.closeLost()
}
