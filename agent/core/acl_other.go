//go:build !windows

package core

// restrictPath does nothing here: the POSIX mode the file or directory was
// created with (0600, 0700) already keeps other users out.
func restrictPath(path string, dir bool) error { return nil }
