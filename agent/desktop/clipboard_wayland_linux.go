package desktop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/wayland"
)

// wlClipOwner keeps the Wayland connection that owns the selection open
// after WriteClipboard returns, until another client takes the selection.
var wlClipOwner struct {
	mu   sync.Mutex
	stop func()
}

// wlDataDevice connects to the first discovered compositor that offers
// wlroots data-control.
func wlDataDevice(opts Options) (*wayland.Client, *wayland.DataDevice, error) {
	var errs []error
	for _, t := range discoverWayland(opts) {
		c, err := wayland.Dial(t.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, err := wayland.NewDataDevice(c)
		if err != nil {
			c.Close()
			errs = append(errs, fmt.Errorf("%s: %w", t.path, err))
			continue
		}
		return c, d, nil
	}
	if len(errs) == 0 {
		return nil, nil, fmt.Errorf("wayland clipboard: %w", errNoDisplay)
	}
	return nil, nil, fmt.Errorf("wayland clipboard: %w: %w", errNoDisplay, errors.Join(errs...))
}

func readWLClipboard(ctx context.Context, opts Options) (string, error) {
	c, d, err := wlDataDevice(opts)
	if err != nil {
		return "", err
	}
	defer c.Close()
	timeout := 3 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	return d.Selection(timeout)
}

func writeWLClipboard(ctx context.Context, opts Options, text string) error {
	c, d, err := wlDataDevice(opts)
	if err != nil {
		return err
	}
	if err := d.SetSelection(text); err != nil {
		c.Close()
		return fmt.Errorf("wayland clipboard: %w", err)
	}
	wlClipOwner.mu.Lock()
	if wlClipOwner.stop != nil {
		wlClipOwner.stop()
	}
	var once sync.Once
	done := make(chan struct{})
	wlClipOwner.stop = func() { once.Do(func() { close(done); c.Close() }) }
	stop := wlClipOwner.stop
	wlClipOwner.mu.Unlock()
	go func() {
		defer stop()
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-c.Done():
				return
			case <-tk.C:
				if !d.Owned() {
					return
				}
			}
		}
	}()
	return nil
}
