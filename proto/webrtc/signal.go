package webrtc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/meshgo/meshagent/proto/session"
)

// sigKind names the WebRTC signalling messages of sessions.md §5.2. They
// travel as JSON text frames on the relay and never reach a session handler.
type sigKind int

const (
	sigNone sigKind = iota
	sigOffer
	sigAnswer
	sigWebRTC0
	sigWebRTC1
	sigWebRTC2
)

// signal is one parsed signalling message; sdp is set for offer and answer.
type signal struct {
	kind sigKind
	sdp  string
}

// maxSignal bounds the text frames we try to parse as signalling. Offers
// with a few dozen candidates are a few KiB; anything far larger is not
// ours and goes to the handler untouched.
const maxSignal = 1 << 20

// parseSignal reports whether a text frame is WebRTC signalling.
//
// The browser's offer is its stringified RTCSessionDescription with no
// ctrlChannel; answers and the webrtc0/1/2 markers carry ctrlChannel 102938,
// which the browser writes as a string and sometimes a number elsewhere, so
// both are accepted (sessions.md §1.8, §7 #21). The markers must carry it:
// a bare {"type":"webrtc0"} is somebody else's message and passes through.
// A ctrlChannel other than 102938 is never ours.
func parseSignal(b []byte) (signal, bool) {
	t := bytes.TrimSpace(b)
	if len(t) < 2 || len(t) > maxSignal || t[0] != '{' || !bytes.Contains(t, []byte(`"type"`)) {
		return signal{}, false
	}
	var m struct {
		CtrlChannel json.RawMessage `json:"ctrlChannel"`
		Type        string          `json:"type"`
		SDP         *string         `json:"sdp"`
	}
	if json.Unmarshal(t, &m) != nil {
		return signal{}, false
	}
	hasCtrl := len(m.CtrlChannel) > 0 && string(m.CtrlChannel) != "null"
	if hasCtrl && !isCtrlChannel(m.CtrlChannel) {
		return signal{}, false
	}
	switch m.Type {
	case "offer", "answer":
		if m.SDP == nil || strings.TrimSpace(*m.SDP) == "" {
			return signal{}, false
		}
		k := sigOffer
		if m.Type == "answer" {
			k = sigAnswer
		}
		return signal{kind: k, sdp: *m.SDP}, true
	case "webrtc0", "webrtc1", "webrtc2":
		if !hasCtrl {
			return signal{}, false
		}
		return signal{kind: sigWebRTC0 + sigKind(m.Type[6]-'0')}, true
	}
	return signal{}, false
}

// isCtrlChannel compares a ctrlChannel value loosely with 102938, as the
// JavaScript peers do with ==.
func isCtrlChannel(raw json.RawMessage) bool {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		s = strings.TrimSpace(s)
	} else {
		s = string(raw)
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == 102938
}

// encode renders a signalling message the way the MeshCentral peers write
// it: the offer as a stringified RTCSessionDescription (no ctrlChannel), the
// rest with ctrlChannel first and type second, which is what meshctrl's
// shell and the browser look for (sessions.md §1.8).
func (s signal) encode() []byte {
	sdp, _ := json.Marshal(s.sdp)
	switch s.kind {
	case sigOffer:
		return []byte(`{"type":"offer","sdp":` + string(sdp) + `}`)
	case sigAnswer:
		return []byte(`{"ctrlChannel":"` + session.CtrlChannel + `","type":"answer","sdp":` + string(sdp) + `}`)
	case sigWebRTC0, sigWebRTC1, sigWebRTC2:
		return []byte(`{"ctrlChannel":"` + session.CtrlChannel + `","type":"webrtc` + strconv.Itoa(int(s.kind-sigWebRTC0)) + `"}`)
	}
	return nil
}

// isDCClose reports the data channel's own close request, {"type":"close"}
// as a string message (sessions.md §5.4).
func isDCClose(b []byte) bool {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' || !bytes.Contains(t, []byte(`"close"`)) {
		return false
	}
	var m struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(t, &m) == nil && m.Type == "close"
}
