package desktop

import (
	"context"
	"fmt"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// noteTSID records the Windows session the viewer picked from the
// userSessions answer. This agent captures the session it runs in; a
// per-session worker (issue 14) would start in the chosen one. Until then
// a choice of another session is logged and told to the viewer instead of
// silently showing a different session than the one picked.
func (s *sess) noteTSID(ctx context.Context, info session.Info) {
	tsid, ok := info.TSID()
	if !ok {
		return
	}
	own, known := ownSession()
	if !known || own == tsid {
		s.log.Debug("desktop: viewer chose session", "tsid", tsid)
		return
	}
	s.log.Warn("desktop: viewer chose another session than the agent's own; showing the agent's own (no session worker yet)", "tsid", tsid, "own", own)
	msg := fmt.Sprintf("Session %d was chosen, but this agent can show only its own session (%d).", tsid, own)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.ch.Write(wctx, session.Frame{Data: session.ControlJSON("console", "msg", msg, "msgid", 0)})
}
