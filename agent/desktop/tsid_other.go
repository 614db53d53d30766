//go:build !windows

package desktop

// ownSession: tsid is a Windows notion; elsewhere the display is found by
// discovery and the viewer's choice is only recorded.
func ownSession() (uint32, bool) { return 0, false }
