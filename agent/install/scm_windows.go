//go:build windows

package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kardianos/service"
	"golang.org/x/sys/windows/svc/mgr"
)

// scm drives the Windows service control manager through kardianos/service,
// which also registers the Event Log source the running service logs to.
type scm struct{}

func newSCM() (Manager, error) { return scm{}, nil }

func (scm) Name() string { return "Windows SCM" }

// noop satisfies service.Interface for control-only use.
type noop struct{}

func (noop) Start(service.Service) error { return nil }
func (noop) Stop(service.Service) error  { return nil }

// Config converts the plan's SCM configuration to kardianos' Config.
// kardianos sets a single recovery action; Register adds the rest.
func kardianosConfig(ws *WindowsService) *service.Config {
	return &service.Config{
		Name:        ws.Name,
		DisplayName: ws.DisplayName,
		Description: ws.Description,
		Executable:  ws.Executable,
		Arguments:   ws.Args,
		Option: service.KeyValue{
			"StartType":              ws.StartType,
			"OnFailure":              "restart",
			"OnFailureDelayDuration": ws.RecoveryDelay.String(),
			"OnFailureResetPeriod":   int(ws.ResetPeriod / time.Second),
		},
	}
}

func open(p *Plan) (service.Service, error) {
	if p.Windows == nil {
		return nil, errors.New("plan has no Windows service")
	}
	return service.New(noop{}, kardianosConfig(p.Windows))
}

func (scm) Register(ctx context.Context, p *Plan) error {
	s, err := open(p)
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return err
	}
	if err := setRecovery(p.Windows); err != nil {
		return &RecoveryError{Err: err}
	}
	return nil
}

// setRecovery sets one recovery action per failure (kardianos sets only the
// first, after which a second crash would leave the agent down) and counts
// non-zero exits as failures too.
func setRecovery(ws *WindowsService) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to SCM: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(ws.Name)
	if err != nil {
		return fmt.Errorf("open service %q: %w", ws.Name, err)
	}
	defer s.Close()
	var actions []mgr.RecoveryAction
	for _, a := range ws.RecoveryActions {
		t := mgr.ServiceRestart
		switch a {
		case "reboot":
			t = mgr.ComputerReboot
		case "noaction":
			t = mgr.NoAction
		}
		actions = append(actions, mgr.RecoveryAction{Type: t, Delay: ws.RecoveryDelay})
	}
	if err := s.SetRecoveryActions(actions, uint32(ws.ResetPeriod/time.Second)); err != nil {
		return fmt.Errorf("set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(ws.FailureActionsOnNonCrash); err != nil {
		return fmt.Errorf("set recovery on non-crash failures: %w", err)
	}
	return nil
}

func (scm) Unregister(ctx context.Context, p *Plan) error {
	s, err := open(p)
	if err != nil {
		return err
	}
	return s.Uninstall()
}

func (scm) Start(ctx context.Context, p *Plan) error {
	s, err := open(p)
	if err != nil {
		return err
	}
	return s.Start()
}

func (scm) Stop(ctx context.Context, p *Plan) error {
	s, err := open(p)
	if err != nil {
		return err
	}
	return s.Stop()
}

func (scm) Restart(ctx context.Context, p *Plan) error {
	s, err := open(p)
	if err != nil {
		return err
	}
	return s.Restart()
}

func (scm) Status(ctx context.Context, p *Plan) (Status, error) {
	s, err := open(p)
	if err != nil {
		return StatusUnknown, err
	}
	st, err := s.Status()
	if errors.Is(err, service.ErrNotInstalled) {
		return StatusNotInstalled, nil
	}
	if err != nil {
		return StatusUnknown, err
	}
	switch st {
	case service.StatusRunning:
		return StatusRunning, nil
	case service.StatusStopped:
		return StatusStopped, nil
	}
	return StatusUnknown, nil
}

// scmInstalledDir reads the service's executable path from the SCM.
func scmInstalledDir(name string) (string, bool) {
	m, err := mgr.Connect()
	if err != nil {
		return "", false
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return "", false
	}
	defer s.Close()
	c, err := s.Config()
	if err != nil {
		return "", false
	}
	exe := c.BinaryPathName
	if strings.HasPrefix(exe, `"`) {
		if end := strings.Index(exe[1:], `"`); end >= 0 {
			exe = exe[1 : end+1]
		}
	} else if i := strings.Index(strings.ToLower(exe), ".exe"); i >= 0 {
		exe = exe[:i+4]
	}
	return winOrUnixDir(Windows, exe), true
}
