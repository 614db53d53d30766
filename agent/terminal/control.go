package terminal

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/meshgo/meshagent/proto/session"
)

// control is one in-band control message received on a text frame.
type control struct {
	Type string
	Cols int // termsize/options; 0 when absent or unusable
	Rows int
	Time json.RawMessage // rtt timestamp, echoed back verbatim
}

// parseControl decodes a text frame as a control message. It accepts
// ctrlChannel as a string or a number and also messages without it (the
// browser's options message has none), but rejects a ctrlChannel with any
// other value so foreign JSON is never mistaken for ours. ok is false for
// anything that is not a JSON object with a string type.
func parseControl(data []byte) (c control, ok bool) {
	var raw struct {
		CtrlChannel json.RawMessage `json:"ctrlChannel"`
		Type        json.RawMessage `json:"type"`
		Cols        json.RawMessage `json:"cols"`
		Rows        json.RawMessage `json:"rows"`
		Time        json.RawMessage `json:"time"`
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return c, false
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return c, false
	}
	if len(raw.CtrlChannel) > 0 && !isCtrlChannel(raw.CtrlChannel) {
		return c, false
	}
	if err := json.Unmarshal(raw.Type, &c.Type); err != nil || c.Type == "" {
		return c, false
	}
	c.Cols = looseInt(raw.Cols)
	c.Rows = looseInt(raw.Rows)
	if len(raw.Time) > 0 && string(raw.Time) != "null" {
		c.Time = raw.Time
	}
	return c, true
}

// isCtrlChannel reports whether v is 102938 as a JSON number or string.
func isCtrlChannel(v json.RawMessage) bool {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s == session.CtrlChannel
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String() == session.CtrlChannel
	}
	return false
}

// looseInt reads a positive integer given as a JSON number or numeric
// string (JavaScript clients are not strict about either); anything else,
// including fractions, negatives and absurd values, gives 0.
func looseInt(v json.RawMessage) int {
	if len(v) == 0 {
		return 0
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		s = string(v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 1 || f > maxDimension {
		return 0
	}
	return int(f)
}

// maxDimension bounds rows and columns: a pty wants uint16 and no real
// terminal is larger.
const maxDimension = 4096

// termOptions is the part of the client's options message the terminal uses.
type termOptions struct {
	Cols, Rows   int
	RequireLogin bool
}

// parseOptions decodes the options message the relay client stored in
// session.Info.Options; missing or malformed options give the reference
// defaults (80×25, no login).
func parseOptions(data []byte) termOptions {
	o := termOptions{Cols: 80, Rows: 25}
	if len(data) == 0 {
		return o
	}
	var raw struct {
		Cols         json.RawMessage `json:"cols"`
		Rows         json.RawMessage `json:"rows"`
		RequireLogin json.RawMessage `json:"requireLogin"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return o
	}
	if n := looseInt(raw.Cols); n > 0 {
		o.Cols = n
	}
	if n := looseInt(raw.Rows); n > 0 {
		o.Rows = n
	}
	// The reference tests truthiness; accept true, 1 and "true".
	switch string(bytes.TrimSpace(raw.RequireLogin)) {
	case "true", "1", `"true"`:
		o.RequireLogin = true
	}
	return o
}

// ctrlJSON builds an outgoing control message (session.ControlJSON).
func ctrlJSON(typ string, rest ...any) []byte { return session.ControlJSON(typ, rest...) }
