package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/agentdl"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/oidc"
)

// settings is everything an administrator sets: read from the --config
// file (JSON), then overridden by each flag given on the command line.
// Paths in the file are relative to the file's directory.
type settings struct {
	Data         string   `json:"data"`
	Listen       string   `json:"listen"`
	Hostnames    []string `json:"hostnames"`
	Cert         string   `json:"cert"`
	Key          string   `json:"key"`
	HTTPRedirect string   `json:"httpRedirect"`
	Core         string   `json:"core"`
	EventDays    int      `json:"eventDays"`
	Agents       string   `json:"agents"`
	CAgents      string   `json:"cAgents"`
	PreferCAgent bool     `json:"preferCAgent"`
	// LockAgentDownload: agent and .msh downloads need a signed-in user.
	LockAgentDownload bool   `json:"lockAgentDownload"`
	LocalAgent        string `json:"localAgent"`
	Verbose           bool   `json:"verbose"`

	// Limits (server-lite/README.md "Limits"); -1 means no limit.
	LoginFailures        int      `json:"loginFailures"`
	LoginAccountFailures int      `json:"loginAccountFailures"`
	LoginWindow          duration `json:"loginWindow"`
	HandshakesPerAddress int      `json:"handshakesPerAddress"`
	HandshakesPending    int      `json:"handshakesPending"`

	// Notify is messaging (notifyflags.go, server-lite/notify).
	Notify notify.Settings `json:"notify"`
	// PasswordRules for passwords people choose (file only); absent:
	// accounts.DefaultPasswordRules.
	PasswordRules *accounts.PasswordRules `json:"passwordRules"`
	// OIDC is OpenID Connect sign-in (file only); absent: off.
	OIDC *oidcSettings `json:"oidc"`

	// Not in the file: profiling for load measurements.
	CPUProfile, MemProfile string `json:"-"`
	// MutexProfile and BlockProfile are written at shutdown: where
	// goroutines waited on locks and channels (contention under load is
	// the evidence on a machine with too few cores to show scaling).
	MutexProfile, BlockProfile string `json:"-"`
}

func defaults() settings {
	return settings{Data: "./server-lite-data", Listen: "127.0.0.1:4443", EventDays: 20,
		LoginFailures: adminapi.DefaultLoginAddrFailures, LoginAccountFailures: adminapi.DefaultLoginAccountFailures,
		LoginWindow:          duration(adminapi.DefaultLoginWindow),
		HandshakesPerAddress: agentconn.DefaultMaxPendingPerAddr, HandshakesPending: agentconn.DefaultMaxPending}
}

// duration is a time.Duration written as Go writes it ("10m") in the file.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration such as \"10m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// hostList is a flag that takes a comma-separated list and may repeat.
type hostList struct{ v *[]string }

func (h hostList) String() string {
	if h.v == nil {
		return ""
	}
	return strings.Join(*h.v, ",")
}

func (h hostList) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*h.v = append(*h.v, p)
		}
	}
	return nil
}

// parseSettings reads the command line (and the config file it names).
func parseSettings(args []string, errOut io.Writer) (settings, error) {
	var cli settings
	var nf notifyFlags
	fs := flag.NewFlagSet("server-lite", flag.ContinueOnError)
	fs.SetOutput(errOut)
	configFile := fs.String("config", "", "JSON file with the settings below (keys: data, listen, hostnames, cert, key, httpRedirect, core, eventDays, agents, cAgents, preferCAgent, localAgent, verbose, loginFailures, loginAccountFailures, loginWindow, handshakesPerAddress, handshakesPending, notify, lockAgentDownload, passwordRules, oidc); flags override it")
	fs.StringVar(&cli.Data, "data", "", `data directory (certificates, database, .msh); created 0700 (default "./server-lite-data")`)
	fs.StringVar(&cli.Listen, "listen", "", `address to serve HTTPS/WSS on, any address, e.g. 0.0.0.0:443 (default "127.0.0.1:4443")`)
	fs.Var(hostList{&cli.Hostnames}, "hostname", "names/IPs agents and browsers reach the server by, comma-separated or repeated: all go into the web certificate, the first into .msh files and URLs")
	fs.StringVar(&cli.Cert, "cert", "", "your own TLS certificate (PEM, chain after the leaf) for browsers, meshctrl and agents; reloaded on SIGHUP. The agent-server certificate (ServerID) stays server-lite's own")
	fs.StringVar(&cli.Key, "key", "", "the private key (PEM) of --cert")
	fs.StringVar(&cli.HTTPRedirect, "http-redirect", "", "also listen for plain HTTP on this address (e.g. 0.0.0.0:80), answering only with redirects to HTTPS")
	fs.StringVar(&cli.Core, "core", "", "JavaScript file pushed to agents as their core (default: a small built-in core)")
	fs.IntVar(&cli.EventDays, "event-days", 0, "days the event log keeps entries (MeshCentral's default is 20); 0 keeps them forever (default 20)")
	fs.StringVar(&cli.Agents, "agents", "", "directory of our agent's release builds (build/release.sh output) served at /meshagents; run from the source tree, missing ones are built on first use")
	fs.StringVar(&cli.CAgents, "c-agents", "", "directory of the C agent's binaries under MeshCentral's names (e.g. MeshCentral's agents/ directory, whose install scripts are then served at /meshagents?script=N too)")
	fs.BoolVar(&cli.PreferCAgent, "prefer-c-agent", false, "serve the C agent at /meshagents where both it and ours exist")
	fs.BoolVar(&cli.LockAgentDownload, "lock-agent-download", false, "MeshCentral's lockAgentDownload: /meshagents and /meshsettings only for signed-in users, a group's .msh only with the edit-group right")
	fs.StringVar(&cli.LocalAgent, "local-agent", "", `start a local agent pointed at this server: "go" builds and runs ./cmd/meshagent, any other value is an agent binary (the C agent is run as "<path> run" in its own directory)`)
	fs.BoolVar(&cli.Verbose, "v", false, "debug logging")
	fs.IntVar(&cli.LoginFailures, "login-failures", adminapi.DefaultLoginAddrFailures, "failed logins from one address within --login-window before its logins are refused; -1: no limit")
	fs.IntVar(&cli.LoginAccountFailures, "login-account-failures", adminapi.DefaultLoginAccountFailures, "failed logins for one account within --login-window before its password logins are refused; -1: no limit")
	fs.DurationVar((*time.Duration)(&cli.LoginWindow), "login-window", adminapi.DefaultLoginWindow, "window of the login limits (MeshCentral's default: 10m)")
	fs.IntVar(&cli.HandshakesPerAddress, "handshakes-per-address", agentconn.DefaultMaxPendingPerAddr, "agent.ashx handshakes one address may have pending; -1: no limit")
	fs.IntVar(&cli.HandshakesPending, "handshakes-pending", agentconn.DefaultMaxPending, "agent.ashx handshakes pending in all before the oldest is dropped; -1: no limit")
	fs.StringVar(&cli.CPUProfile, "cpuprofile", "", "write a CPU profile to this file until shutdown (for load measurements)")
	fs.StringVar(&cli.MemProfile, "memprofile", "", "write a heap profile to this file on each SIGUSR1 (for load measurements)")
	fs.StringVar(&cli.MutexProfile, "mutexprofile", "", "record every lock contention and write the mutex profile to this file at shutdown (for load measurements)")
	fs.StringVar(&cli.BlockProfile, "blockprofile", "", "record blocking on locks, channels and select and write the block profile to this file at shutdown (for load measurements)")
	addNotifyFlags(fs, &nf)
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	s := defaults()
	if *configFile != "" {
		if err := s.load(*configFile); err != nil {
			return settings{}, err
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if applyNotifyFlag(f.Name, &s.Notify, &nf) {
			return
		}
		switch f.Name {
		case "data":
			s.Data = cli.Data
		case "listen":
			s.Listen = cli.Listen
		case "hostname":
			s.Hostnames = cli.Hostnames
		case "cert":
			s.Cert = cli.Cert
		case "key":
			s.Key = cli.Key
		case "http-redirect":
			s.HTTPRedirect = cli.HTTPRedirect
		case "core":
			s.Core = cli.Core
		case "event-days":
			s.EventDays = cli.EventDays
		case "agents":
			s.Agents = cli.Agents
		case "c-agents":
			s.CAgents = cli.CAgents
		case "prefer-c-agent":
			s.PreferCAgent = cli.PreferCAgent
		case "lock-agent-download":
			s.LockAgentDownload = cli.LockAgentDownload
		case "local-agent":
			s.LocalAgent = cli.LocalAgent
		case "v":
			s.Verbose = cli.Verbose
		case "login-failures":
			s.LoginFailures = cli.LoginFailures
		case "login-account-failures":
			s.LoginAccountFailures = cli.LoginAccountFailures
		case "login-window":
			s.LoginWindow = cli.LoginWindow
		case "handshakes-per-address":
			s.HandshakesPerAddress = cli.HandshakesPerAddress
		case "handshakes-pending":
			s.HandshakesPending = cli.HandshakesPending
		case "cpuprofile":
			s.CPUProfile = cli.CPUProfile
		case "memprofile":
			s.MemProfile = cli.MemProfile
		case "mutexprofile":
			s.MutexProfile = cli.MutexProfile
		case "blockprofile":
			s.BlockProfile = cli.BlockProfile
		}
	})
	if (s.Cert == "") != (s.Key == "") {
		return settings{}, errors.New("--cert and --key go together")
	}
	if s.EventDays < 0 {
		return settings{}, fmt.Errorf("eventDays %d: must be 0 (forever) or more", s.EventDays)
	}
	if s.PasswordRules != nil {
		if err := s.PasswordRules.Validate(); err != nil {
			return settings{}, fmt.Errorf("passwordRules: %w", err)
		}
	}
	if err := s.OIDC.validate(); err != nil {
		return settings{}, fmt.Errorf("oidc: %w", err)
	}
	return s, nil
}

// load reads a config file over s. Unknown keys are an error, so a typo
// is not silently ignored.
func (s *settings) load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("config %s: more than one JSON value", path)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&s.Data, &s.Cert, &s.Key, &s.Core, &s.Agents, &s.CAgents} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if s.LocalAgent != "" && s.LocalAgent != "go" && !filepath.IsAbs(s.LocalAgent) {
		s.LocalAgent = filepath.Join(base, s.LocalAgent)
	}
	return notifyPaths(&s.Notify, path, func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	})
}

// sourceTree returns the repository root when server-lite runs from it
// (the current directory or a parent holds this module's go.mod), so
// /meshagents can build our agent on first use; "" otherwise.
func sourceTree() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if bytes.HasPrefix(b, []byte("module github.com/meshgo/meshagent\n")) {
				if _, err := os.Stat(filepath.Join(dir, "cmd", "meshagent")); err == nil {
					return dir
				}
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// appConfig turns settings into the app's configuration.
func appConfig(s settings, log *slog.Logger) app.Config {
	retention := time.Duration(s.EventDays) * 24 * time.Hour
	if s.EventDays <= 0 {
		retention = -1 // forever
	}
	dl := agentdl.Config{Dir: s.Agents, CAgentDir: s.CAgents, PreferCAgent: s.PreferCAgent}
	if tree := sourceTree(); tree != "" {
		dl.SourceTree, dl.CacheDir = tree, filepath.Join(s.Data, "agent-builds")
	}
	return app.Config{
		DataDir: s.Data, Listen: s.Listen, Hostnames: s.Hostnames,
		WebCertFile: s.Cert, WebKeyFile: s.Key, HTTPRedirect: s.HTTPRedirect,
		CoreFile: s.Core, Logger: log, EventRetention: retention, Downloads: dl,
		Agent:             agentconn.Config{MaxPendingPerAddr: s.HandshakesPerAddress, MaxPending: s.HandshakesPending},
		Notify:            s.Notify,
		PasswordRules:     s.PasswordRules,
		LockAgentDownload: s.LockAgentDownload,
		OIDC:              s.OIDC.config(log),
	}
}

// oidcSettings is the "oidc" object of the config file. The client secret
// is in the file: keep it readable by the server's user only.
type oidcSettings struct {
	Issuer       string   `json:"issuer"`
	ClientID     string   `json:"clientId"`
	ClientSecret string   `json:"clientSecret"`
	RedirectURL  string   `json:"redirectUrl"`
	Scopes       []string `json:"scopes"`
	Label        string   `json:"label"`
	NoAutoCreate bool     `json:"noAutoCreate"`
}

func (o *oidcSettings) validate() error {
	if o == nil {
		return nil
	}
	if o.Issuer == "" || o.ClientID == "" {
		return errors.New("issuer and clientId are required")
	}
	if !strings.HasPrefix(o.Issuer, "https://") && !strings.HasPrefix(o.Issuer, "http://127.") && !strings.HasPrefix(o.Issuer, "http://localhost") {
		return fmt.Errorf("issuer %q: must be https (plain http only on loopback)", o.Issuer)
	}
	return nil
}

func (o *oidcSettings) config(log *slog.Logger) *oidc.Config {
	if o == nil {
		return nil
	}
	return &oidc.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
		Scopes: o.Scopes, Label: o.Label, NoAutoCreate: o.NoAutoCreate, Logger: log}
}
