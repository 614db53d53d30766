package desktop

import (
	"context"
	"encoding/json"
)

// LockMsgID is MeshCentral's event id for "Locking remote user out of
// desktop", logged when the toolbar's Lock or auto-lock locks the screen.
const LockMsgID = 53

// lockOptions reads autolock from the viewer's "options" message (the
// Disconnect menu's "auto-lock on disconnect").
func autolockOption(options []byte) bool {
	var o struct {
		Autolock bool `json:"autolock"`
	}
	return len(options) > 0 && json.Unmarshal(options, &o) == nil && o.Autolock
}

// lockNow locks the local screen with the session's Lock (LockScreen by
// default) and logs it, as the toolbar's Lock does in meshcore.js.
func (s *sess) lockNow(ctx context.Context) {
	lock := s.opts.Lock
	if lock == nil {
		lock = LockScreen
	}
	if s.opts.LogEvent != nil {
		s.opts.LogEvent(LockMsgID)
	}
	if err := lock(ctx); err != nil {
		s.log.Warn("desktop: lock failed", "err", err)
		return
	}
	s.log.Info("desktop: locked the local screen")
}
