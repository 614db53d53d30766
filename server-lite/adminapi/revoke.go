package adminapi

// Revocation (issue 20, finding 5): deleting or locking a user, removing a
// login token or cutting rights ends everything made from it.

import (
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/relay"
)

// endSessions ends what was made from a user's credentials: all of it when
// tokenUser is "", else only what was made from that login token. Session
// cookies, unused relay tokens, relay sessions (paired or waiting) and
// control.ashx sessions all go.
func (s *Server) endSessions(userID, tokenUser string) {
	s.cookies.revokeUser(userID, tokenUser)
	match := func(g relay.Grant) bool {
		return g.UserID == userID && (tokenUser == "" || g.Credential == tokenUser)
	}
	s.cfg.RelayTokens.Revoke(match)
	n := 0
	if s.cfg.Relay != nil {
		n = s.cfg.Relay.CloseMatching(match)
	}
	s.closeUserSessions(userID, tokenUser)
	s.log.Info("sessions revoked", "user", userID, "token", tokenUser, "relays", n)
}

// endRelays closes relay sessions to the given devices, of one user (or of
// everyone when userID is ""): rights cut, device or group removed.
func (s *Server) endRelays(userID string, nodeIDs map[string]bool) {
	if len(nodeIDs) == 0 {
		return
	}
	match := func(g relay.Grant) bool {
		return (userID == "" || g.UserID == userID) && nodeIDs[g.NodeID]
	}
	s.cfg.RelayTokens.Revoke(match)
	if s.cfg.Relay != nil {
		if n := s.cfg.Relay.CloseMatching(match); n > 0 {
			s.log.Info("relay sessions closed", "user", userID, "devices", len(nodeIDs), "relays", n)
		}
	}
}

// groupDevices returns the ids of a group's devices.
func (s *Server) groupDevices(groupID string) map[string]bool {
	out := map[string]bool{}
	ds, err := s.cfg.Store.Devices()
	if err != nil {
		s.log.Error("list devices", "err", err)
		return out
	}
	for _, d := range ds {
		if d.GroupID == groupID {
			out[d.ID] = true
		}
	}
	return out
}

// tokenExpiry is when the named login token of u expires (zero: never, or
// not a token).
func tokenExpiry(u accounts.User, tokenUser string) time.Time {
	if tokenUser == "" {
		return time.Time{}
	}
	for _, t := range u.LoginTokens {
		if t.TokenUser == tokenUser && t.Expire != 0 {
			return time.UnixMilli(t.Expire)
		}
	}
	return time.Time{}
}
