// Package app is server-lite's composition root: the one place that builds
// and wires every part (certificates, store, accounts, agent.ashx,
// meshrelay.ashx, /meshsettings, /meshagents and the admin API with
// control.ashx) on one TLS listener (any address; the quick start keeps
// 127.0.0.1), plus an optional plain-HTTP listener that only redirects. The
// main package only parses its settings and calls New and Start; the
// end-to-end tests start the server the same way (through
// server-lite/servertest).
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshgo/meshagent/internal/atomicfile"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/agentdl"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/msh"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/oidc"
	"github.com/meshgo/meshagent/server-lite/relay"
	"github.com/meshgo/meshagent/server-lite/store"
	"github.com/meshgo/meshagent/server-lite/updates"
)

// Config is server-lite's configuration.
type Config struct {
	DataDir string // created 0700 on first start
	Listen  string // host:port, any address ("0.0.0.0:4443", "[::]:443")
	// Hostnames are the names and addresses agents and browsers reach the
	// server by: all go into the web certificate (reissued when one is
	// missing), the first is written into .msh files and shown to admins.
	// Empty: the listen address if it is a specific one, else the
	// machine's host name.
	Hostnames []string
	// WebCertFile and WebKeyFile are the administrator's own TLS
	// certificate (PEM, chain after the leaf) and key, presented to
	// browsers, meshctrl and agents instead of server-lite's own web
	// certificate; App.ReloadWebCert reads them again. The agent-server
	// certificate (the ServerID agents pin) stays server-lite's own.
	WebCertFile, WebKeyFile string
	// HTTPRedirect, if set, is a host:port for plain HTTP that answers
	// everything with a redirect to HTTPS.
	HTTPRedirect string
	// Downloads configures /meshagents (agent binaries and install
	// scripts); the zero value serves nothing but 404s.
	Downloads agentdl.Config
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
	// Notify configures messaging (server-lite/notify): providers, batch
	// window, the messaged login factor. No provider: messaging is off.
	Notify notify.Settings
	// NotifyOfflineUnit shortens the "minutes" of offline subscriptions
	// (tests); 0 means a minute.
	NotifyOfflineUnit time.Duration
	// PasswordRules, when set, replace accounts.DefaultPasswordRules for
	// passwords people choose (new accounts, changes, resets).
	PasswordRules *accounts.PasswordRules
	// LockAgentDownload is MeshCentral's lockAgentDownload: /meshagents
	// and /meshsettings only for a signed-in browser, a group's .msh only
	// for users with the edit-group right on it. Off (MeshCentral's
	// default): anyone who has the URL downloads.
	LockAgentDownload bool
	// OIDC, when set, enables OpenID Connect sign-in; an empty
	// RedirectURL becomes https://<first host name>:<port>/oidc/callback.
	OIDC *oidc.Config
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
	// Updates runs agent self-update rollouts (server-lite/updates).
	Updates *updates.Manager
	// Mux holds every route; the admin API adds its own (control.ashx,
	// login...) before Start.
	Mux *http.ServeMux
	// Accounts and API are the admin side: users and rights, and
	// control.ashx (meshctrl and the CLI) with its login routes.
	Accounts *accounts.Manager
	API      *adminapi.Server
	// Notify is the messaging service, nil when no provider is configured.
	Notify *notify.Notifier
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
	hostnames   []string
	web         *webCert
	redirLn     net.Listener
	redirSrv    *http.Server
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
	hostnames, err := hostnamesFor(cfg.Listen, cfg.Hostnames, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if (cfg.WebCertFile == "") != (cfg.WebKeyFile == "") {
		return nil, errors.New("web certificate: give both the certificate and the key file, or neither")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	set, created, err := certs.LoadOrCreate(cfg.DataDir, certs.Options{AgentKeyBits: cfg.AgentKeyBits, Hosts: hostnames})
	if err != nil {
		return nil, err
	}
	set, reissued, err := certs.EnsureWebHosts(cfg.DataDir, set, hostnames)
	if err != nil {
		return nil, err
	}
	if reissued {
		cfg.Logger.Info("web certificate reissued for new host names", "hosts", strings.Join(hostnames, ","), "sha384", set.WebCertHashHex())
	}
	web, err := newWebCert(set.Web, cfg.WebCertFile, cfg.WebKeyFile, hostnames[0])
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "server-lite.db"), store.Options{Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	a := &App{Certs: set, Store: st, Mux: http.NewServeMux(), FirstStart: created, cfg: cfg, log: cfg.Logger, hostnames: hostnames, web: web}
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
	agentCfg.AcceptWebHash = web.accept
	agentCfg.UpdateBlock = func(nodeID string, msg []byte) []byte { return a.Updates.Block(nodeID, msg) }
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
	if err := a.startRedirect(); err != nil {
		ln.Close()
		return fail(err)
	}

	a.MshPath = filepath.Join(cfg.DataDir, MshFile)
	m, err := a.Msh(a.DefaultGroup)
	if err != nil {
		a.closeListeners()
		return fail(err)
	}
	// Written whole under a temporary name and renamed: the listeners are
	// already open, so a reader that waits for the file (loadgen, a
	// script) must never see it half written.
	if err := atomicfile.Write(a.MshPath, m, 0o600); err != nil {
		a.closeListeners()
		return fail(fmt.Errorf("write .msh: %w", err))
	}
	dl := cfg.Downloads
	dl.Logger, dl.Msh, dl.TrustedCert = cfg.Logger, a.groupMsh, web.Trusted
	downloads, err := agentdl.New(dl)
	if err != nil {
		a.closeListeners()
		return fail(err)
	}

	a.Mux.Handle("/agent.ashx", a.Agents)
	a.Mux.Handle("/meshrelay.ashx", a.Relay)
	if err := a.wireAdmin(); err != nil {
		a.closeListeners()
		return fail(err)
	}
	var settingsH, downloadsH http.Handler = msh.Handler(st, set.ServerIDHex(), a.AgentURL()), downloads
	if cfg.LockAgentDownload {
		settingsH, downloadsH = a.lockDownloads(settingsH, settingsGroup), a.lockDownloads(downloadsH, downloadGroup)
	}
	a.Mux.Handle("/meshsettings", settingsH)
	a.Mux.Handle("/meshagents", downloadsH)
	return a, nil
}

func (a *App) closeListeners() {
	a.ln.Close()
	if a.redirLn != nil {
		a.redirLn.Close()
	}
}

// groupMsh is the .msh of the agent group with this id ("mesh//..." or
// without the prefix).
func (a *App) groupMsh(id string) ([]byte, error) {
	g, err := a.Store.Group("mesh//" + strings.TrimPrefix(id, "mesh//"))
	if err != nil {
		return nil, err
	}
	if g.MType != store.MeshTypeAgent {
		return nil, fmt.Errorf("group %s is not an agent group", g.ID)
	}
	return a.Msh(g)
}

// Addr is the bound address, e.g. 0.0.0.0:4443.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Hostname is the primary name: the one in .msh files and URLs.
func (a *App) Hostname() string { return a.hostnames[0] }

// Hostnames are every name in the web certificate the server was given.
func (a *App) Hostnames() []string { return slices.Clone(a.hostnames) }

func (a *App) port() string {
	_, p, _ := net.SplitHostPort(a.Addr())
	return p
}

// Host is Hostname:port, what agents and browsers dial.
func (a *App) Host() string { return net.JoinHostPort(a.Hostname(), a.port()) }

// URL is the HTTPS base URL, e.g. https://server.example:4443.
func (a *App) URL() string { return "https://" + a.Host() }

// AgentURL is what agents dial: wss://<hostname>:PORT/agent.ashx.
func (a *App) AgentURL() string { return "wss://" + a.Host() + "/agent.ashx" }

// WebCertHashHex is the full hash (hex SHA-384) of the web certificate
// served now: server-lite's own or the administrator's.
func (a *App) WebCertHashHex() string { return hexHash(a.web.Hash()) }

// WebCert is the web certificate served now.
func (a *App) WebCert() *x509.Certificate { return a.web.Leaf() }

// ReloadWebCert reads the administrator's certificate and key files again
// (main does on SIGHUP); new connections get the new certificate, open
// ones keep theirs. Agents connected before keep working: the relay
// messages name the new certificate's hash (servertlshash), and hashes of
// recently served certificates stay acceptable in the handshake. Without
// Config.WebCertFile it does nothing. On error the old certificate stays.
func (a *App) ReloadWebCert() (changed bool, err error) {
	changed, err = a.web.Reload()
	if changed {
		a.log.Info("web certificate reloaded", "sha384", a.WebCertHashHex(), "subject", a.WebCert().Subject.String())
	}
	return changed, err
}

// Msh returns the .msh for a group.
func (a *App) Msh(g store.Group) ([]byte, error) {
	return msh.Build(msh.Settings{Group: g, ServerID: a.Certs.ServerIDHex(), MeshServer: a.AgentURL()})
}

// TLSConfig is the server's TLS configuration. Session tickets stay on (Go's
// default) so reconnecting agents and the load generator resume TLS
// sessions instead of paying a full key exchange.
func (a *App) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: a.web.get,
		MinVersion:     tls.VersionTLS12,
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
		// With the agents' listener gate: while handshakes are crowded a
		// new connection is refused before TLS (agentconn.Listener).
		ConnState: a.Agents.ConnState,
	}
	go func() {
		err := a.srv.ServeTLS(a.Agents.Listener(a.ln), "", "")
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("server stopped", "err", err)
		}
	}()
	a.serveRedirect()
	if a.Notify != nil {
		a.Notify.Start()
	}
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
	if a.redirSrv != nil {
		a.redirSrv.Close()
	} else if a.redirLn != nil {
		a.redirLn.Close()
	}
	if a.Notify != nil {
		// Before the agents go: the server's own shutdown is no device's
		// news. Undelivered messages stay queued in the store.
		a.Notify.Close()
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

// hostnamesFor validates the listen address and returns the server's names:
// the configured ones, else the listen host if it is a specific address,
// else the machine's host name.
func hostnamesFor(listen string, configured []string, log *slog.Logger) ([]string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	var out []string
	for _, h := range configured {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.ContainsAny(h, "/:@ ") && net.ParseIP(h) == nil {
			return nil, fmt.Errorf("hostname %q: a DNS name or an IP address, without scheme or port", h)
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return []string{host}, nil
	}
	if host != "" && net.ParseIP(host) == nil {
		return []string{host}, nil
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		return nil, fmt.Errorf("listen address %q binds every address and the host name is unknown (%v): give a hostname", listen, err)
	}
	log.Warn("no hostname given: .msh files name this machine's host name; set --hostname to the name agents reach the server by", "hostname", name)
	return []string{name}, nil
}

// slogWriter routes net/http's error log (TLS handshake failures from
// scanners, mostly) to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("http", "msg", strings.TrimSpace(string(p)))
	return len(p), nil
}
