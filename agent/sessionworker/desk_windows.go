package sessionworker

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Desktop switching: the input desktop changes to Winlogon on the lock
// screen and the UAC secure desktop, and back to Default. GDI capture and
// SendInput act on the calling thread's desktop, so before each capture
// and input call (desktop.Options.ThreadSetup, thread locked) the worker
// attaches the thread to whatever the input desktop is now.

var (
	user32w                 = windows.NewLazySystemDLL("user32.dll")
	procOpenInputDesktop    = user32w.NewProc("OpenInputDesktop")
	procSetThreadDesktop    = user32w.NewProc("SetThreadDesktop")
	procGetThreadDesktop    = user32w.NewProc("GetThreadDesktop")
	procCloseDesktop        = user32w.NewProc("CloseDesktop")
	procGetUserObjectInfo   = user32w.NewProc("GetUserObjectInformationW")
	procMessageBoxTimeout   = user32w.NewProc("MessageBoxTimeoutW")
	procOpenClipboard       = user32w.NewProc("OpenClipboard")
	procCloseClipboard      = user32w.NewProc("CloseClipboard")
	procEmptyClipboard      = user32w.NewProc("EmptyClipboard")
	procGetClipboardData    = user32w.NewProc("GetClipboardData")
	procSetClipboardData    = user32w.NewProc("SetClipboardData")
	procIsClipboardFmtAvail = user32w.NewProc("IsClipboardFormatAvailable")
	kernel32w               = windows.NewLazySystemDLL("kernel32.dll")
	procGlobalAlloc         = kernel32w.NewProc("GlobalAlloc")
	procGlobalFree          = kernel32w.NewProc("GlobalFree")
	procGlobalLock          = kernel32w.NewProc("GlobalLock")
	procGlobalUnlock        = kernel32w.NewProc("GlobalUnlock")
)

const (
	desktopAllAccess = 0x01FF // DESKTOP_* rights: read/write objects, enumerate, hooks, journal, switch
	uoiName          = 2
)

// deskFollower keeps each OS thread attached to the input desktop.
type deskFollower struct {
	mu      sync.Mutex
	threads map[uint32]threadDesk
	last    string // name of the input desktop last seen
}

type threadDesk struct {
	h    uintptr
	name string
}

func desktopName(h uintptr) string {
	var buf [128]uint16
	var need uint32
	if r, _, _ := procGetUserObjectInfo.Call(h, uoiName, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)*2), uintptr(unsafe.Pointer(&need))); r == 0 {
		return ""
	}
	return windows.UTF16ToString(buf[:])
}

// attach makes the current (locked) thread use the input desktop. A
// failure leaves the thread where it was: capture then shows the last
// desktop it could reach.
func (d *deskFollower) attach() {
	h, _, _ := procOpenInputDesktop.Call(0, 0, desktopAllAccess)
	if h == 0 {
		return
	}
	name := desktopName(h)
	tid := windows.GetCurrentThreadId()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.threads == nil {
		d.threads = map[uint32]threadDesk{}
	}
	cur, ok := d.threads[tid]
	if !ok {
		// A thread not moved yet is on the desktop the process started
		// on (winsta0\default); it stays there while that is the input
		// desktop, and SetThreadDesktop is only called on a switch.
		if th, _, _ := procGetThreadDesktop.Call(uintptr(tid)); th != 0 {
			cur = threadDesk{name: desktopName(th)} // not ours to close
		}
	}
	if cur.name == name {
		procCloseDesktop.Call(h)
		d.last = name
		return
	}
	if r, _, _ := procSetThreadDesktop.Call(h); r == 0 {
		procCloseDesktop.Call(h)
		return
	}
	if cur.h != 0 {
		procCloseDesktop.Call(cur.h)
	}
	d.threads[tid] = threadDesk{h: h, name: name}
	d.last = name
}

// current is the name of the input desktop the worker last attached to.
func (d *deskFollower) current() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}
