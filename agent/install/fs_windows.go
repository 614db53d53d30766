//go:build windows

package install

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// privateSDDL grants full control to SYSTEM and the Administrators group
// only, without inheriting from the parent (Program Files lets Users read):
// the directory holds the agent's private key.
const privateSDDL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

func restrictDir(dir string) error {
	sd, err := windows.SecurityDescriptorFromString(privateSDDL)
	if err != nil {
		return fmt.Errorf("parse security descriptor: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("read DACL: %w", err)
	}
	return windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

// renameOver replaces path. A running executable cannot be overwritten on
// Windows but can be renamed, so on failure the old file is moved aside
// first and deleted at the next reboot.
func renameOver(tmp, path string) error {
	err := os.Rename(tmp, path)
	if err == nil {
		return nil
	}
	old := path + ".old"
	os.Remove(old)
	if err2 := os.Rename(path, old); err2 != nil {
		return err
	}
	scheduleDelete(old)
	return os.Rename(tmp, path)
}

// removeFile removes path; a file in use (the running executable during
// -fulluninstall) is deleted at the next reboot instead.
func removeFile(path string) error {
	err := os.Remove(path)
	if err == nil || os.IsNotExist(err) {
		return err
	}
	old := path + ".old"
	os.Remove(old)
	if os.Rename(path, old) == nil {
		path = old
	}
	if scheduleDelete(path) == nil {
		return nil
	}
	return err
}

func scheduleDelete(path string) error {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	return windows.MoveFileEx(p, nil, windows.MOVEFILE_DELAY_UNTIL_REBOOT)
}
