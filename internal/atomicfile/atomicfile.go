// Package atomicfile replaces small files whole: a reader sees the old
// content, none, or all of the new, never a part, and a crash or a full
// disk leaves the file under its name as it was. Both roles keep state
// this way (the agent its identity, .msh and cached core; server-lite its
// certificates and the group's .msh, which loadgen and scripts read while
// the server is already listening), so a plain os.WriteFile is never
// enough for them.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Options adjust WriteWith for one caller.
type Options struct {
	// Prepare runs on the temporary file's path after its mode is set and
	// before any data is written. Where the platform's permissions are
	// more than a mode (a Windows ACL on a key file), they are then in
	// place before the secret is.
	Prepare func(tmp string) error
	// Rename moves the temporary file over path; nil means os.Rename.
	// (Windows cannot rename over a running executable, so the installer
	// moves that aside first.)
	Rename func(tmp, path string) error
}

// Write writes data to path with mode perm, through a temporary file in
// the same directory that is synced before it is renamed over path. On
// any failure the temporary file is removed and path is left as it was.
// The errors are the os package's, which name the file and the step.
func Write(path string, data []byte, perm fs.FileMode) error {
	return WriteWith(path, data, perm, Options{})
}

// WriteWith is Write with a caller's Options.
func WriteWith(path string, data []byte, perm fs.FileMode, o Options) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if o.Prepare != nil {
		if err := o.Prepare(tmp); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	rename := o.Rename
	if rename == nil {
		rename = os.Rename
	}
	return rename(tmp, path)
}
