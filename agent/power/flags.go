package power

// Windows ExitWindowsEx flags and shutdown reason (winuser.h, reason.h),
// kept here so the mapping is tested on every platform.
const (
	ewxShutdown       = 0x00000001
	ewxReboot         = 0x00000002
	ewxForce          = 0x00000004
	ewxPowerOff       = 0x00000008
	ewxForceIfHung    = 0x00000010
	reasonFlagPlanned = 0x80000000 // SHTDN_REASON_FLAG_PLANNED, major/minor "other"
)

// exitWindowsFlags maps off and reset to ExitWindowsEx's arguments:
// applications that hang are closed; all are when forced.
func exitWindowsFlags(a Action, forced bool) (flags, reason uint32) {
	flags = ewxForceIfHung
	if a == Reset {
		flags |= ewxReboot
	} else {
		flags |= ewxShutdown | ewxPowerOff
	}
	if forced {
		flags |= ewxForce
	}
	return flags, reasonFlagPlanned
}

// darwinCommand is the macOS command for an action: shutdown(8) for off
// and reset, pmset(1) for sleep.
func darwinCommand(a Action) (file string, args []string) {
	switch a {
	case Off:
		return "/sbin/shutdown", []string{"-h", "now"}
	case Reset:
		return "/sbin/shutdown", []string{"-r", "now"}
	}
	return "/usr/bin/pmset", []string{"sleepnow"}
}
