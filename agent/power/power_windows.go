package power

import (
	"errors"
	"fmt"
	"log/slog"
	"unsafe"

	"golang.org/x/sys/windows"
)

// winSys is the Windows path: ExitWindowsEx for off and reset (with
// SeShutdownPrivilege enabled first, as it must be), SetSuspendState
// from powrprof.dll for sleep.
type winSys struct {
	enablePrivilege func() error
	exitWindows     func(flags, reason uint32) error
	suspend         func(forced bool) error
}

type system = *winSys

var (
	advapi32                  = windows.NewLazySystemDLL("advapi32.dll")
	procAdjustTokenPrivileges = advapi32.NewProc("AdjustTokenPrivileges")
	powrprof                  = windows.NewLazySystemDLL("powrprof.dll")
	procSetSuspendState       = powrprof.NewProc("SetSuspendState")
)

func realSystem(*slog.Logger) system {
	return &winSys{
		enablePrivilege: enableShutdownPrivilege,
		exitWindows:     windows.ExitWindowsEx,
		suspend: func(forced bool) error {
			if err := procSetSuspendState.Find(); err != nil {
				return fmt.Errorf("SetSuspendState: %v: %w", err, ErrUnsupported)
			}
			// SetSuspendState(hibernate=FALSE, force, wakeupEventsDisabled=FALSE)
			f := uintptr(0)
			if forced {
				f = 1
			}
			r, _, e := procSetSuspendState.Call(0, f, 0)
			if r == 0 {
				return fmt.Errorf("SetSuspendState: %w", e)
			}
			return nil
		},
	}
}

func do(s system, a Action, forced bool) (string, error) {
	if err := s.enablePrivilege(); err != nil {
		return "", err
	}
	if a == Sleep {
		if err := s.suspend(forced); err != nil {
			return "", err
		}
		return "SetSuspendState", nil
	}
	flags, reason := exitWindowsFlags(a, forced)
	if err := s.exitWindows(flags, reason); err != nil {
		if errors.Is(err, windows.ERROR_PRIVILEGE_NOT_HELD) || errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return "", fmt.Errorf("ExitWindowsEx: %v: %w", err, ErrPrivilege)
		}
		return "", fmt.Errorf("ExitWindowsEx: %w", err)
	}
	return fmt.Sprintf("ExitWindowsEx(0x%x)", flags), nil
}

// enableShutdownPrivilege turns on SeShutdownPrivilege in the process
// token. AdjustTokenPrivileges succeeds even when the token does not hold
// the privilege; only GetLastError (ERROR_NOT_ALL_ASSIGNED) tells, so the
// procedure is called directly.
func enableShutdownPrivilege() error {
	var tok windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_ADJUST_PRIVILEGES|windows.TOKEN_QUERY, &tok); err != nil {
		return fmt.Errorf("open process token: %w", err)
	}
	defer tok.Close()
	var luid windows.LUID
	if err := windows.LookupPrivilegeValue(nil, windows.StringToUTF16Ptr("SeShutdownPrivilege"), &luid); err != nil {
		return fmt.Errorf("look up SeShutdownPrivilege: %w", err)
	}
	tp := windows.Tokenprivileges{PrivilegeCount: 1}
	tp.Privileges[0] = windows.LUIDAndAttributes{Luid: luid, Attributes: windows.SE_PRIVILEGE_ENABLED}
	r, _, e := procAdjustTokenPrivileges.Call(uintptr(tok), 0, uintptr(unsafe.Pointer(&tp)), 0, 0, 0)
	if r == 0 {
		return fmt.Errorf("enable SeShutdownPrivilege: %w", e)
	}
	if errors.Is(e, windows.ERROR_NOT_ALL_ASSIGNED) {
		return fmt.Errorf("the agent's account does not hold SeShutdownPrivilege: %w", ErrPrivilege)
	}
	return nil
}
