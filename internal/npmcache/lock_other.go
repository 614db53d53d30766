//go:build !unix

package npmcache

import "errors"

// lockFile is not implemented off Unix, where the harnesses do not run.
func lockFile(string) (func(), error) {
	return nil, errors.New("npmcache: installs need a Unix file lock")
}
