package desktop

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// A viewer that picked another Windows session than the agent's own is
// told, in a console message, which one it sees; the agent's own session
// or no choice gives no message. Outside Windows there is no session id
// to compare and nothing is sent.
func TestNoteTSID(t *testing.T) {
	own, known := ownSession()
	tests := []struct {
		name string
		opts string
		want bool
	}{
		{"no choice", `{"type":"options"}`, false},
		{"own session", fmt.Sprintf(`{"type":"options","tsid":%d}`, own), false},
		{"another session", fmt.Sprintf(`{"type":"options","tsid":%d}`, own+1), known},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent, viewer := session.Pipe(4)
			s := &sess{ch: agent, log: slog.New(slog.DiscardHandler)}
			s.noteTSID(context.Background(), session.Info{Options: []byte(tt.opts)})
			agent.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			f, err := viewer.Read(ctx)
			got := err == nil && strings.Contains(string(f.Data), `"type":"console"`) && strings.Contains(string(f.Data), "can show only its own session")
			if got != tt.want {
				t.Errorf("message sent %v (%q, %v), want %v", got, f.Data, err, tt.want)
			}
		})
	}
}
