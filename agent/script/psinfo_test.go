package script

import (
	"os"
	"testing"
	"time"
)

// psinfo fills the Process Details dialog; a process that is gone gets
// an empty value (the dialog's "No information provided") and the reason.
func TestDefaultCorePsinfo(t *testing.T) {
	h, c := startCore(t, Config{})
	deliver(h, map[string]any{"action": "msg", "type": "psinfo", "sessionid": "p1", "pid": os.Getpid()})
	m := c.wait(t, 10*time.Second, isMsg("psinfo", "p1"))
	v, _ := m["value"].(map[string]any)
	if m["pid"] != float64(os.Getpid()) || v["processName"] == nil || v["cmd"] == nil || v["startTime"] == nil || v["workingSet"] == nil {
		t.Errorf("psinfo of the test process: %v", m)
	}
	t.Logf("psinfo: %v", v)
	deliver(h, map[string]any{"action": "msg", "type": "psinfo", "sessionid": "p2", "pid": 0x3fffffff})
	m = c.wait(t, 10*time.Second, isMsg("psinfo", "p2"))
	if v, _ := m["value"].(map[string]any); v == nil || len(v) != 0 || m["error"] == nil {
		t.Errorf("psinfo of a missing process: %v", m)
	}
}

// getclip and setclip always answer: the data, or an error beside an
// empty value when no clipboard is reachable (before, a failed getclip
// sent nothing and the web UI's dialog waited).
func TestDefaultCoreClipboardReplies(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	h, c := startCore(t, Config{})
	deliver(h, map[string]any{"action": "msg", "type": "getclip", "sessionid": "g1", "tag": 1})
	m := c.wait(t, 15*time.Second, isMsg("getclip", "g1"))
	if m["tag"] != float64(1) {
		t.Errorf("getclip reply without the tag: %v", m)
	}
	if e, _ := m["error"].(string); e != "" && m["data"] != "" {
		t.Errorf("getclip error with data: %v", m)
	}
	t.Logf("getclip: %v", m)
	deliver(h, map[string]any{"action": "msg", "type": "setclip", "sessionid": "s1", "data": "meshgo"})
	m = c.wait(t, 15*time.Second, isMsg("setclip", "s1"))
	if ok, _ := m["success"].(bool); !ok && m["error"] == nil {
		t.Errorf("failed setclip without a reason: %v", m)
	}
	t.Logf("setclip: %v", m)
	deliver(h, map[string]any{"action": "msg", "type": "setclip", "sessionid": "s2"})
	if m = c.wait(t, 15*time.Second, isMsg("setclip", "s2")); m["success"] != false {
		t.Errorf("setclip without data: %v", m)
	}
}
