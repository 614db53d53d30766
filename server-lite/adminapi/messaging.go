package adminapi

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/notify"
)

// Messaging commands (server-lite/notify), under MeshCentral's names where
// it has them (meshuser.js): verifyMessaging, confirmMessaging,
// removeMessaging, msguser, changemeshnotify, changeusernotify; plus
// server-lite's own mutenotify and notifysettings. Unlike MeshCentral each
// is answered (a result naming what went wrong, or "ok").

// siteLockSettings is MeshCentral's SITERIGHT_LOCKSETTINGS: the user may
// not change their own account settings.
const siteLockSettings uint32 = 1024

// confirmWrongDelay slows wrong verification codes (MeshCentral: 2 to 6 s,
// one guess at a time).
var confirmWrongDelay = func() {
	var b [2]byte
	rand.Read(b[:])
	time.Sleep(2*time.Second + time.Duration(binary.BigEndian.Uint16(b[:])%4096)*time.Millisecond)
}

// messagingCmd handles one messaging command; false when action is not one.
func (s *Server) messagingCmd(c *conn, u accounts.User, r req, action string) bool {
	switch action {
	case "verifyMessaging", "confirmMessaging", "removeMessaging", "msguser", "changemeshnotify", "changeusernotify", "mutenotify", "notifysettings":
	default:
		return false
	}
	m := s.cfg.Messaging
	if m == nil || len(m.Services()) == 0 {
		c.result(r, "Messaging server not enabled")
		return true
	}
	own := action != "msguser"
	if own && c.fromToken && action != "notifysettings" {
		c.result(r, "Not allowed with a login token") // MeshCentral ignores these from token sessions
		return true
	}
	if own && !u.IsSiteAdmin() && u.SiteAdmin&siteLockSettings != 0 && action != "notifysettings" {
		c.result(r, "Account settings are locked")
		return true
	}
	switch action {
	case "verifyMessaging":
		s.cmdVerifyMessaging(c, u, r, m)
	case "confirmMessaging":
		s.cmdConfirmMessaging(c, u, r, m)
	case "removeMessaging":
		if err := m.RemoveHandle(u.ID); err != nil {
			c.result(r, "Internal error")
			return true
		}
		s.audit(auditEntry{userID: u.ID, action: "accountchange", from: c.ip, msg: "Removed messaging account of user " + quoteName(u.Name)})
		c.result(r, "ok")
	case "msguser":
		s.cmdMsgUser(c, u, r, m)
	case "changemeshnotify", "changeusernotify":
		s.cmdChangeNotify(c, u, r, m, action)
	case "mutenotify":
		n := normID("node", r.s("nodeid"))
		if rights, _, err := s.deviceRights(u, n); n == "" || err != nil || !rights.Visible {
			c.result(r, "Invalid device identifier")
			return true
		}
		mute := true
		if v, ok := r["mute"].(bool); ok {
			mute = v
		}
		if err := m.Mute(u.ID, n, mute); err != nil {
			c.result(r, err.Error())
			return true
		}
		c.result(r, "ok")
	case "notifysettings":
		p := m.UserPrefs(u.ID)
		subs := map[string]any{}
		for k, v := range p.Subs {
			subs[k] = map[string]any{"notify": v.Events, "offline": v.OfflineMinutes}
		}
		muted := []string{}
		for k := range p.Muted {
			muted = append(muted, k)
		}
		var svcs []string
		for _, sv := range m.Services() {
			svcs = append(svcs, string(sv))
		}
		c.reply(r, map[string]any{"result": "ok", "msghandle": p.Handle, "subs": subs, "muted": muted, "services": svcs, "msg2factor": m.Msg2Factor()})
	}
	return true
}

// handleFor builds a handle as MeshCentral's verifyMessaging does from a
// service number (1 Telegram, 64 ntfy; 4096 e-mail and 8192 webhook are
// server-lite's) or, for our CLI, a service name. Telegram's Bot API needs
// a chat id; a name is taken as an @channel.
func handleFor(service any, handle string) (string, error) {
	var svc notify.Service
	switch v := service.(type) {
	case float64:
		sv, ok := notify.ServiceByBit(int(v))
		if !ok {
			return "", errors.New("Unknown messaging service")
		}
		svc = sv
	case string:
		svc = notify.Service(v)
		if _, ok := notify.ServiceBits[svc]; !ok {
			if n, err := strconv.Atoi(v); err == nil {
				return handleFor(float64(n), handle)
			}
			return "", errors.New("Unknown messaging service")
		}
	default:
		return "", errors.New("Unknown messaging service")
	}
	if svc == notify.Telegram && strings.Trim(strings.TrimPrefix(handle, "-"), "0123456789") != "" {
		handle = "@" + strings.TrimPrefix(handle, "@")
	}
	h, err := notify.ParseHandle(string(svc) + ":" + handle)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

func (s *Server) cmdVerifyMessaging(c *conn, u accounts.User, r req, m *notify.Notifier) {
	handle, ok := r.str("handle")
	if !ok || handle == "" || len(handle) > notify.MaxHandle {
		c.result(r, "Invalid handle")
		return
	}
	h, err := handleFor(r["service"], handle)
	if err != nil {
		c.result(r, err.Error())
		return
	}
	cookie, err := m.StartVerify(c.id, u.ID, h)
	if err != nil {
		c.reply(r, map[string]any{"success": false, "result": err.Error()})
		return
	}
	// MeshCentral answers after the provider accepted the message; here
	// it is queued (delivery is retried), so success means queued.
	c.reply(r, map[string]any{"cookie": cookie, "success": true, "result": "ok"})
}

func (s *Server) cmdConfirmMessaging(c *conn, u accounts.User, r req, m *notify.Notifier) {
	cookie, _ := r.str("cookie")
	code, _ := r.str("code")
	if cookie == "" || code == "" || len(code) > 16 || len(cookie) > 128 {
		c.result(r, "Invalid code")
		return
	}
	// A wrong code is answered after a delay, off the session's read loop
	// (MeshCentral uses a timer the same way).
	go func() {
		h, err := m.ConfirmVerify(c.id, u.ID, cookie, code, confirmWrongDelay)
		if err != nil {
			// MeshCentral's answer to a wrong code asks for it again.
			c.reply(r, map[string]any{"action": "verifyMessaging", "cookie": cookie, "success": true, "result": err.Error()})
			return
		}
		s.audit(auditEntry{userID: u.ID, action: "accountchange", from: c.ip, msg: "Verified messaging account of user " + quoteName(u.Name)})
		c.reply(r, map[string]any{"result": "ok", "msghandle": h})
	}()
}

func (s *Server) cmdMsgUser(c *conn, u accounts.User, r req, m *notify.Notifier) {
	if !u.HasSite(accounts.SiteManageUsers) {
		c.result(r, "No user management rights")
		return
	}
	id, _ := r.str("userid")
	msg, _ := r.str("msg")
	if id == "" || len(id) > 2048 {
		c.result(r, "Invalid username")
		return
	}
	if msg == "" || len([]rune(msg)) > notify.MaxText {
		c.result(r, "Invalid message")
		return
	}
	if !strings.HasPrefix(id, "user/") {
		id = accounts.UserID(id)
	}
	id = normID("user", id)
	target, err := s.cfg.Accounts.Get(id)
	if err != nil {
		c.result(r, "Invalid username")
		return
	}
	if err := m.SendUser(target.ID, u.Name, msg, r.s("idempotencyKey")); err != nil {
		c.result(r, err.Error())
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "msguser", from: c.ip, msg: "Message queued for user " + quoteName(target.Name)})
	c.result(r, "ok")
}

func (s *Server) cmdChangeNotify(c *conn, u accounts.User, r req, m *notify.Notifier, action string) {
	var target string
	if action == "changemeshnotify" {
		target = normID("mesh", r.s("meshid"))
		if target == "" || !accounts.EffectiveRights(u, target, "").Visible {
			c.result(r, "Access denied")
			return
		}
	} else {
		target = normID("node", r.s("nodeid"))
		if rights, _, err := s.deviceRights(u, target); target == "" || err != nil || !rights.Visible {
			c.result(r, "Invalid device identifier")
			return
		}
	}
	flags, ok := r.num("notify")
	if !ok || flags < 0 || flags > 1<<31 {
		c.result(r, "Invalid notification flags")
		return
	}
	off, _ := r.num("offline")
	if err := m.SetSub(u.ID, target, uint32(flags), int(off)); err != nil {
		c.result(r, err.Error())
		return
	}
	c.result(r, "ok")
}
