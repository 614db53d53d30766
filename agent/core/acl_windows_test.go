package core

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/meshgo/meshagent/internal/winetest"
)

// wineNoFileDACL is the wine gap that keeps a file's DACL from being
// read back (measured with wine 8.0 on ext4).
const wineNoFileDACL = "wine 8 keeps no file DACL: SetNamedSecurityInfo succeeds but the read-back is synthesized from Unix mode bits"

// checkOwnerOnly reads path's DACL back and fails t unless it is
// protected (nothing inherited from the parent) and allows only SYSTEM,
// Administrators and the current user. Under wine, which cannot store
// it, the descriptor restrictPath applies is checked instead.
func checkOwnerOnly(t *testing.T, path string) {
	t.Helper()
	if v := winetest.Version(); v != "" {
		t.Logf("wine %s: %s; checking the descriptor applied to %s", v, wineNoFileDACL, path)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := ownerOnlyDescriptor(st.IsDir())
		if err != nil {
			t.Fatal(err)
		}
		checkDescriptor(t, path, sd)
		return
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("%s: read DACL: %v", path, err)
	}
	checkDescriptor(t, path, sd)
}

// TestOwnerOnlyDACLReadBack writes an owner-only file and reads its DACL
// back from the file system.
func TestOwnerOnlyDACLReadBack(t *testing.T) {
	winetest.SkipUnderWine(t, wineNoFileDACL)
	path := filepath.Join(t.TempDir(), "key")
	if err := writeFileAtomic(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkOwnerOnly(t, path)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := restrictPath(dir, true); err != nil {
		t.Fatal(err)
	}
	checkOwnerOnly(t, dir)
}

func checkDescriptor(t *testing.T, path string, sd *windows.SECURITY_DESCRIPTOR) {
	t.Helper()
	ctl, _, err := sd.Control()
	if err != nil {
		t.Fatal(err)
	}
	if ctl&windows.SE_DACL_PROTECTED == 0 {
		t.Errorf("%s: DACL not protected: inherits from its parent (%s)", path, sd)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("%s: no DACL (everyone has access): %v", path, err)
	}
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			t.Fatal(err)
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		switch {
		case ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE:
			t.Errorf("%s: ACE %d has type %d, want allow only", path, i, ace.Header.AceType)
		case sid.IsWellKnown(windows.WinLocalSystemSid):
			seen["SYSTEM"] = true
		case sid.IsWellKnown(windows.WinBuiltinAdministratorsSid):
			seen["Administrators"] = true
		case sid.Equals(u.User.Sid):
			seen["user"] = true
		default:
			t.Errorf("%s: ACE %d allows %s, want SYSTEM, Administrators and the agent's user only (%s)", path, i, sid, sd)
		}
	}
	if !seen["SYSTEM"] || !seen["Administrators"] {
		t.Errorf("%s: DACL %s lacks SYSTEM or Administrators", path, sd)
	}
	if !u.User.Sid.IsWellKnown(windows.WinLocalSystemSid) && !seen["user"] {
		t.Errorf("%s: DACL %s lacks the agent's own user %s: it could not read its key", path, sd, u.User.Sid)
	}
}
