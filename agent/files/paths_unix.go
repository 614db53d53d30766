//go:build !windows

package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const nameForbidden = "/\x00"

// resolvePath turns a client path into an absolute, clean local path. Like
// the reference, a path without a leading "/" is taken from the root ("" is
// "/", "home/u" is "/home/u"); it is never resolved against the agent's
// working directory.
func resolvePath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("invalid path")
	}
	return filepath.Clean("/" + p), nil
}

// echoPath is the path string an ls reply carries: the request's path with
// the reference's "/" prefix, otherwise untouched, because the web UI
// compares it with what it asked for.
func echoPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "/" + p
	}
	return p
}

// listRoot is only meaningful on Windows (the drive list).
func listRoot(string) ([]entry, bool) { return nil, false }

// openRegular opens path for reading only if it is a regular file. The open
// is non-blocking so a FIFO cannot hang the session, and the type is checked
// on the opened descriptor so a swap between check and open cannot trick it.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		if st.IsDir() {
			return nil, nil, &os.PathError{Op: "open", Path: path, Err: syscall.EISDIR}
		}
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	return f, st, nil
}

// checkWritable reports whether the agent could open an existing target for
// writing, which is what the reference's truncating open required. Replacing
// by rename would otherwise slip past a read-only file's protection.
func checkWritable(path string) error {
	if err := syscall.Access(path, 2 /* W_OK */); err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	return nil
}

// keepOwner gives a replacement file the old one's owner (best effort; only
// root can).
func keepOwner(path string, old os.FileInfo) {
	if st, ok := old.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		_ = os.Lchown(path, int(st.Uid), int(st.Gid))
	}
}

func isCrossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }

// syncDir flushes a directory entry change (a rename) to disk.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
