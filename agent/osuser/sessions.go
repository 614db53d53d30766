package osuser

import "strconv"

// Session is one login session on this machine, as MeshCentral's
// userSessions answer lists them (the web UI's desktop session picker).
type Session struct {
	// ID is the Windows terminal-services session id (the "tsid" a viewer
	// sends back); elsewhere the user's uid, as the C agent keys them.
	ID uint32
	// Station is the window station ("Console", "RDP-Tcp#0", "Services")
	// on Windows, "Console" for the console user elsewhere.
	Station string
	// State is the WTS connect state by its Windows name (see wtsStates);
	// elsewhere "Active" for the console user.
	State  string
	User   string // account name; empty when nobody is logged in there
	Domain string // Windows domain or computer name; "" elsewhere
	UID    string // decimal uid; "" on Windows
}

// wtsStates names WTS_CONNECTSTATE_CLASS values the way the C agent's
// user-sessions module does, which is what the web UI compares against.
var wtsStates = []string{"Active", "Connected", "ConnectQuery", "Shadow", "Disconnected", "Idle", "Listening", "Reset", "Down", "Init"}

// wtsStateName is the name of a WTS_CONNECTSTATE_CLASS value.
func wtsStateName(s uint32) string {
	if int(s) < len(wtsStates) {
		return wtsStates[s]
	}
	return "State" + strconv.FormatUint(uint64(s), 10)
}

// UserSessionsReply is the data of the agent's {"action":"msg",
// "type":"userSessions"} answer: an object keyed by session id holding the
// Active and Connected sessions, each with the fields the web UI reads
// (SessionId, State, StationName, Username, Domain), as the C agent's
// kvm-helper users() builds it. The web UI connects directly when one
// session is listed, shows a picker when several are, and does a plain
// connection when none is, so an empty answer is a valid answer.
func UserSessionsReply(list []Session) map[string]map[string]any {
	out := make(map[string]map[string]any, len(list))
	for _, s := range list {
		if s.State != "Active" && s.State != "Connected" {
			continue
		}
		e := map[string]any{"SessionId": s.ID, "State": s.State, "StationName": s.Station}
		if s.User != "" {
			e["Username"] = s.User
			e["Domain"] = s.Domain
		}
		if s.UID != "" {
			e["uid"] = s.UID
		}
		out[strconv.FormatUint(uint64(s.ID), 10)] = e
	}
	return out
}
