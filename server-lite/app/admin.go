package app

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/accounts/totp"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/oidc"
	"github.com/meshgo/meshagent/server-lite/updates"
	"github.com/meshgo/meshagent/server-lite/webpage"
)

// loginFailDelay slows password guessing through the login form;
// meshctrl's x-meshauth path is answered at once, as MeshCentral does.
const loginFailDelay = 2 * time.Second

// wireAdmin builds accounts (creating the first administrator on a fresh
// store), the login key for meshctrl --loginkeyfile (LoginKeyFile in the
// data directory) and the admin API; subscribes the API to agent events
// and mounts its routes on Mux. New calls it once the listener is bound
// (the API reports the port).
func (a *App) wireAdmin() error {
	a.Accounts = accounts.New(accounts.FromStore(a.Store))
	// Messaging first: a configuration error (a secret file others can
	// read) must stop the start before the first administrator's one-time
	// password is made and printed.
	var err error
	if a.cfg.Notify.Enabled() {
		a.Notify, err = notify.New(notify.Config{Settings: a.cfg.Notify, Store: a.Store, Accounts: a.Accounts,
			Online: func(id string) bool { _, ok := a.Agents.Agent(id); return ok }, OfflineUnit: a.cfg.NotifyOfflineUnit, Logger: a.log})
		if err != nil {
			return err
		}
		a.log.Info("messaging enabled", "services", fmt.Sprint(a.Notify.Services()), "msg2factor", a.Notify.Msg2Factor())
		if a.Notify.Msg2Factor() {
			a.Accounts.AddFactor(a.Notify.LoginFactor()) // accounts.SecondFactor
		}
	}
	a.Accounts.AddFactor(totp.Factor{})
	if a.cfg.PasswordRules != nil {
		a.Accounts.SetPasswordRules(*a.cfg.PasswordRules)
	}
	first, err := adminapi.EnsureFirstAdmin(a.Store, a.Accounts)
	if err != nil {
		return err
	}
	a.FirstAdmin = first
	key, err := adminapi.LoadOrCreateLoginKey(a.Store, a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.wireUpdates()
	a.API = adminapi.New(adminapi.Config{
		Store:          a.Store,
		Accounts:       a.Accounts,
		Agents:         agentRegistry{a.Agents, a.Updates},
		RelayTokens:    a.RelayTokens,
		Relay:          a.Relay,
		ServerName:     a.Hostname(),
		Hostnames:      a.Hostnames(),
		Port:           a.ln.Addr().(*net.TCPAddr).Port,
		TLSHash:        a.WebCertHashHex,
		AgentCertHash:  handshake.EncodeID(a.Certs.ServerID[:]),
		LoginFailDelay: loginFailDelay,
		LoginKey:       key,
		Messaging:      a.Notify,
		Logger:         a.log,
	})
	// One subscriber, so one ordered queue (agentconn.Subscribe): the
	// admin API sees each agent's replies in the order it sent them and a
	// connect before the disconnect that follows it.
	api, nt := a.API, a.Notify
	unsubscribeUpdates := a.Agents.Subscribe(a.Updates.Event)
	unsubscribeAPI := a.Agents.Subscribe(func(e agentconn.Event) {
		if nt != nil {
			notifyEvent(nt, e) // never waits: Post is bounded and asynchronous
		}
		if e.Lost > 0 {
			a.log.Warn("admin API missed agent events: live views may be stale until refreshed", "lost", e.Lost)
		}
		switch e.Kind {
		case agentconn.Message:
			if e.Action == "msg" {
				api.AgentMessage(e.NodeID, e.Data)
			}
		case agentconn.Connected:
			api.NodeConnect(e.NodeID, e.Agent.GroupID, true, e.Agent.Connected)
		case agentconn.Disconnected:
			api.NodeConnect(e.NodeID, e.Agent.GroupID, false, time.Now())
		}
	})
	a.unsubscribe = func() { unsubscribeAPI(); unsubscribeUpdates() }
	api.Register(a.Mux)
	if oc := a.cfg.OIDC; oc != nil {
		c := *oc
		if c.RedirectURL == "" {
			c.RedirectURL = "https://" + net.JoinHostPort(a.Hostname(), fmt.Sprint(a.ln.Addr().(*net.TCPAddr).Port)) + "/oidc/callback"
		}
		if c.Logger == nil {
			c.Logger = a.log
		}
		o, err := oidc.New(c, a.Accounts, a.API)
		if err != nil {
			return err
		}
		o.Register(a.Mux)
		a.log.Info("OpenID Connect sign-in enabled", "issuer", c.Issuer, "redirect", c.RedirectURL)
	} else {
		oidc.Disabled(a.Mux)
	}
	// The web page (GET /, /static/) speaks the same control.ashx and
	// meshrelay.ashx as meshctrl: it adds no API of its own.
	webpage.Register(a.Mux)
	return nil
}

// notifyEvent turns an agent event into a device notice: connects,
// disconnects, the agent's error log (MeshCentral's "errorlog" message)
// and a core dump report ("getcoredump" with value true).
func notifyEvent(n *notify.Notifier, e agentconn.Event) {
	switch e.Kind {
	case agentconn.Connected:
		n.Post(notify.DeviceEvent{Kind: notify.Connect, NodeID: e.NodeID, GroupID: e.Agent.GroupID, Name: e.Agent.Name})
	case agentconn.Disconnected:
		n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: e.NodeID, GroupID: e.Agent.GroupID, Name: e.Agent.Name})
	case agentconn.Message:
		switch e.Action {
		case "errorlog":
			var m struct {
				Log []struct {
					M string `json:"m"`
				} `json:"log"`
			}
			if json.Unmarshal(e.Data, &m) == nil && len(m.Log) > 0 {
				n.Post(notify.DeviceEvent{Kind: notify.AgentError, NodeID: e.NodeID, GroupID: e.Agent.GroupID, Name: e.Agent.Name, Detail: m.Log[len(m.Log)-1].M})
			}
		case "getcoredump":
			var m struct {
				Value bool `json:"value"`
			}
			if json.Unmarshal(e.Data, &m) == nil && m.Value {
				n.Post(notify.DeviceEvent{Kind: notify.CoreCrash, NodeID: e.NodeID, GroupID: e.Agent.GroupID, Name: e.Agent.Name})
			}
		}
	}
}

// agentRegistry adapts agentconn's registry to adminapi.Agents and
// adminapi.ScriptPusher.
type agentRegistry struct {
	r *agentconn.Server
	u *updates.Manager
}

func (g agentRegistry) Connected(nodeID string) (adminapi.AgentState, bool) {
	ai, ok := g.r.Agent(nodeID)
	if !ok {
		return adminapi.AgentState{}, false
	}
	return adminapi.AgentState{ConnectTime: ai.Connected, RemoteAddr: ai.Remote, CoreName: ai.CoreName, CoreHash: ai.CoreHash, Flavor: ai.Flavor}, true
}

func (g agentRegistry) SendJSON(nodeID string, v any) error { return g.r.SendJSON(nodeID, v) }

func (g agentRegistry) Disconnect(nodeID string) {
	g.r.Disconnect(nodeID, "removed by an administrator")
}

func (g agentRegistry) PushScript(nodeID string, script []byte, who string) error {
	return g.r.PushCore(nodeID, script, who)
}
