package adminapi

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/app"
)

// FirstAdmin is the account created on a server's first start. The caller
// prints Password once; it is stored only as a bcrypt hash.
type FirstAdmin struct {
	Name, Password string
}

// Attach builds the admin API over a configured App and mounts its routes
// on the App's mux; call it before App.Start. It also creates the login key
// for meshctrl --loginkeyfile (LoginKeyFile in the data directory). When the store has no users
// it creates the first administrator (returned, else nil) with a random
// password and full rights on every existing group, so the new admin sees
// the default group at once.
func Attach(a *app.App) (*Server, *FirstAdmin, error) {
	acc := accounts.New(accounts.FromStore(a.Store))
	name, pass, created, err := acc.EnsureAdmin()
	if err != nil {
		return nil, nil, fmt.Errorf("create first admin: %w", err)
	}
	var first *FirstAdmin
	if created {
		first = &FirstAdmin{Name: name, Password: pass}
		gs, err := a.Store.Groups()
		if err != nil {
			return nil, nil, fmt.Errorf("list groups: %w", err)
		}
		for _, g := range gs {
			if err := acc.SetLink(accounts.UserID(name), g.ID, accounts.FullRights, false); err != nil {
				return nil, nil, err
			}
		}
	}
	key, err := loadOrCreateLoginKey(a.Store, filepath.Dir(a.MshPath))
	if err != nil {
		return nil, nil, err
	}
	_, portStr, _ := net.SplitHostPort(a.Addr())
	port, _ := strconv.Atoi(portStr)
	s := New(Config{
		Store:         a.Store,
		Accounts:      acc,
		Agents:        registry{a.Agents},
		RelayTokens:   a.RelayTokens,
		ServerName:    "127.0.0.1",
		Port:          port,
		TLSHash:       a.Certs.WebCertHashHex(),
		AgentCertHash: handshake.EncodeID(a.Certs.ServerID[:]),
		// Slows password guessing through the form; meshctrl's x-meshauth
		// path is answered at once, as MeshCentral does.
		LoginFailDelay: 2 * time.Second,
		LoginKey:       key,
	})
	a.Agents.Subscribe(func(e agentconn.Event) {
		// Subscribers must not block the agent's goroutine or keep Data.
		switch e.Kind {
		case agentconn.Message:
			if e.Action == "msg" {
				data := append([]byte(nil), e.Data...)
				go s.AgentMessage(e.NodeID, data)
			}
		case agentconn.Connected:
			go s.NodeConnect(e.NodeID, e.Agent.GroupID, true, e.Agent.Connected)
		case agentconn.Disconnected:
			go s.NodeConnect(e.NodeID, e.Agent.GroupID, false, time.Now())
		}
	})
	s.Register(a.Mux)
	return s, first, nil
}

// registry adapts agentconn's registry to Agents and ScriptPusher.
type registry struct{ r *agentconn.Server }

func (g registry) Connected(nodeID string) (AgentState, bool) {
	ai, ok := g.r.Agent(nodeID)
	if !ok {
		return AgentState{}, false
	}
	return AgentState{ConnectTime: ai.Connected, RemoteAddr: ai.Remote, CoreName: ai.CoreName, CoreHash: ai.CoreHash, Flavor: ai.Flavor}, true
}

func (g registry) SendJSON(nodeID string, v any) error { return g.r.SendJSON(nodeID, v) }

func (g registry) Disconnect(nodeID string) { g.r.Disconnect(nodeID, "removed by an administrator") }

func (g registry) PushScript(nodeID string, script []byte, who string) error {
	return g.r.PushCore(nodeID, script, who)
}

// LoginHelp is the text the main package prints once on first start: the
// new administrator's password (the only time it is shown) and how to log
// in with meshctrl and with server-lite's own CLI. baseURL is e.g.
// wss://127.0.0.1:4443.
func LoginHelp(first *FirstAdmin, baseURL string) string {
	return fmt.Sprintf(`Administrator account created: %s
  password:   %s
  (shown only now; stored as a bcrypt hash)
Log in with MeshCentral's CLI:
  node meshctrl.js serverinfo --url %s --loginuser %s --loginpass '<password>'
or with server-lite's own CLI:
  SERVERLITE_PASS='<password>' server-lite devices --url %s --user %s
meshctrl can also log in without a password with the login key file in the
data directory: --loginuser %s --loginkeyfile <data dir>/%s
`, first.Name, first.Password, baseURL, first.Name, baseURL, first.Name, first.Name, LoginKeyFile)
}
