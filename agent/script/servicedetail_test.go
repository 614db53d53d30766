package script

import (
	"strings"
	"testing"
	"time"
)

func TestValidServiceName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ssh", true},
		{"systemd-fsck@dev-disk-by\\x2duuid-1234.service", true},
		{"Mesh Agent", true},
		{"com.apple.Finder", true},
		{"", false},
		{"--root=/tmp", false},
		{"-H", false},
		{"a/b", false},
		{"a\nb", false},
		{`x" & net stop "y`, false},
		{"%COMSPEC%", false},
		{strings.Repeat("a", 257), false},
	} {
		if err := validServiceName(tc.name); (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.name, err)
		}
	}
}

// FuzzValidServiceName: whatever the server sends, an accepted name can
// never be read as an option or break out of a quoted cmd.exe argument.
func FuzzValidServiceName(f *testing.F) {
	for _, s := range []string{"ssh", "-x", "Mesh Agent", `a"b`, "a%b%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validServiceName(s) != nil {
			return
		}
		if s == "" || s[0] == '-' || strings.ContainsAny(s, "\"%/") || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 }) >= 0 {
			t.Fatalf("accepted %q", s)
		}
	})
}

// The default core answers the device page's Services panel and
// Service Details dialog, and the console's service status|restart, as
// meshcore.js does: always with a reply, never silence.
func TestDefaultCoreServices(t *testing.T) {
	h, c := startCore(t, Config{})
	deliver(h, map[string]any{"action": "msg", "type": "services", "sessionid": "s1"})
	m := c.wait(t, 30*time.Second, isMsg("services", "s1"))
	if v, _ := m["value"].(string); !strings.HasPrefix(v, "[") {
		t.Errorf("services reply %v", m)
	}
	t.Logf("services reply: %.200v", m)
	deliver(h, map[string]any{"action": "msg", "type": "service", "sessionid": "s2", "serviceName": "meshgo-no-such-service"})
	m = c.wait(t, 30*time.Second, isMsg("service", "s2"))
	if e, _ := m["error"].(string); e == "" || m["value"] != nil {
		t.Errorf("details of a missing service: %v", m)
	}
	deliver(h, map[string]any{"action": "msg", "type": "service", "sessionid": "s3", "serviceName": "--root=/"})
	m = c.wait(t, 30*time.Second, isMsg("service", "s3"))
	if e, _ := m["error"].(string); !strings.Contains(e, "invalid service name") {
		t.Errorf("option as a name: %v", m)
	}
	if s := consoleCmd(t, h, c, "c1", "service restart", 8|16); s != "Restarting another agent instance is not allowed" {
		t.Errorf("service restart in the foreground: %q", s)
	}
	if s := consoleCmd(t, h, c, "c2", "service status", 8|16); !strings.HasPrefix(s, "Service [NOT RUNNING]") && s != "Service [RUNNING]" {
		t.Errorf("service status in the foreground: %q", s)
	}
	if s := consoleCmd(t, h, c, "c3", "service frob", 8|16); !strings.HasPrefix(s, "Proper usage") {
		t.Errorf("service frob: %q", s)
	}

	h2, c2 := startCore(t, Config{Agent: AgentInfo{ServiceName: "meshagent"}})
	if s := consoleCmd(t, h2, c2, "c4", "service status", 8|16); s != "Service [SELF]" {
		t.Errorf("service status as the service: %q", s)
	}
}
