package core

import (
	"golang.org/x/sys/windows"
	winreg "golang.org/x/sys/windows/registry"
)

// osName asks Windows itself: RtlGetVersion (not subject to the
// manifest-dependent lies of GetVersionEx) and the product strings under
// HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion.
func osName() string {
	v := windows.RtlGetVersion()
	var product, display string
	k, err := winreg.OpenKey(winreg.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, winreg.QUERY_VALUE)
	if err == nil {
		defer k.Close()
		product, _, _ = k.GetStringValue("ProductName")
		if display, _, err = k.GetStringValue("DisplayVersion"); err != nil {
			display, _, _ = k.GetStringValue("ReleaseId") // before 20H2
		}
		if product == "" {
			product = "Windows"
		}
	}
	return windowsName(product, display, v.MajorVersion, v.MinorVersion, v.BuildNumber)
}
