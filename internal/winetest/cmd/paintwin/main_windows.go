package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	user32   = windows.NewLazySystemDLL("user32.dll")
	gdi32    = windows.NewLazySystemDLL("gdi32.dll")
	kernel32 = windows.NewLazySystemDLL("kernel32.dll")

	pRegisterClassExW    = user32.NewProc("RegisterClassExW")
	pCreateWindowExW     = user32.NewProc("CreateWindowExW")
	pDefWindowProcW      = user32.NewProc("DefWindowProcW")
	pGetMessageW         = user32.NewProc("GetMessageW")
	pTranslateMessage    = user32.NewProc("TranslateMessage")
	pDispatchMessageW    = user32.NewProc("DispatchMessageW")
	pPostQuitMessage     = user32.NewProc("PostQuitMessage")
	pSetFocus            = user32.NewProc("SetFocus")
	pSetForegroundWindow = user32.NewProc("SetForegroundWindow")
	pGetWindowTextW      = user32.NewProc("GetWindowTextW")
	pSetTimer            = user32.NewProc("SetTimer")
	pGetForegroundWindow = user32.NewProc("GetForegroundWindow")
	pGetFocus            = user32.NewProc("GetFocus")
	pCreateSolidBrush    = gdi32.NewProc("CreateSolidBrush")
	pGetModuleHandleW    = kernel32.NewProc("GetModuleHandleW")
)

const (
	wsPopup       = 0x80000000
	wsChild       = 0x40000000
	wsVisible     = 0x10000000
	wsBorder      = 0x00800000
	esAutoHScroll = 0x0080
	wsExTopmost   = 0x00000008
	wmDestroy     = 0x0002
	wmActivate    = 0x0006
	wmTimer       = 0x0113
)

type wndClassEx struct {
	Size       uint32
	Style      uint32
	WndProc    uintptr
	ClsExtra   int32
	WndExtra   int32
	Instance   uintptr
	Icon       uintptr
	Cursor     uintptr
	Background uintptr
	MenuName   *uint16
	ClassName  *uint16
	IconSm     uintptr
}

type msg struct {
	Hwnd    uintptr
	Message uint32
	WParam  uintptr
	LParam  uintptr
	Time    uint32
	Pt      struct{ X, Y int32 }
	Private uint32
}

// A window's messages go to the thread that created it: the whole
// program stays on the main thread.
func init() { runtime.LockOSThread() }

func main() {
	x := flag.Int("x", 100, "window left, in desktop pixels")
	y := flag.Int("y", 120, "window top")
	w := flag.Int("w", 600, "window width")
	h := flag.Int("h", 400, "window height")
	color := flag.String("color", "e03c28", "window colour, RRGGBB")
	out := flag.String("out", "", "file the EDIT control's text is written to on every change")
	flag.Parse()
	rgb, err := strconv.ParseUint(*color, 16, 32)
	if err != nil || len(*color) != 6 {
		fmt.Fprintf(os.Stderr, "paintwin: -color %q: want RRGGBB\n", *color)
		os.Exit(2)
	}
	// COLORREF is 0x00BBGGRR.
	ref := (rgb>>16)&0xff | rgb&0xff00 | (rgb&0xff)<<16
	brush, _, _ := pCreateSolidBrush.Call(uintptr(ref))
	inst, _, _ := pGetModuleHandleW.Call(0)

	var edit, hwnd uintptr
	last := ""
	var lastFg, lastFocus uintptr
	ticks := 0
	proc := func(hwnd uintptr, m uint32, wp, lp uintptr) uintptr {
		switch m {
		case wmActivate:
			if edit != 0 {
				pSetFocus.Call(edit)
			}
		case wmTimer:
			// Report who has the foreground and the focus when that
			// changes (a test that finds no text can tell why). For its
			// first 5 s the program takes the foreground back: wine's
			// desktop window, created with the first program of a fresh
			// prefix, can be activated after this window was.
			ticks++
			fg, _, _ := pGetForegroundWindow.Call()
			focus, _, _ := pGetFocus.Call()
			if fg != lastFg || focus != lastFocus {
				fmt.Printf("foreground %#x (ours %v), focus %#x (the EDIT: %v)\n", fg, fg == hwnd, focus, focus == edit)
				lastFg, lastFocus = fg, focus
			}
			if fg != hwnd && ticks < 50 {
				pSetForegroundWindow.Call(hwnd)
				pSetFocus.Call(edit)
			}
			var buf [256]uint16
			n, _, _ := pGetWindowTextW.Call(edit, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			if s := syscall.UTF16ToString(buf[:n]); s != last {
				last = s
				fmt.Printf("text %q\n", s)
				if *out != "" {
					if err := os.WriteFile(*out, []byte(s), 0o644); err != nil {
						fmt.Fprintf(os.Stderr, "paintwin: %v\n", err)
					}
				}
			}
			return 0
		case wmDestroy:
			pPostQuitMessage.Call(0)
			return 0
		}
		r, _, _ := pDefWindowProcW.Call(hwnd, uintptr(m), wp, lp)
		return r
	}
	class := windows.StringToUTF16Ptr("MeshgoPaintWin")
	wc := wndClassEx{WndProc: windows.NewCallback(proc), Instance: inst, Background: brush, ClassName: class}
	wc.Size = uint32(unsafe.Sizeof(wc))
	r, _, err := pRegisterClassExW.Call(uintptr(unsafe.Pointer(&wc)))
	if r == 0 {
		fmt.Fprintf(os.Stderr, "paintwin: RegisterClassExW: %v\n", err)
		os.Exit(1)
	}
	hwnd, _, err = pCreateWindowExW.Call(wsExTopmost, uintptr(unsafe.Pointer(class)), uintptr(unsafe.Pointer(windows.StringToUTF16Ptr("paintwin"))),
		wsPopup|wsVisible, uintptr(*x), uintptr(*y), uintptr(*w), uintptr(*h), 0, 0, inst, 0)
	if hwnd == 0 {
		fmt.Fprintf(os.Stderr, "paintwin: CreateWindowExW: %v\n", err)
		os.Exit(1)
	}
	edit, _, err = pCreateWindowExW.Call(0, uintptr(unsafe.Pointer(windows.StringToUTF16Ptr("EDIT"))), 0,
		wsChild|wsVisible|wsBorder|esAutoHScroll, 20, 20, uintptr(*w-40), 32, hwnd, 1, inst, 0)
	if edit == 0 {
		fmt.Fprintf(os.Stderr, "paintwin: CreateWindowExW(EDIT): %v\n", err)
		os.Exit(1)
	}
	pSetForegroundWindow.Call(hwnd)
	pSetFocus.Call(edit)
	pSetTimer.Call(hwnd, 1, 100, 0)
	fmt.Printf("ready %dx%d at %d,%d colour %s\n", *w, *h, *x, *y, *color)
	var m msg
	for {
		r, _, _ := pGetMessageW.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0)
		if int32(r) <= 0 {
			return
		}
		pTranslateMessage.Call(uintptr(unsafe.Pointer(&m)))
		pDispatchMessageW.Call(uintptr(unsafe.Pointer(&m)))
	}
}
