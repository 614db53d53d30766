package script

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
)

// The web UI's userSessions request gets one answer with its tag and
// session id, whose data is exactly what osuser lists now (on Linux the
// console user or nothing; under wine its session list).
func TestUserSessionsReply(t *testing.T) {
	h, c := startCore(t, Config{})
	deliver(h, map[string]any{"action": "msg", "type": "userSessions", "sessionid": "user/domain/u/1", "tag": 3, "nodeid": "node//x"})
	m := c.wait(t, 10*time.Second, isMsg("userSessions", "user/domain/u/1"))
	if m["tag"] != float64(3) {
		t.Errorf("tag %v, want 3", m["tag"])
	}
	data, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("data %T %v, want an object keyed by session id", m["data"], m["data"])
	}
	l, err := osuser.Sessions()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(osuser.UserSessionsReply(l))
	got, _ := json.Marshal(data)
	if string(got) != string(want) {
		t.Errorf("data %s, want %s", got, want)
	}
	for k, v := range data {
		e, _ := v.(map[string]any)
		if id, _ := e["SessionId"].(float64); k == "" || e["State"] == nil || id < 0 {
			t.Errorf("entry %s: %v lacks SessionId or State", k, v)
		}
	}
}
