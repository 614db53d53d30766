package core

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// POSIX mode bits mean nothing on Windows: a file made with 0600 is
// readable by every local user through the ACL inherited from its folder.
// The node key is what the server knows the device by, so a user who can
// read it can impersonate the device. Owner-only files and directories the
// agent creates get instead an explicit, protected DACL (inheritance from
// the parent off): full control for SYSTEM and the Administrators group,
// as the C agent's service files, and for the account the agent runs as
// when that is not SYSTEM (an agent started by a normal user with `run`
// must still read its own key; no other user may).

// ownerOnlySDDL returns the SDDL of the protected DACL; a directory's
// entries are inherited by what is created inside it.
func ownerOnlySDDL(dir bool) (string, error) {
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	sddl := "D:P(A;" + inherit + ";FA;;;SY)(A;" + inherit + ";FA;;;BA)"
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("current user: %w", err)
	}
	if !u.User.Sid.IsWellKnown(windows.WinLocalSystemSid) {
		sddl += "(A;" + inherit + ";FA;;;" + u.User.Sid.String() + ")"
	}
	return sddl, nil
}

// ownerOnlyDescriptor is the security descriptor holding that DACL.
func ownerOnlyDescriptor(dir bool) (*windows.SECURITY_DESCRIPTOR, error) {
	sddl, err := ownerOnlySDDL(dir)
	if err != nil {
		return nil, err
	}
	return windows.SecurityDescriptorFromString(sddl)
}

// restrictPath replaces the DACL of path (a file, or a directory when
// dir) with the owner-only one above.
func restrictPath(path string, dir bool) error {
	sd, err := ownerOnlyDescriptor(dir)
	if err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("restrict %s: %w", path, err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restrict %s: set DACL: %w", path, err)
	}
	return nil
}
