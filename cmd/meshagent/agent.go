package main

import (
	"errors"
	"log/slog"

	"github.com/meshgo/meshagent/agent/core"
)

// errConfig marks failures of the settings or identity (exit code 3).
var errConfig = errors.New("configuration")

// built is an agent ready to Run, with what must be released after it.
type built struct {
	agent    *core.Agent
	identity *core.Identity
	settings *core.MSH
	close    func()
}

// buildAgent does everything before agent.Run, the same for the foreground
// commands and the service: settings, identity, script host, sessions.
// Errors wrapping errConfig are the user's to fix.
func buildAgent(o options, temporary bool, log *slog.Logger) (*built, error) {
	settings, err := core.ReadMSH(o.msh)
	if err != nil {
		return nil, errors.Join(errConfig, err)
	}
	id, created, err := core.LoadOrCreateIdentity(o.data)
	if err != nil {
		return nil, errors.Join(errConfig, err)
	}
	if created {
		log.Info("created a new agent identity", "dir", o.data)
	}
	upgrade, err := sessionUpgrader(log, settings)
	if err != nil {
		return nil, errors.Join(errConfig, err)
	}
	us := newUserSession(log, settings.Get(mshSessionWorker) == "1")
	host := newScriptHost(log, settings, o.msh, id, o.data, us)
	upd, err := newUpdater(o, log)
	if err != nil {
		host.host.Close()
		return nil, err
	}
	upd.Boot()
	agent, err := core.New(core.Config{
		Settings: settings, Identity: id, DataDir: o.data, Logger: log,
		Host: host.host, DefaultCore: host.defaultCore,
		Sessions: sessionHandlers(log, func() *core.Agent { return host.agent }, us, o.data), UpgradeSession: upgrade,
		ConsentUI: us.consentUI(),
		Temporary: temporary, CommitDate: commitDate,
		HandshakeTimeout: o.handshakeTimeout,
		OnEvent:          trimAfterActivity(),
		Updates:          upd,
	})
	if err != nil {
		host.host.Close()
		return nil, errors.Join(errConfig, err)
	}
	host.agent = agent
	return &built{agent: agent, identity: id, settings: settings, close: host.host.Close}, nil
}
