package desktop

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/godbus/dbus/v5"

	"github.com/meshgo/meshagent/agent/mutter"
)

// gnomeClipOwner keeps the Mutter session that owns the selection after
// WriteClipboard returns: Mutter asks its owner for the data at each
// paste, until another client takes the selection.
var gnomeClipOwner struct {
	mu   sync.Mutex
	stop func()
}

// gnomeClipboard opens a clipboard session on the first discovered GNOME
// session whose Mutter offers RemoteDesktop, joined as its user.
func gnomeClipboard(opts Options) (*dbus.Conn, *mutter.Clipboard, error) {
	var errs []error
	for _, t := range discoverGNOME(opts) {
		c, err := mutter.Dial(t.bus, t.uid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !mutter.Available(c) {
			c.Close()
			errs = append(errs, fmt.Errorf("gnome session of uid %d: Mutter's RemoteDesktop is not on its bus", t.uid))
			continue
		}
		cb, err := mutter.OpenClipboard(c)
		if err != nil {
			c.Close()
			errs = append(errs, fmt.Errorf("gnome session of uid %d: %w", t.uid, err))
			continue
		}
		return c, cb, nil
	}
	if len(errs) == 0 {
		return nil, nil, fmt.Errorf("gnome clipboard: %w", errNoDisplay)
	}
	return nil, nil, fmt.Errorf("gnome clipboard: %w: %w", errNoDisplay, errors.Join(errs...))
}

func readGNOMEClipboard(ctx context.Context, opts Options) (string, error) {
	c, cb, err := gnomeClipboard(opts)
	if err != nil {
		return "", err
	}
	defer c.Close()
	defer cb.Close()
	return cb.ReadText(ctx)
}

func writeGNOMEClipboard(ctx context.Context, opts Options, text string) error {
	c, cb, err := gnomeClipboard(opts)
	if err != nil {
		return err
	}
	if err := cb.Offer(text); err != nil {
		cb.Close()
		c.Close()
		return fmt.Errorf("gnome clipboard: %w", err)
	}
	gnomeClipOwner.mu.Lock()
	if gnomeClipOwner.stop != nil {
		gnomeClipOwner.stop()
	}
	var once sync.Once
	done := make(chan struct{})
	gnomeClipOwner.stop = func() { once.Do(func() { close(done); cb.Close(); c.Close() }) }
	stop := gnomeClipOwner.stop
	gnomeClipOwner.mu.Unlock()
	go func() {
		defer stop()
		select {
		case <-done:
		case <-cb.Lost():
		}
	}()
	return nil
}
