package desktop

import "golang.org/x/sys/windows"

// ownSession is the Windows session this process runs in: the only one it
// can capture until a session worker exists.
func ownSession() (uint32, bool) {
	var id uint32
	if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id); err != nil {
		return 0, false
	}
	return id, true
}
