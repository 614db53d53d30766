package power

import (
	"slices"
	"testing"
)

func TestExitWindowsFlags(t *testing.T) {
	for _, tc := range []struct {
		a      Action
		forced bool
		want   uint32
	}{
		{Off, false, ewxShutdown | ewxPowerOff | ewxForceIfHung},
		{Off, true, ewxShutdown | ewxPowerOff | ewxForceIfHung | ewxForce},
		{Reset, false, ewxReboot | ewxForceIfHung},
		{Reset, true, ewxReboot | ewxForceIfHung | ewxForce},
	} {
		f, r := exitWindowsFlags(tc.a, tc.forced)
		if f != tc.want || r != reasonFlagPlanned {
			t.Errorf("%v forced=%v: 0x%x 0x%x, want 0x%x", tc.a, tc.forced, f, r, tc.want)
		}
	}
}

func TestDarwinCommand(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want []string
	}{
		{Off, []string{"/sbin/shutdown", "-h", "now"}},
		{Reset, []string{"/sbin/shutdown", "-r", "now"}},
		{Sleep, []string{"/usr/bin/pmset", "sleepnow"}},
	} {
		f, a := darwinCommand(tc.a)
		if got := append([]string{f}, a...); !slices.Equal(got, tc.want) {
			t.Errorf("%v: %v", tc.a, got)
		}
	}
}
