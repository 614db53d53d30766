package sysinfo

import (
	"context"
	"testing"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// TestWindowsHardwareExtras runs the battery, GPU, TPM and pending-reboot
// readers on the Windows build (the CI runs it under wine): each must
// fail soft, and what it does return must be in the shape MeshCentral's
// web UI reads. It logs what the machine gave, so the lane's -v output
// says which fields were really read.
func TestWindowsHardwareExtras(t *testing.T) {
	data, err := SysInfo(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hw := data["hardware"].(map[string]any)
	ident := hw["identifiers"].(map[string]any)
	plat := hw["windows"].(map[string]any)
	if g, ok := ident["gpu_name"]; ok {
		names, _ := g.([]any)
		gpus, _ := plat["gpu"].([]any)
		if len(names) == 0 || len(gpus) != len(names) {
			t.Fatalf("gpu_name %v, windows.gpu %v", g, plat["gpu"])
		}
		for i, n := range names {
			if s, _ := n.(string); s == "" || gpus[i].(map[string]any)["Name"] != s {
				t.Fatalf("gpu %d: %v / %v", i, n, gpus[i])
			}
		}
		t.Logf("GPU: %v", names)
	} else {
		t.Logf("GPU: none reported (SetupAPI display class and EnumDisplayDevicesW gave no adapter)")
	}
	if b, ok := hw["battery"]; ok {
		list, _ := b.([]any)
		if len(list) == 0 {
			t.Fatalf("battery %v", b)
		}
		for _, e := range list {
			if m, _ := e.(map[string]any); m["DeviceName"] == nil {
				t.Fatalf("battery without a name: %v", e)
			}
		}
		t.Logf("battery: %v", list)
	} else {
		t.Logf("battery: none reported")
	}
	if tpm, ok := hw["tpm"].(map[string]any); ok {
		if v := tpm["SpecVersion"]; v != "1.2" && v != "2.0" {
			t.Fatalf("tpm %v", tpm)
		}
		t.Logf("TPM: %v", tpm)
	} else {
		t.Logf("TPM: none reported")
	}
	t.Logf("pendingReboot: %q", data["pendingReboot"])

	// Which source gave what, for the record of what this Windows (or
	// wine) really answers.
	t.Logf("SetupAPI display class: %q; EnumDisplayDevicesW: %q", setupAPIDisplayAdapters(), enumDisplayAdapters())
	paths, err := windows.CM_Get_Device_Interface_List("", &guidDeviceBattery, windows.CM_GET_DEVICE_INTERFACE_LIST_PRESENT)
	t.Logf("battery interfaces: %q (failed: %v)", paths, err != nil) // wine 8: its error's Error() panics (no CM_MapCrToWin32Err)
	var st [12]byte
	err = getSystemPowerStatus(&st)
	t.Logf("GetSystemPowerStatus: % x (%v)", st, err)
	if err := procTbsiGetDeviceInfo.Find(); err != nil {
		t.Logf("tbs.dll Tbsi_GetDeviceInfo: %v", err)
	} else {
		var info [16]byte
		r, _, _ := procTbsiGetDeviceInfo.Call(uintptr(len(info)), uintptr(unsafe.Pointer(&info[0])))
		t.Logf("Tbsi_GetDeviceInfo: %#x, % x", r, info)
	}
}

// TestWindowsPendingFileRename queues a file rename for the next boot the
// way an installer does (PendingFileRenameOperations, a REG_MULTI_SZ of
// source/destination pairs) and expects the sysinfo to report the pending
// reboot; removing it clears the report unless Windows itself has another
// reason.
func TestWindowsPendingFileRename(t *testing.T) {
	const path = `SYSTEM\CurrentControlSet\Control\Session Manager`
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE|registry.SET_VALUE)
	if err != nil {
		t.Skipf("cannot write HKLM (not elevated?): %v", err)
	}
	defer k.Close()
	if old, _, err := k.GetStringsValue("PendingFileRenameOperations"); err == nil && len(old) > 0 {
		t.Skipf("this machine already has renames queued: %q", old)
	}
	before := pendingRebootWindows()
	if err := k.SetStringsValue("PendingFileRenameOperations", []string{`\??\C:\meshgo-test-nonexistent.tmp`, ""}); err != nil {
		t.Skipf("cannot write PendingFileRenameOperations: %v", err)
	}
	t.Cleanup(func() { k.DeleteValue("PendingFileRenameOperations") })
	want := "File Rename"
	if before != "" {
		want = before // an earlier reason comes first, as in meshcore.js
	}
	data, err := SysInfo(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := data["pendingReboot"]; got != want {
		t.Fatalf("pendingReboot %q, want %q", got, want)
	}
	if err := k.DeleteValue("PendingFileRenameOperations"); err != nil {
		t.Fatal(err)
	}
	if got := pendingRebootWindows(); got != before {
		t.Fatalf("after removing the rename: %q, want %q", got, before)
	}
}
