package osuser

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

var procWTSQuerySessionInformation = windows.NewLazySystemDLL("wtsapi32.dll").NewProc("WTSQuerySessionInformationW")

// WTS_INFO_CLASS values (wtsapi32.h).
const (
	wtsUserName   = 5
	wtsDomainName = 7
)

// Sessions lists the terminal-services sessions (WTSEnumerateSessions on
// the local server) with their window station and state; the user and
// domain are read for Active sessions, as the C agent does.
func Sessions() ([]Session, error) {
	var info *windows.WTS_SESSION_INFO
	var n uint32
	if err := windows.WTSEnumerateSessions(0, 0, 1, &info, &n); err != nil {
		return nil, fmt.Errorf("WTSEnumerateSessions: %w", err)
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(info)))
	out := make([]Session, 0, n)
	for _, si := range unsafe.Slice(info, n) {
		s := Session{ID: si.SessionID, Station: windows.UTF16PtrToString(si.WindowStationName), State: wtsStateName(si.State)}
		if s.State == "Active" {
			s.User = sessionString(si.SessionID, wtsUserName)
			s.Domain = sessionString(si.SessionID, wtsDomainName)
		}
		out = append(out, s)
	}
	return out, nil
}

// sessionString reads one string of a session's information, "" when
// Windows has none (a failed query leaves the field out of the answer, as
// the C agent's does).
func sessionString(id uint32, class uintptr) string {
	var buf *uint16
	var size uint32
	r, _, _ := procWTSQuerySessionInformation.Call(0, uintptr(id), class, uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&size)))
	if r == 0 || buf == nil {
		return ""
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
	return windows.UTF16PtrToString(buf)
}
