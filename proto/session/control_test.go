package session

import (
	"encoding/json"
	"testing"
)

func TestControlJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  string
		kv   []any
		want string
	}{
		{"pong", "pong", nil, `{"ctrlChannel":"102938","type":"pong"}`},
		{"rtt echo", "rtt", []any{"time", json.RawMessage(`1234567`)}, `{"ctrlChannel":"102938","type":"rtt","time":1234567}`},
		{"console in order", "console", []any{"msg", "hi \"x\"", "msgid", 3, "timeout", 5000},
			`{"ctrlChannel":"102938","type":"console","msg":"hi \"x\"","msgid":3,"timeout":5000}`},
		{"unpaired key dropped", "close", []any{"orphan"}, `{"ctrlChannel":"102938","type":"close"}`},
		{"bad value dropped", "x", []any{"f", func() {}, "n", 1}, `{"ctrlChannel":"102938","type":"x","n":1}`},
		{"type escaped", `a"b`, nil, `{"ctrlChannel":"102938","type":"a\"b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(ControlJSON(tc.typ, tc.kv...)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
