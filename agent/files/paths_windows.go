//go:build windows

package files

// UNTESTED AT RUNTIME: Windows path handling and the drive list are only
// cross-compiled and vetted on the project's Linux machines.

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

const nameForbidden = "/\\:\x00"

// resolvePath accepts absolute Windows paths only (see cleanWindowsPath).
func resolvePath(p string) (string, error) { return cleanWindowsPath(p) }

func echoPath(p string) string { return p }

// listRoot lists the drives when the client asks for "" (sessions.md §3.4).
func listRoot(p string) ([]entry, bool) {
	if p != "" {
		return nil, false
	}
	mask, err := windows.GetLogicalDrives()
	if err != nil {
		return []entry{}, true
	}
	var out []entry
	for i := 0; i < 26; i++ {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		root := string(rune('A'+i)) + `:\`
		e := entry{N: root[:2], T: 1}
		rp, _ := windows.UTF16PtrFromString(root)
		switch windows.GetDriveType(rp) {
		case windows.DRIVE_REMOVABLE:
			e.Dt = "REMOVABLE"
		case windows.DRIVE_FIXED:
			e.Dt = "FIXED"
		case windows.DRIVE_REMOTE:
			e.Dt = "REMOTE"
		case windows.DRIVE_CDROM:
			e.Dt = "CDROM"
		case windows.DRIVE_RAMDISK:
			e.Dt = "RAMDISK"
		}
		var free, total, totalFree uint64
		if windows.GetDiskFreeSpaceEx(rp, &free, &total, &totalFree) == nil {
			s, f := int64(total), int64(free)
			e.S, e.F = &s, &f
		} else {
			z := int64(0)
			e.S, e.F = &z, &z
		}
		out = append(out, e)
	}
	return out, true
}

func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
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
		return nil, nil, &os.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	return f, st, nil
}

func checkWritable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o200 == 0 {
		return &os.PathError{Op: "open", Path: path, Err: errors.New("file is read-only")}
	}
	return nil
}

func keepOwner(string, os.FileInfo) {}

func isCrossDevice(err error) bool { return errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) }

func syncDir(string) {}
