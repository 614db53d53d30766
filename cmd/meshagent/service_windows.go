package main

import (
	"errors"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
)

// runUnderSCM runs prog as a Windows service, reporting to the service
// control manager itself, and returns ran=false when the process was not
// started by the SCM (StartServiceCtrlDispatcher fails at once with
// ERROR_FAILED_SERVICE_CONTROLLER_CONNECT); the caller then runs it as a
// console program.
//
// It does not trust svc.IsWindowsService, which kardianos/service relies
// on: that guesses from the session id and parent process, and under wine
// (services.exe in session 1) it says "not a service", so the agent never
// reported to the SCM and every start timed out. Asking the dispatcher is
// the one answer that cannot be wrong.
func runUnderSCM(name string, prog *agentService) (ran bool, err error) {
	err = svc.Run(name, &scmHandler{prog: prog})
	if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
		return false, nil
	}
	return true, err
}

// scmHandler answers the SCM's control requests for prog.
type scmHandler struct{ prog *agentService }

func (h *scmHandler) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	s <- svc.Status{State: svc.StartPending}
	if err := h.prog.Start(nil); err != nil {
		return true, exitConfig // service-specific exit code, shown by sc query
	}
	s <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for c := range r {
		switch c.Cmd {
		case svc.Interrogate:
			s <- c.CurrentStatus
		case svc.Stop, svc.Shutdown:
			s <- svc.Status{State: svc.StopPending}
			h.prog.Stop(nil)
			return false, 0
		}
	}
	return false, 0
}
