package install

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/kardianos/service"
)

// PlatformHandler is a slog.Handler writing to a kardianos/service Logger:
// the Windows Event Log, or syslog on macOS (which lands in the unified log),
// or the console when the program is run interactively. Debug records go
// out as Info when the level lets them through: the Event Log has no debug
// level.
type PlatformHandler struct {
	logger service.Logger
	level  slog.Leveler
	mu     *sync.Mutex
	buf    *bytes.Buffer
	text   slog.Handler
}

// NewPlatformHandler returns a handler for l at level.
func NewPlatformHandler(l service.Logger, level slog.Leveler) *PlatformHandler {
	buf := new(bytes.Buffer)
	return &PlatformHandler{
		logger: l, level: level, mu: new(sync.Mutex), buf: buf,
		// The platform log stamps its own time.
		text: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}),
	}
}

func (h *PlatformHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *PlatformHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	line := strings.TrimRight(h.buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.logger.Error(line)
	case r.Level >= slog.LevelWarn:
		return h.logger.Warning(line)
	default:
		return h.logger.Info(line)
	}
}

func (h *PlatformHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(attrs)
	return &c
}

func (h *PlatformHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}
