package desktop

import (
	"context"
	"fmt"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// noteTSID records the Windows session the viewer picked from the
// userSessions answer. Serve captures the session it runs in: as the
// Windows service the agent runs Serve in a session worker started in the
// chosen session (agent/sessionworker), so the two match; an agent run by
// a user from a console can show only its own session, and a choice of
// another is logged and told to the viewer instead of silently showing a
// different session than the one picked.
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
	s.log.Warn("desktop: viewer chose another session than the agent's own; showing the agent's own (the agent is not the service, so it starts no session worker)", "tsid", tsid, "own", own)
	msg := fmt.Sprintf("Session %d was chosen, but this agent can show only its own session (%d).", tsid, own)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.ch.Write(wctx, session.Frame{Data: session.ControlJSON("console", "msg", msg, "msgid", 0)})
}
