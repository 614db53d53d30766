// Package atomicfile writes server-lite's small state files (certificates,
// keys, the default group's .msh) whole: a reader sees the old content,
// none, or all of the new, never a part, and a crash leaves no partial
// file under the name. Readers wait for these files while the server is
// already listening (loadgen and scripts read the .msh), so a plain
// WriteFile is not enough.
package atomicfile

import (
	"fmt"
	"os"
)

// Write writes data to path owner-only (0600: these files hold keys or
// name the server and its group) through path+".tmp", synced before it is
// renamed over path. On failure the temporary file is removed and path is
// left as it was.
func Write(path string, data []byte) (err error) {
	tmp := path + ".tmp"
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
