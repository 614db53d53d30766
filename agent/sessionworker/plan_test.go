package sessionworker

import (
	"errors"
	"testing"

	"github.com/meshgo/meshagent/agent/osuser"
)

func TestChoose(t *testing.T) {
	list := []osuser.Session{
		{ID: 0, Station: "Services", State: "Disconnected"},
		{ID: 1, Station: "Console", State: "Active", User: "alice", Domain: "PC"},
		{ID: 2, Station: "RDP-Tcp#0", State: "Active", User: "bob", Domain: "CORP"},
		{ID: 3, Station: "", State: "Disconnected", User: "carol"},
		{ID: 4, Station: "Console", State: "Connected"},
		{ID: 65536, Station: "RDP-Tcp", State: "Listening"},
	}
	u := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name    string
		console uint32
		tsid    *uint32
		want    Target
		err     error
	}{
		{"console user", 1, nil, Target{Session: 1, AsUser: true, User: `PC\alice`}, nil},
		{"viewer picks RDP session", 1, u(2), Target{Session: 2, AsUser: true, User: `CORP\bob`}, nil},
		{"viewer picks the console", 2, u(1), Target{Session: 1, AsUser: true, User: `PC\alice`}, nil},
		{"login screen on the console", 4, nil, Target{Session: 4}, nil},
		{"viewer picks the login screen", 1, u(4), Target{Session: 4}, nil},
		{"console not listed yet", 7, nil, Target{Session: 7}, nil},
		{"no console session", NoConsole, nil, Target{}, ErrNoSession},
		{"session 0 never", 0, nil, Target{}, ErrNoSession},
		{"viewer picks session 0", 1, u(0), Target{}, ErrNoSession},
		{"viewer picks a gone session", 1, u(9), Target{}, ErrNoSession},
		{"viewer picks a disconnected one", 1, u(3), Target{}, ErrNoSession},
		{"viewer picks a listener", 1, u(65536), Target{}, ErrNoSession},
		{"disconnected console: SYSTEM", 3, nil, Target{Session: 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(list, tt.console, tt.tsid)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("Choose = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
