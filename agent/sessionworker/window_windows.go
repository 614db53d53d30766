package sessionworker

import (
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/meshgo/meshagent/agent/consent"
	"golang.org/x/sys/windows"
)

// The consent prompt and the privacy bar are small windows of their own
// (MessageBox cannot label its buttons Allow and Deny, and has no bar):
// a frameless topmost popup with a text and push buttons, each window on
// a locked OS thread of its own with its own message loop, so the
// service's cancel (PostMessage) and text updates (SetWindowText) reach it
// from any goroutine.

var (
	procRegisterClassEx  = user32w.NewProc("RegisterClassExW")
	procCreateWindowEx   = user32w.NewProc("CreateWindowExW")
	procDefWindowProc    = user32w.NewProc("DefWindowProcW")
	procDestroyWindow    = user32w.NewProc("DestroyWindow")
	procGetMessage       = user32w.NewProc("GetMessageW")
	procTranslateMessage = user32w.NewProc("TranslateMessage")
	procDispatchMessage  = user32w.NewProc("DispatchMessageW")
	procPostQuitMessage  = user32w.NewProc("PostQuitMessage")
	procSetWindowText    = user32w.NewProc("SetWindowTextW")
	procSendMessage      = user32w.NewProc("SendMessageW")
	procSetTimer         = user32w.NewProc("SetTimer")
	procShowWindow       = user32w.NewProc("ShowWindow")
	procSetForeground    = user32w.NewProc("SetForegroundWindow")
	procGetSystemMetrics = user32w.NewProc("GetSystemMetrics")
	procLoadCursor       = user32w.NewProc("LoadCursorW")
	procGetStockObject   = windows.NewLazySystemDLL("gdi32.dll").NewProc("GetStockObject")
	procGetModuleHandle  = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetModuleHandleW")
)

const (
	wsPopup          = 0x80000000
	wsChild          = 0x40000000
	wsVisible        = 0x10000000
	wsBorder         = 0x00800000
	wsTabStop        = 0x00010000
	wsExTopmost      = 0x00000008
	wsExToolWindow   = 0x00000080
	bsDefPushButton  = 0x1
	ssLeft           = 0x0
	ssCenterImage    = 0x200
	wmDestroy        = 0x0002
	wmClose          = 0x0010
	wmSetFont        = 0x0030
	wmCommand        = 0x0111
	wmTimer          = 0x0113
	swShowNormal     = 1
	smCXScreen       = 0
	smCYScreen       = 1
	defaultGUIFont   = 17
	colorBtnFace     = 15
	idcArrow         = 32512
	uiTimeoutTimerID = 1
	// Button ids; Allow and Deny are IDYES and IDNO, so WM_COMMAND with
	// those (what a test or an accessibility tool sends) answers too.
	idAllow      = idYes
	idDeny       = 7
	idDisconnect = 100
)

type wndClassEx struct {
	size       uint32
	style      uint32
	wndProc    uintptr
	clsExtra   int32
	wndExtra   int32
	instance   uintptr
	icon       uintptr
	cursor     uintptr
	background uintptr
	menuName   *uint16
	className  *uint16
	iconSm     uintptr
}

type winMsg struct {
	hwnd    uintptr
	message uint32
	wParam  uintptr
	lParam  uintptr
	time    uint32
	pt      struct{ x, y int32 }
	private uint32
}

// uiWindow is one of our top-level windows; its events arrive on its own
// thread through wndProc.
type uiWindow struct {
	hwnd uintptr
	// onCommand gets a button's id, onTimeout the timer, onClose a close
	// that was not ours (the user or the system closing it).
	onCommand func(id int)
	onTimeout func()
	onClose   func()
	closing   atomic.Bool // set before we close it ourselves
}

var (
	uiClassOnce sync.Once
	uiClassErr  error
	uiClassName = windows.StringToUTF16Ptr("MeshGoSessionWorkerUI")
	uiWindowsMu sync.Mutex
	uiWindows   = map[uintptr]*uiWindow{}
	uiWndProc   = windows.NewCallback(func(hwnd, msg, wParam, lParam uintptr) uintptr {
		uiWindowsMu.Lock()
		w := uiWindows[hwnd]
		uiWindowsMu.Unlock()
		if w != nil {
			switch msg {
			case wmCommand:
				if w.onCommand != nil {
					w.onCommand(int(wParam & 0xffff))
				}
				return 0
			case wmTimer:
				if wParam == uiTimeoutTimerID && w.onTimeout != nil {
					w.onTimeout()
				}
				return 0
			case wmClose:
				if !w.closing.Load() && w.onClose != nil {
					w.onClose()
				}
				procDestroyWindow.Call(hwnd)
				return 0
			case wmDestroy:
				uiWindowsMu.Lock()
				delete(uiWindows, hwnd)
				uiWindowsMu.Unlock()
				procPostQuitMessage.Call(0)
				return 0
			}
		}
		r, _, _ := procDefWindowProc.Call(hwnd, msg, wParam, lParam)
		return r
	})
)

func registerUIClass() error {
	uiClassOnce.Do(func() {
		inst, _, _ := procGetModuleHandle.Call(0)
		cur, _, _ := procLoadCursor.Call(0, idcArrow)
		wc := wndClassEx{wndProc: uiWndProc, instance: inst, cursor: cur, background: colorBtnFace + 1, className: uiClassName}
		wc.size = uint32(unsafe.Sizeof(wc))
		if r, _, err := procRegisterClassEx.Call(uintptr(unsafe.Pointer(&wc))); r == 0 {
			uiClassErr = fmt.Errorf("RegisterClassEx: %w", err)
		}
	})
	return uiClassErr
}

// control is a child window of a uiWindow.
type control struct {
	class string
	text  string
	style uint32
	id    int
	r     image.Rectangle
}

// openWindow creates a topmost frameless window titled title of w x h at
// (x, y) with its controls, on a new locked thread that runs its message
// loop until the window is destroyed; loopDone closes then. It returns
// the window's handle and the controls' handles.
func openWindow(title string, x, y, w, h int, controls []control, uw *uiWindow) (hwnd uintptr, kids []uintptr, loopDone <-chan struct{}, err error) {
	if err := registerUIClass(); err != nil {
		return 0, nil, nil, err
	}
	type created struct {
		hwnd uintptr
		kids []uintptr
		err  error
	}
	ready := make(chan created, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(done)
		t, err := windows.UTF16PtrFromString(title)
		if err != nil {
			ready <- created{err: err}
			return
		}
		inst, _, _ := procGetModuleHandle.Call(0)
		hwnd, _, e := procCreateWindowEx.Call(wsExTopmost|wsExToolWindow, uintptr(unsafe.Pointer(uiClassName)), uintptr(unsafe.Pointer(t)),
			wsPopup|wsBorder, uintptr(x), uintptr(y), uintptr(w), uintptr(h), 0, 0, inst, 0)
		if hwnd == 0 {
			ready <- created{err: fmt.Errorf("CreateWindowEx: %w", e)}
			return
		}
		font, _, _ := procGetStockObject.Call(defaultGUIFont)
		var kids []uintptr
		for _, c := range controls {
			cls, _ := windows.UTF16PtrFromString(c.class)
			txt, err := windows.UTF16PtrFromString(c.text)
			if err != nil {
				procDestroyWindow.Call(hwnd)
				ready <- created{err: err}
				return
			}
			k, _, e := procCreateWindowEx.Call(0, uintptr(unsafe.Pointer(cls)), uintptr(unsafe.Pointer(txt)), uintptr(wsChild|wsVisible|c.style),
				uintptr(c.r.Min.X), uintptr(c.r.Min.Y), uintptr(c.r.Dx()), uintptr(c.r.Dy()), hwnd, uintptr(c.id), inst, 0)
			if k == 0 {
				procDestroyWindow.Call(hwnd)
				ready <- created{err: fmt.Errorf("CreateWindowEx %s: %w", c.class, e)}
				return
			}
			procSendMessage.Call(k, wmSetFont, font, 1)
			kids = append(kids, k)
		}
		uw.hwnd = hwnd
		uiWindowsMu.Lock()
		uiWindows[hwnd] = uw
		uiWindowsMu.Unlock()
		procShowWindow.Call(hwnd, swShowNormal)
		procSetForeground.Call(hwnd)
		ready <- created{hwnd: hwnd, kids: kids}
		var m winMsg
		for {
			r, _, _ := procGetMessage.Call(uintptr(unsafe.Pointer(&m)), 0, 0, 0)
			if r == 0 || int32(r) == -1 {
				return
			}
			procTranslateMessage.Call(uintptr(unsafe.Pointer(&m)))
			procDispatchMessage.Call(uintptr(unsafe.Pointer(&m)))
		}
	}()
	c := <-ready
	if c.err != nil {
		<-done
		return 0, nil, nil, c.err
	}
	return c.hwnd, c.kids, done, nil
}

func screenSize() (int, int) {
	w, _, _ := procGetSystemMetrics.Call(smCXScreen)
	h, _, _ := procGetSystemMetrics.Call(smCYScreen)
	return int(w), int(h)
}

func setWindowText(hwnd uintptr, text string) error {
	t, err := windows.UTF16PtrFromString(text)
	if err != nil {
		return err
	}
	if r, _, err := procSetWindowText.Call(hwnd, uintptr(unsafe.Pointer(t))); r == 0 {
		return fmt.Errorf("SetWindowText: %w", err)
	}
	return nil
}

// consentWindow asks p as a question with Allow and Deny (p.Allow and
// p.Deny when set) in the middle of the screen, and answers when a button
// is pressed (Allow: Accepted), the window is closed (Denied), timeout
// passes (TimedOut) or ctx ends (the window is taken down; ctx's error).
func consentWindow(ctx context.Context, p Prompt, title string, timeout time.Duration) (Answer, error) {
	allowText, denyText := p.Allow, p.Deny
	if allowText == "" {
		allowText = "Allow"
	}
	if denyText == "" {
		denyText = "Deny"
	}
	allow, deny := PromptButtons()
	answer := make(chan Answer, 1)
	give := func(a Answer) {
		select {
		case answer <- a:
		default:
		}
	}
	uw := &uiWindow{}
	uw.onCommand = func(id int) {
		switch id {
		case idAllow:
			give(Answer{Accepted: true})
		case idDeny:
			give(Answer{})
		default:
			return
		}
		uw.closing.Store(true)
		procDestroyWindow.Call(uw.hwnd)
	}
	uw.onTimeout = func() {
		give(Answer{TimedOut: true})
		uw.closing.Store(true)
		procDestroyWindow.Call(uw.hwnd)
	}
	uw.onClose = func() { give(Answer{}) }
	sw, sh := screenSize()
	hwnd, _, done, err := openWindow(title, (sw-PromptWidth)/2, (sh-PromptHeight)/2, PromptWidth, PromptHeight, []control{
		{class: "STATIC", text: p.Text, style: ssLeft, r: PromptTextArea()},
		{class: "BUTTON", text: allowText, style: wsTabStop | bsDefPushButton, id: idAllow, r: allow},
		{class: "BUTTON", text: denyText, style: wsTabStop, id: idDeny, r: deny},
	}, uw)
	if err != nil {
		return Answer{}, fmt.Errorf("consent prompt: %w", err)
	}
	if r, _, err := procSetTimer.Call(hwnd, uiTimeoutTimerID, uintptr(timeout/time.Millisecond), 0); r == 0 {
		procPostMessage.Call(hwnd, wmClose, 0, 0)
		<-done
		return Answer{}, fmt.Errorf("consent prompt timer: %w", err)
	}
	select {
	case <-done:
		select {
		case a := <-answer:
			return a, nil
		default:
			return Answer{}, errors.New("consent prompt: the window went away unanswered")
		}
	case <-ctx.Done():
		// The viewer left: take the question down.
		procPostMessage.Call(hwnd, wmClose, 0, 0)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return Answer{}, ctx.Err()
	}
}

// WindowsBar shows the privacy bar in this process's session: a topmost
// strip at the top middle of the screen titled with text, the text and a
// Disconnect button, which runs onDisconnect (and leaves the bar up: the
// sessions ending take it down, through Close). Closing the window any
// other way runs onDisconnect too, as the C agent's bar does.
func WindowsBar(text string, onDisconnect func()) (consent.Bar, error) {
	b := &windowsBar{}
	var once sync.Once
	click := func() {
		if onDisconnect != nil {
			once.Do(func() { go onDisconnect() })
		}
	}
	uw := &uiWindow{onCommand: func(id int) {
		if id == idDisconnect {
			click()
		}
	}, onClose: click}
	btn := BarButton()
	sw, _ := screenSize()
	hwnd, kids, done, err := openWindow(text, (sw-BarWidth)/2, 0, BarWidth, BarHeight, []control{
		{class: "STATIC", text: text, style: ssLeft | ssCenterImage, r: image.Rect(10, btn.Min.Y, btn.Min.X-10, btn.Max.Y)},
		{class: "BUTTON", text: "Disconnect", style: wsTabStop, id: idDisconnect, r: btn},
	}, uw)
	if err != nil {
		return nil, fmt.Errorf("privacy bar: %w", err)
	}
	b.hwnd, b.label, b.done, b.uw = hwnd, kids[0], done, uw
	return b, nil
}

type windowsBar struct {
	hwnd, label uintptr
	uw          *uiWindow
	done        <-chan struct{}
	closeOnce   sync.Once
}

// SetText shows new text (the viewers changed) in the bar and its title.
func (b *windowsBar) SetText(text string) error {
	select {
	case <-b.done:
		return errors.New("privacy bar: closed")
	default:
	}
	if err := setWindowText(b.label, text); err != nil {
		return err
	}
	return setWindowText(b.hwnd, text)
}

// Close takes the bar down without counting as the user's Disconnect.
func (b *windowsBar) Close() error {
	b.closeOnce.Do(func() {
		// closing is read on the window's thread, which the posted
		// message reaches after this write (PostMessage orders it).
		b.uw.closing.Store(true)
		procPostMessage.Call(b.hwnd, wmClose, 0, 0)
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
		}
	})
	return nil
}
