package session

import (
	"encoding/json"
	"math"
)

// TSID is the Windows session the viewer chose ("tsid" in its options
// message, a SessionId from the agent's userSessions answer), and whether
// it chose one. Like the reference core, only a JSON number counts; a
// negative, fractional or out-of-range one is no choice.
func (i Info) TSID() (uint32, bool) {
	if len(i.Options) == 0 {
		return 0, false
	}
	var o struct {
		TSID *float64 `json:"tsid"`
	}
	if json.Unmarshal(i.Options, &o) != nil || o.TSID == nil {
		return 0, false
	}
	v := *o.TSID
	if v < 0 || v > math.MaxUint32 || v != math.Trunc(v) {
		return 0, false
	}
	return uint32(v), true
}
