package winetest

import (
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

var version = sync.OnceValue(func() string {
	// wine's ntdll exports wine_get_version; no Windows ntdll does. This is
	// the check wine's own documentation recommends, and it cannot be
	// fooled by a registry key left behind on a real machine.
	p := windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version")
	if p.Find() != nil {
		return ""
	}
	r, _, _ := syscall.SyscallN(p.Addr())
	if r == 0 {
		return "unknown"
	}
	// The result points into ntdll's constant data, never Go memory.
	return windows.BytePtrToString(*(**byte)(unsafe.Pointer(&r)))
})

// Version returns wine's version ("8.0") when the process runs under
// wine, and "" on real Windows.
func Version() string { return version() }
