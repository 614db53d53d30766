package update

import (
	"fmt"
	"os"
	"runtime"
)

// Replace puts the verified binary next in place of exe and keeps the
// binary being replaced at prev, so that each of the two names always
// holds a whole binary:
//
//   - Unix: prev is a hard link to exe's file (a copy where links are not
//     possible), then next is renamed over exe in one atomic step. The
//     running process keeps executing its file, which prev still names.
//   - Windows: a running executable cannot be overwritten or deleted, but
//     it can be renamed: exe is renamed to prev, then next to exe; if the
//     second rename fails the first is undone.
func Replace(exe, next, prev string) error {
	os.Remove(prev)
	if runtime.GOOS == "windows" {
		if err := os.Rename(exe, prev); err != nil {
			return fmt.Errorf("move the running binary aside: %w", err)
		}
		if err := os.Rename(next, exe); err != nil {
			if uerr := os.Rename(prev, exe); uerr != nil {
				return fmt.Errorf("put the new binary in place: %w (and restoring the old one failed: %v)", err, uerr)
			}
			return fmt.Errorf("put the new binary in place: %w", err)
		}
		return nil
	}
	if err := os.Link(exe, prev); err != nil {
		if err := copyFile(exe, prev); err != nil {
			return fmt.Errorf("keep the previous binary: %w", err)
		}
	}
	if err := os.Rename(next, exe); err != nil {
		os.Remove(prev)
		return fmt.Errorf("put the new binary in place: %w", err)
	}
	return nil
}

// Restore puts prev back in place of exe (one rename on every platform:
// on Windows the binary at exe is not running when this is called, or is
// a running one that may be renamed over).
func Restore(exe, prev string) error {
	if runtime.GOOS == "windows" {
		// MoveFileEx cannot replace a running executable; move it aside first.
		aside := exe + ".failed"
		os.Remove(aside)
		if err := os.Rename(exe, aside); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("move the failed binary aside: %w", err)
		}
		if err := os.Rename(prev, exe); err != nil {
			os.Rename(aside, exe)
			return fmt.Errorf("restore the previous binary: %w", err)
		}
		os.Remove(aside) // fails while it still runs; removed on the next update
		return nil
	}
	if err := os.Rename(prev, exe); err != nil {
		return fmt.Errorf("restore the previous binary: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}
