//go:build !windows

package install

import (
	"errors"
	"os"
)

// restrictDir does nothing beyond the 0700 mode Install sets.
func restrictDir(string) error { return nil }

func renameOver(tmp, path string) error { return os.Rename(tmp, path) }

func removeFile(path string) error { return os.Remove(path) }

func newSCM() (Manager, error) {
	return nil, errors.New("the Windows service control manager is only reachable on Windows")
}

func scmInstalledDir(string) (string, bool) { return "", false }
