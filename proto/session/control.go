package session

import (
	"encoding/json"
	"strings"
)

// CtrlChannel is the value of "ctrlChannel" that marks an in-band control
// message on a session: MeshCentral's viewers, meshctrl and the agent tell
// control traffic from user data by it (../shared/protocol/sessions.md
// §1.8). The browser's rtt carries it as the number 102938, so a reader
// should accept both forms.
const CtrlChannel = "102938"

// ControlJSON builds an outgoing in-band control message (sessions.md
// §1.8) with ctrlChannel first and type second — the exact prefix
// meshctrl's shell uses to hide control traffic from the user's screen —
// followed by kv as key, value pairs in order. A value that cannot be
// marshalled is left out, as is an unpaired last key.
func ControlJSON(typ string, kv ...any) []byte {
	var b strings.Builder
	b.WriteString(`{"ctrlChannel":"` + CtrlChannel + `","type":`)
	t, _ := json.Marshal(typ)
	b.Write(t)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := json.Marshal(kv[i])
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			continue
		}
		b.WriteByte(',')
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String())
}
