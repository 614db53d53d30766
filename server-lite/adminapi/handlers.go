package adminapi

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// req is one decoded control.ashx request.
type req map[string]any

func (r req) str(k string) (string, bool) { v, ok := r[k].(string); return v, ok }
func (r req) s(k string) string           { v, _ := r[k].(string); return v }

// num returns an integral JSON number.
func (r req) num(k string) (int64, bool) {
	f, ok := r[k].(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func (r req) boolean(k string) bool { v, _ := r[k].(bool); return v }

// strs accepts a JSON array of strings (non-strings are skipped).
func (r req) strs(k string) ([]string, bool) {
	a, ok := r[k].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out, true
}

// reply sends m with the request's action (unless set), responseid and tag.
func (c *conn) reply(r req, m map[string]any) {
	if _, ok := m["action"]; !ok {
		m["action"] = r.s("action")
	}
	if v, ok := r["responseid"]; ok {
		m["responseid"] = v
	}
	if v, ok := r["tag"]; ok {
		m["tag"] = v
	}
	c.send(m)
}

func (c *conn) result(r req, result string) { c.reply(r, map[string]any{"result": result}) }

// handle processes one request; false ends the session.
func (s *Server) handle(c *conn, data []byte) (keep bool) {
	var r req
	if err := json.Unmarshal(data, &r); err != nil || r == nil {
		return true // MeshCentral ignores malformed requests silently
	}
	action, _ := r.str("action")
	if len(action) < 3 || len(action) > 32 {
		return true
	}
	u, err := s.cfg.Accounts.Get(c.userID)
	if err != nil {
		return false // account deleted meanwhile
	}
	// Locked meanwhile, or the login token the session was opened with is
	// gone or expired: the session ends, as it would not open again.
	if !u.IsSiteAdmin() && u.SiteAdmin&accounts.SiteLocked != 0 {
		s.endSessions(u.ID, "")
		return false
	}
	if c.fromToken && !accounts.TokenValid(u, c.tokenUser, time.Now()) {
		s.endSessions(u.ID, c.tokenUser)
		return false
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control.ashx handler panic", "action", action, "panic", fmt.Sprint(p))
			c.result(r, "Internal error")
			keep = true
		}
	}()
	switch action {
	case "ping":
		c.send(map[string]any{"action": "pong"})
	case "pong":
	case "close":
		return false
	case "serverinfo":
		c.reply(r, map[string]any{"serverinfo": s.serverInfo()})
	case "userinfo":
		c.reply(r, map[string]any{"userinfo": safeUser(u)})
	case "meshes":
		s.cmdMeshes(c, u, r)
	case "nodes":
		s.cmdNodes(c, u, r)
	case "users":
		s.cmdUsers(c, u, r)
	case "adduser":
		s.cmdAddUser(c, u, r)
	case "deleteuser":
		s.cmdDeleteUser(c, u, r)
	case "edituser":
		s.cmdEditUser(c, u, r)
	case "changepassword":
		s.cmdChangePassword(c, u, r)
	case "changeuserpass":
		s.cmdChangeUserPass(c, u, r)
	case "otpauth-request":
		s.cmdOTPRequest(c, u, r)
	case "otpauth-setup":
		s.cmdOTPSetup(c, u, r)
	case "otpauth-clear":
		s.cmdOTPClear(c, u, r)
	case "createmesh":
		s.cmdCreateMesh(c, u, r)
	case "deletemesh":
		s.cmdDeleteMesh(c, u, r)
	case "addmeshuser":
		s.cmdAddMeshUser(c, u, r)
	case "runcommands":
		s.cmdRunCommands(c, u, r)
	case "getsysinfo", "getnetworkinfo", "lastconnect":
		s.cmdDeviceInfo(c, u, r, action)
	case "events":
		s.cmdEvents(c, u, r)
	case "authcookie":
		s.cmdAuthCookie(c, u, r)
	case "msg":
		s.cmdMsg(c, u, r)
	case "toast":
		s.cmdToast(c, u, r)
	case "poweraction":
		s.cmdPower(c, u, r)
	case "wakedevices":
		s.cmdWake(c, u, r)
	case "changedevice":
		s.cmdChangeDevice(c, u, r)
	case "removedevices":
		s.cmdRemoveDevices(c, u, r)
	case "createLoginToken":
		s.cmdCreateLoginToken(c, u, r)
	case "loginTokens":
		s.cmdLoginTokens(c, u, r)
	case "pushscript":
		s.cmdPushScript(c, u, r)
	case "devicecores":
		s.cmdDeviceCores(c, u, r)
	case "agentupdate":
		s.cmdAgentUpdate(c, u, r)
	case "agentupdates":
		s.cmdAgentUpdates(c, u, r)
	case "agentupdatecancel":
		s.cmdAgentUpdateCancel(c, u, r)
	default:
		if s.messagingCmd(c, u, r, action) { // messaging.go
			break
		}
		// MeshCentral stays silent here and clients hang; answer instead (§6.4).
		c.result(r, "Unknown action")
	}
	return true
}
