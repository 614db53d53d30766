package script

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/scripts"
)

// The console's msh get/set/delete (meshcore.js's wording) change the
// .msh through Config.SetSetting; changes need full administrator rights
// and are logged to the server.
func TestConsoleMsh(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	c := newCapture()
	h := New(Config{Send: c.send, Agent: AgentInfo{NodeID: "@node", DataDir: t.TempDir(),
		Settings: map[string]string{"MeshServer": "wss://127.0.0.1/agent.ashx", "MeshName": "g"}},
		SetSetting: func(k, v string, remove bool) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, fmt.Sprintf("%s=%s/%v", k, v, remove))
			if k == "bad" {
				return errors.New("msh: \"bad\" refused")
			}
			return nil
		}})
	t.Cleanup(h.Close)
	if err := h.Start("defaultcore", scripts.DefaultCore); err != nil {
		t.Fatal(err)
	}
	const viewer = float64(8 | 16)
	steps := []struct {
		line   string
		rights float64
		want   string
		call   string
	}{
		{"msh get MeshServer", admin, "wss://127.0.0.1/agent.ashx", ""},
		{"msh get nope", admin, "Unknown Value: nope", ""},
		{"msh get", admin, "Proper usage: msh get MeshServer", ""},
		{`msh set abc "x y"`, viewer, "Access denied: msh set requires full administrator rights.", ""},
		{`msh set abc "x y"`, admin, "msh set abc successful", "abc=x y/false"},
		{"msh get abc", admin, "x y", ""},
		{"msh set abc", admin, `Proper usage: msh set abc "xyz"`, ""},
		{"msh delete abc", viewer, "Access denied: msh delete requires full administrator rights.", ""},
		{"msh delete abc", admin, "msh delete abc successful", "abc=/true"},
		{"msh get abc", admin, "Unknown Value: abc", ""},
		{"msh set bad 1", admin, `msh set bad unsuccessful: msh: "bad" refused`, "bad=1/false"},
		{"msh frob x", admin, "Proper usage: msh [get|set|delete]", ""},
	}
	for i, st := range steps {
		mu.Lock()
		calls = nil
		mu.Unlock()
		got := consoleCmd(t, h, c, fmt.Sprintf("msh%d", i), st.line, st.rights)
		if !strings.HasPrefix(got, st.want) {
			t.Errorf("%s: reply %q, want %q", st.line, got, st.want)
		}
		mu.Lock()
		if strings.Join(calls, ",") != st.call {
			t.Errorf("%s: SetSetting calls %v, want %q", st.line, calls, st.call)
		}
		mu.Unlock()
	}
	c.wait(t, 5*time.Second, func(m map[string]any) bool {
		return m["action"] == "log" && m["msg"] == "Agent setting abc set in the .msh file" && m["userid"] == "user//tester"
	})
	// The plain dump still shows everything.
	if got := consoleCmd(t, h, c, "dump", "msh", admin); !strings.Contains(got, `"MeshName": "g"`) {
		t.Errorf("msh dump %q", got)
	}
}

// uninstallagent, from the server (the web UI's uninstall) or the console,
// runs Config.Uninstall only in the service instance, and logs it.
func TestUninstallAgent(t *testing.T) {
	called := make(chan struct{}, 4)
	uninstall := func() error { called <- struct{}{}; return nil }

	// Not a service: refused, nothing run.
	h, c := startCore(t, Config{Uninstall: uninstall})
	if got := consoleCmd(t, h, c, "u1", "uninstallagent", admin); got != "Uninstall failed: this instance is not the service instance" {
		t.Errorf("foreground reply %q", got)
	}
	deliver(h, map[string]any{"action": "uninstallagent"})
	select {
	case <-called:
		t.Fatal("Uninstall ran in a foreground instance")
	case <-time.After(500 * time.Millisecond):
	}

	// The service instance: the server's message and the console command.
	h, c = startCore(t, Config{Uninstall: uninstall, Agent: AgentInfo{ServiceName: "meshagent"}})
	deliver(h, map[string]any{"action": "uninstallagent"})
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("uninstallagent did not run Uninstall")
	}
	c.wait(t, 5*time.Second, func(m map[string]any) bool {
		return m["action"] == "log" && m["msg"] == "Uninstalling the agent service meshagent"
	})
	if got := consoleCmd(t, h, c, "u2a", "uninstallagent", float64(8|16)); got != "Access denied: uninstallagent requires the uninstall right." {
		t.Errorf("reply without the uninstall right %q", got)
	}
	if got := consoleCmd(t, h, c, "u2", "uninstallagent", float64(8|16|0x8000)); got != "Uninstalling the agent service meshagent." {
		t.Errorf("service reply %q", got)
	}
	<-called

	// Uninstall failing is reported, not logged as done.
	h, c = startCore(t, Config{Uninstall: func() error { return errors.New("systemd-run: exit 1") },
		Agent: AgentInfo{ServiceName: "meshagent"}})
	if got := consoleCmd(t, h, c, "u3", "uninstallagent", admin); got != "Uninstall failed: systemd-run: exit 1" {
		t.Errorf("failure reply %q", got)
	}
}
