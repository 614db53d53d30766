package files

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/meshgo/meshagent/proto/session"
)

// request is one decoded client message of the files protocol. Fields are
// pulled out one by one so that a single field of an unexpected type only
// loses that field, like the reference's loose JavaScript, and reqid and id
// keep their original JSON so replies echo them exactly (numbers for the web
// UI, strings for meshctrl).
type request struct {
	Action   string
	ReqID    json.RawMessage
	ID       json.RawMessage
	Sub      string
	Ask      string
	Ack      int // startack window; 0 when absent or unusable
	Path     string
	HasPath  bool
	Name     string
	HasName  bool
	Size     int64 // -1 when absent
	Append   bool
	DelFiles []string
	Rec      bool
	OldName  string
	NewName  string
	ScPath   string
	DsPath   string
	Names    []string
	Filter   string
	Files    []string
	Output   string
	Input    string
	Dest     string
	Tag      json.RawMessage

	// control message markers (sessions.md §1.8, §3.2)
	CtrlChannel bool
	Type        string
	HasSDP      bool
	Time        json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// parseRequest decodes a text or binary frame holding a JSON request.
func parseRequest(data []byte) (*request, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errNotObject
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	r := &request{Size: -1}
	r.Action, _ = str(m["action"])
	r.ReqID = raw(m["reqid"])
	r.ID = raw(m["id"])
	r.Sub, _ = str(m["sub"])
	r.Ask, _ = str(m["ask"])
	if n, ok := num(m["ack"]); ok && n >= 1 {
		r.Ack = int(min(n, 1<<20))
	}
	r.Path, r.HasPath = str(m["path"])
	r.Name, r.HasName = str(m["name"])
	if r.Name == "" {
		r.HasName = false
	}
	if n, ok := num(m["size"]); ok && n >= 0 {
		r.Size = n
	}
	r.Append = truthy(m["append"])
	r.DelFiles = strs(m["delfiles"])
	r.Rec = truthy(m["rec"])
	r.OldName, _ = str(m["oldname"])
	r.NewName, _ = str(m["newname"])
	r.ScPath, _ = str(m["scpath"])
	r.DsPath, _ = str(m["dspath"])
	r.Names = strs(m["names"])
	r.Filter, _ = str(m["filter"])
	r.Files = strs(m["files"])
	r.Output, _ = str(m["output"])
	r.Input, _ = str(m["input"])
	r.Dest, _ = str(m["dest"])
	r.Tag = raw(m["tag"])
	r.Type, _ = str(m["type"])
	r.Time = raw(m["time"])
	if v, ok := m["ctrlChannel"]; ok {
		if s, ok := str(v); ok {
			r.CtrlChannel = s == session.CtrlChannel
		} else if n, ok := num(v); ok {
			r.CtrlChannel = n == 102938
		}
	}
	if v, ok := m["sdp"]; ok && string(v) != "null" {
		r.HasSDP = true
	}
	return r, nil
}

// isControl reports whether the message belongs to the control channel
// rather than the files protocol (sessions.md §3.2).
func (r *request) isControl() bool {
	return r.CtrlChannel || (r.Type == "offer" && r.HasSDP)
}

func raw(v json.RawMessage) json.RawMessage {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return nil
	}
	return b.Bytes()
}

func str(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// strs reads an array of strings, skipping members of other types.
func strs(v json.RawMessage) []string {
	var items []json.RawMessage
	if len(v) == 0 || json.Unmarshal(v, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := str(it); ok {
			out = append(out, s)
		}
	}
	return out
}

// num reads an integer given as a JSON number or a numeric string.
func num(v json.RawMessage) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	s := string(v)
	if q, ok := str(v); ok {
		s = q
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// truthy mirrors JavaScript truthiness for the flags clients send.
func truthy(v json.RawMessage) bool {
	switch string(bytes.TrimSpace(v)) {
	case "", "false", "null", "0", `""`:
		return false
	}
	return true
}

// sameID compares two compacted JSON ids.
func sameID(a, b json.RawMessage) bool { return bytes.Equal(a, b) }
