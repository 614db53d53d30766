// Package app is server-lite's composition root: the one place that builds
// and wires every part (certificates, store, accounts, agent.ashx,
// meshrelay.ashx, /meshsettings and the admin API with control.ashx) on one
// TLS listener bound to loopback. The main package only parses flags and
// calls New and Start; the end-to-end tests start the server the same way
// (through server-lite/servertest).
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/msh"
	"github.com/meshgo/meshagent/server-lite/relay"
	"github.com/meshgo/meshagent/server-lite/store"
)

// Config is server-lite's configuration.
type Config struct {
	DataDir string // created 0700 on first start
	Listen  string // host:port; the host must be a loopback address
	// CoreFile is a script pushed to agents as their core; "" = built-in.
	CoreFile string
	Logger   *slog.Logger
	// AgentKeyBits overrides the agent-server key size on first start
	// (tests use 2048; production keeps RSA-3072).
	AgentKeyBits int
	// Agent tunes agent.ashx (timeouts, limits); Certs, Store, Logger and
	// DefaultCore are filled in by New.
	Agent agentconn.Config
	// Relay tunes meshrelay.ashx; Authorizer defaults to Relay tokens
	// issued through App.RelayTokens.
	Relay relay.Config
	// EventRetention is how long the event log keeps entries: 0 means
	// DefaultEventRetention, a negative value keeps them forever. Every
	// agent connect and disconnect is an event, so without a limit the
	// database grows for as long as the server runs.
	EventRetention time.Duration
}

// DefaultEventRetention is MeshCentral's default for its event log
// (settings dbExpire.events: 20 days).
const DefaultEventRetention = 20 * 24 * time.Hour

// pruneEvery is how often expired events are deleted.
const pruneEvery = time.Hour

// DefaultGroupName is the device group created on first start.
const DefaultGroupName = "Default"

// MshFile is the name of the default group's .msh in the data directory.
const MshFile = "meshagent.msh"

// App is a configured server-lite.
type App struct {
	Certs       *certs.Set
	Store       *store.Store
	Agents      *agentconn.Server
	Relay       *relay.Server
	RelayTokens *relay.Tokens
	// Mux holds every route; the admin API adds its own (control.ashx,
	// login...) before Start.
	Mux *http.ServeMux
	// Accounts and API are the admin side: users and rights, and
	// control.ashx (meshctrl and the CLI) with its login routes.
	Accounts *accounts.Manager
	API      *adminapi.Server
	// FirstAdmin is the administrator created by this start (the store had
	// no users), else nil; its password is shown only now.
	FirstAdmin   *adminapi.FirstAdmin
	DefaultGroup store.Group
	MshPath      string // the default group's .msh
	FirstStart   bool   // certificates were created by this start

	cfg         Config
	unsubscribe func()
	ln          net.Listener
	srv         *http.Server
	log         *slog.Logger
	stopPrune   chan struct{}
	pruneDone   chan struct{}
}

// New loads or creates the data directory, the identity, the default group
// and the first administrator, binds the listener (so the port, and thus
// the .msh, are known before Start) and wires every part. It does not serve
// yet.
func New(cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:4443"
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen address %q: server-lite binds loopback addresses only", cfg.Listen)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	set, created, err := certs.LoadOrCreate(cfg.DataDir, certs.Options{AgentKeyBits: cfg.AgentKeyBits})
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "server-lite.db"), store.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	a := &App{Certs: set, Store: st, Mux: http.NewServeMux(), FirstStart: created, cfg: cfg, log: cfg.Logger}
	fail := func(err error) (*App, error) { st.Close(); return nil, err }

	groups, err := st.Groups()
	if err != nil {
		return fail(err)
	}
	if len(groups) == 0 {
		g, err := st.CreateGroup(DefaultGroupName)
		if err != nil {
			return fail(err)
		}
		st.AppendEvent(store.Event{Kind: store.EvAdmin, Who: "server", Action: "create default group", Msg: g.ID})
		groups = append(groups, g)
	}
	a.DefaultGroup = groups[0]
	for _, g := range groups {
		if g.Name == DefaultGroupName {
			a.DefaultGroup = g
			break
		}
	}

	agentCfg := cfg.Agent
	agentCfg.Certs, agentCfg.Store, agentCfg.Logger = set, st, cfg.Logger
	if cfg.CoreFile != "" {
		b, err := os.ReadFile(cfg.CoreFile)
		if err != nil {
			return fail(fmt.Errorf("core file: %w", err))
		}
		agentCfg.DefaultCore = b
	}
	a.Agents = agentconn.New(agentCfg)

	relayCfg := cfg.Relay
	relayCfg.Logger = cfg.Logger
	if relayCfg.Authorizer == nil {
		a.RelayTokens = relay.NewTokens()
		relayCfg.Authorizer = a.RelayTokens
	}
	a.Relay = relay.New(relayCfg)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	a.ln = ln

	a.MshPath = filepath.Join(cfg.DataDir, MshFile)
	m, err := a.Msh(a.DefaultGroup)
	if err != nil {
		ln.Close()
		return fail(err)
	}
	if err := os.WriteFile(a.MshPath, m, 0o600); err != nil {
		ln.Close()
		return fail(fmt.Errorf("write .msh: %w", err))
	}

	a.Mux.Handle("/agent.ashx", a.Agents)
	a.Mux.Handle("/meshrelay.ashx", a.Relay)
	a.Mux.Handle("/meshsettings", msh.Handler(st, set.ServerIDHex(), a.AgentURL()))
	if err := a.wireAdmin(); err != nil {
		ln.Close()
		return fail(err)
	}
	return a, nil
}

// Addr is the bound address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is the HTTPS base URL, e.g. https://127.0.0.1:4443.
func (a *App) URL() string { return "https://" + a.Addr() }

// AgentURL is what agents dial: wss://127.0.0.1:PORT/agent.ashx.
func (a *App) AgentURL() string { return "wss://" + a.Addr() + "/agent.ashx" }

// Msh returns the .msh for a group.
func (a *App) Msh(g store.Group) ([]byte, error) {
	return msh.Build(msh.Settings{Group: g, ServerID: a.Certs.ServerIDHex(), MeshServer: a.AgentURL()})
}

// TLSConfig is the server's TLS configuration. Session tickets stay on (Go's
// default) so reconnecting agents and the load generator resume TLS
// sessions instead of paying a full key exchange.
func (a *App) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{a.Certs.Web},
		MinVersion:   tls.VersionTLS12,
	}
}

// Start serves in the background until Close.
func (a *App) Start() {
	a.srv = &http.Server{
		Handler:           a.Mux,
		TLSConfig:         a.TLSConfig(),
		ReadHeaderTimeout: 20 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(slogWriter{a.log}, "", 0),
	}
	go func() {
		err := a.srv.ServeTLS(a.ln, "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("server stopped", "err", err)
		}
	}()
	if keep := a.eventRetention(); keep > 0 {
		a.stopPrune, a.pruneDone = make(chan struct{}), make(chan struct{})
		go a.pruneEvents(keep)
	}
}

func (a *App) eventRetention() time.Duration {
	if a.cfg.EventRetention == 0 {
		return DefaultEventRetention
	}
	return a.cfg.EventRetention
}

// pruneEvents deletes events older than keep now and every pruneEvery
// (or every keep, if shorter) until Close.
func (a *App) pruneEvents(keep time.Duration) {
	defer close(a.pruneDone)
	every := min(pruneEvery, keep)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := a.Store.PruneEvents(time.Now().Add(-keep))
		switch {
		case err != nil:
			a.log.Warn("event log pruning failed", "err", err)
		case n > 0:
			a.log.Debug("event log pruned", "deleted", n, "olderThan", keep.String())
		}
		select {
		case <-a.stopPrune:
			return
		case <-t.C:
		}
	}
}

// Close stops serving, closes hijacked connections' store and releases the
// database.
func (a *App) Close() error {
	// control.ashx sessions are hijacked connections: http.Server.Shutdown
	// does not end them.
	a.API.Close()
	if a.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.srv.Shutdown(ctx)
		cancel()
		a.srv.Close()
	} else {
		a.ln.Close()
	}
	a.Agents.Shutdown() // also waits for the admin API to handle queued agent events
	a.unsubscribe()
	a.Relay.Close()
	if a.stopPrune != nil {
		close(a.stopPrune)
		<-a.pruneDone
	}
	return a.Store.Close()
}

// slogWriter routes net/http's error log (TLS handshake failures from
// scanners, mostly) to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
