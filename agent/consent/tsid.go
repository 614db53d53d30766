package consent

import "context"

type tsidKey struct{}

// WithTSID returns ctx carrying the Windows session the viewer chose (the
// web UI's session picker, "tsid" in the session's options), so a UI that
// can show prompts in more than one session (the Windows service, through
// its session workers) asks the user of that session, not the console's.
func WithTSID(ctx context.Context, id uint32) context.Context {
	return context.WithValue(ctx, tsidKey{}, id)
}

// TSIDFrom returns the session WithTSID put in ctx; ok is false when the
// viewer chose none (the console session's user is asked).
func TSIDFrom(ctx context.Context) (id uint32, ok bool) {
	id, ok = ctx.Value(tsidKey{}).(uint32)
	return id, ok
}
