package sessionworker

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// spawn starts exe as `exe session-worker --pipe NAME` with tok in the
// token's session, on the interactive window station's default desktop
// (winsta0\default: where the user's windows are, and where input and
// capture start before following switches). It returns the process, which
// the caller closes.
func spawn(tok windows.Token, exe, pipe string) (windows.Handle, uint32, error) {
	cmdline := windows.EscapeArg(exe) + " " + WorkerCommand + " --pipe " + windows.EscapeArg(pipe)
	cl, err := windows.UTF16PtrFromString(cmdline)
	if err != nil {
		return 0, 0, err
	}
	app, err := windows.UTF16PtrFromString(exe)
	if err != nil {
		return 0, 0, err
	}
	desk, _ := windows.UTF16PtrFromString(`winsta0\default`)
	si := &windows.StartupInfo{Desktop: desk}
	si.Cb = uint32(unsafe.Sizeof(*si))
	var env *uint16
	if err := windows.CreateEnvironmentBlock(&env, tok, false); err == nil {
		defer windows.DestroyEnvironmentBlock(env)
	} else {
		env = nil // the service's environment; wine has no profile for some tokens
	}
	var dir *uint16
	if sys := os.Getenv("SystemRoot"); sys != "" {
		dir, _ = windows.UTF16PtrFromString(sys + `\System32`)
	}
	var pi windows.ProcessInformation
	flags := uint32(windows.CREATE_UNICODE_ENVIRONMENT | windows.CREATE_NO_WINDOW | windows.CREATE_NEW_PROCESS_GROUP)
	if env == nil {
		flags &^= windows.CREATE_UNICODE_ENVIRONMENT
	}
	if err := windows.CreateProcessAsUser(tok, app, cl, nil, nil, false, flags, env, dir, si, &pi); err != nil {
		return 0, 0, fmt.Errorf("CreateProcessAsUser %s: %w", strings.TrimSpace(exe), err)
	}
	windows.CloseHandle(pi.Thread)
	return pi.Process, pi.ProcessId, nil
}
