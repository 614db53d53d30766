package osuser

import (
	"errors"
	"os/exec"
	"slices"
	"testing"
)

func TestSameAccount(t *testing.T) {
	tests := []struct {
		name, user, domain string
		want               bool
	}{
		{"alice", "alice", "PC", true},
		{"ALICE", "alice", "", true},
		{`PC\alice`, "alice", "PC", true},
		{`pc\Alice`, "alice", "PC", true},
		{`OTHER\alice`, "alice", "PC", false},
		{"bob", "alice", "PC", false},
		{`PC\`, "alice", "PC", false},
	}
	for _, tt := range tests {
		if got := sameAccount(tt.name, tt.user, tt.domain); got != tt.want {
			t.Errorf("sameAccount(%q, %q, %q) = %v", tt.name, tt.user, tt.domain, got)
		}
	}
}

// Run by a user (not the service) the agent is the console user itself:
// Console and Lookup give its own account, which needs no token switch;
// any other account is refused, never silently run as the agent.
func TestConsoleAsOrdinaryUser(t *testing.T) {
	if isSystem() {
		t.Skip("as LocalSystem the console session's user is looked up instead")
	}
	u, err := Console()
	if err != nil {
		t.Fatalf("Console: %v", err)
	}
	if !u.own || u.Name == "" {
		t.Fatalf("Console = %+v, want the agent's own account", u)
	}
	if err := u.CanRun(); err != nil {
		t.Errorf("CanRun(own) = %v", err)
	}
	l, err := Lookup(u.Name)
	if err != nil || !l.own {
		t.Errorf("Lookup(%q) = %+v, %v", u.Name, l, err)
	}
	if _, err := Lookup("no-such-user-here"); !errors.Is(err, ErrCannotSwitch) {
		t.Errorf("Lookup(another) = %v, want ErrCannotSwitch", err)
	}
	cmd := exec.Command("cmd.exe", "/c", "echo %MESHTEST%")
	if err := u.Apply(cmd, "MESHTEST=yes"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cmd.Env, "MESHTEST=yes") || cmd.SysProcAttr != nil {
		t.Errorf("Apply(own) env has MESHTEST: %v, SysProcAttr %+v", slices.Contains(cmd.Env, "MESHTEST=yes"), cmd.SysProcAttr)
	}
	tok, err := u.Token()
	if err != nil {
		t.Fatalf("Token(own): %v", err)
	}
	tok.Close()
}
