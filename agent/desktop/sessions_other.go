//go:build !linux

package desktop

// Sessions lists graphical sessions on Linux; elsewhere the desktop is the
// console's and there is nothing to discover.
func Sessions(Options) []Session { return nil }
