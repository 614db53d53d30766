package osuser

import (
	"encoding/json"
	"runtime"
	"testing"

	"github.com/meshgo/meshagent/internal/winetest"
)

// The reply keeps only Active and Connected sessions, keyed by id, with
// the field names the web UI reads; user fields only where known.
func TestUserSessionsReply(t *testing.T) {
	tests := []struct {
		name string
		in   []Session
		want string
	}{
		{"none", nil, `{}`},
		{"windows console and services", []Session{
			{ID: 0, Station: "Services", State: "Disconnected"},
			{ID: 1, Station: "Console", State: "Active", User: "alice", Domain: "PC1"},
		}, `{"1":{"Domain":"PC1","SessionId":1,"State":"Active","StationName":"Console","Username":"alice"}}`},
		{"rdp connected without user", []Session{
			{ID: 1, Station: "Console", State: "Active", User: "alice", Domain: "PC1"},
			{ID: 2, Station: "RDP-Tcp#0", State: "Connected"},
			{ID: 65536, Station: "RDP-Tcp", State: "Listening"},
		}, `{"1":{"Domain":"PC1","SessionId":1,"State":"Active","StationName":"Console","Username":"alice"},"2":{"SessionId":2,"State":"Connected","StationName":"RDP-Tcp#0"}}`},
		{"linux console user by uid", []Session{
			{ID: 1000, Station: "Console", State: "Active", User: "bob", UID: "1000"},
		}, `{"1000":{"Domain":"","SessionId":1000,"State":"Active","StationName":"Console","Username":"bob","uid":"1000"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(UserSessionsReply(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestWTSStateName(t *testing.T) {
	for s, want := range map[uint32]string{0: "Active", 1: "Connected", 4: "Disconnected", 6: "Listening", 9: "Init", 42: "State42"} {
		if got := wtsStateName(s); got != want {
			t.Errorf("state %d: %q, want %q", s, got, want)
		}
	}
}

// Sessions reads the real system. On Windows (wine included) there is
// always the session the test runs in, with a window station and a state
// name from the table; elsewhere any listed session is the console
// user's, active and keyed by its uid.
func TestSessions(t *testing.T) {
	list, err := Sessions()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sessions: %+v", list)
	if runtime.GOOS == "windows" {
		if len(list) == 0 {
			winetest.SkipUnderWine(t, "WTSEnumerateSessionsW succeeds listing no session (a stub)")
			t.Fatal("no session listed, but this test runs in one")
		}
		for _, s := range list {
			if s.Station == "" || s.State == "" || s.State[:min(5, len(s.State))] == "State" {
				t.Errorf("session %+v: missing station or unknown state", s)
			}
		}
		return
	}
	for _, s := range list {
		if s.State != "Active" || s.Station != "Console" || s.UID == "" || s.User == "" {
			t.Errorf("session %+v is not an active console user", s)
		}
	}
}
