package sessionworker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
	"unicode/utf16"
	"unsafe"

	"github.com/meshgo/meshagent/agent/consent"
	"golang.org/x/sys/windows"
)

// MessageBox flags and results (winuser.h).
const (
	mbOK            = 0x0
	mbIconInfo      = 0x40
	mbTopmost       = 0x40000
	mbSetForeground = 0x10000
	idOK            = 1
	idYes           = 6 // a consent window's Allow has the same id
	idTimeout       = 32000
)

// NotifyTimeout is how long a toast or notification stays up: Windows'
// toasts need a registered app identity a service's helper does not have,
// so a notice is a message box without a question that closes itself.
const NotifyTimeout = 10 * time.Second

// Windows is the Windows Prompter: on the calling process's desktop (the
// session worker's, which is the user's), with a timeout, a consent
// question is a window of ours with Allow and Deny (consentWindow); the
// other kinds are a MessageBox with OK.
// It is a plain value the agent's consent and notification seam can use
// directly when the agent already runs in the user's session, and that
// the session worker serves when the agent is the service.
func Windows() Prompter { return PrompterFunc(messageBox) }

func messageBox(ctx context.Context, p Prompt) (Answer, error) {
	flags := uint32(mbTopmost | mbSetForeground)
	timeout := p.Timeout
	switch p.Kind {
	case "consent":
		if timeout == 0 {
			timeout = DefaultConsentTimeout
		}
	case "messagebox", "prompt":
		flags |= mbOK | mbIconInfo
		if timeout == 0 {
			timeout = DefaultMessageBoxTimeout
		}
	case "toast", "notify":
		flags |= mbOK | mbIconInfo
		if timeout == 0 {
			timeout = NotifyTimeout
		}
	default:
		return Answer{}, fmt.Errorf("prompt: unknown kind %q", p.Kind)
	}
	title := p.Title
	if title == "" {
		title = consent.DefaultTitle
	}
	if p.Kind == "consent" {
		return consentWindow(ctx, p, title, timeout)
	}
	t, err := windows.UTF16PtrFromString(title)
	if err != nil {
		return Answer{}, fmt.Errorf("prompt title: %w", err)
	}
	txt, err := windows.UTF16PtrFromString(p.Text)
	if err != nil {
		return Answer{}, fmt.Errorf("prompt text: %w", err)
	}
	type res struct {
		r   uintptr
		err error
	}
	done := make(chan res, 1)
	tid := make(chan uint32, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- windows.GetCurrentThreadId()
		r, _, e := procMessageBoxTimeout.Call(0, uintptr(unsafe.Pointer(txt)), uintptr(unsafe.Pointer(t)), uintptr(flags), 0, uintptr(timeout/time.Millisecond))
		done <- res{r, e}
	}()
	thread := <-tid
	var r res
	select {
	case r = <-done:
	case <-ctx.Done():
		// The answer is no longer wanted (the viewer left): take the box
		// down rather than leave a stale question on the user's screen.
		closeThreadWindows(thread)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return Answer{}, ctx.Err()
	}
	switch r.r {
	case 0:
		return Answer{}, fmt.Errorf("MessageBoxTimeout: %w", r.err)
	case idTimeout:
		return Answer{TimedOut: true}, nil
	case idOK, idYes:
		return Answer{Accepted: true}, nil
	}
	return Answer{}, nil
}

// WindowsClipboard is the clipboard of the window station the process
// runs on: the user's, when the process is their session's worker or
// runs in their session itself.
type WindowsClipboard struct{}

const cfUnicodeText = 13

var errClipboardBusy = errors.New("clipboard is held by another program")

func openClipboard(ctx context.Context) error {
	for i := 0; ; i++ {
		if r, _, _ := procOpenClipboard.Call(0); r != 0 {
			return nil
		}
		if i == 20 {
			return errClipboardBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Read returns the clipboard's text ("" when it holds none).
func (WindowsClipboard) Read(ctx context.Context) (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := openClipboard(ctx); err != nil {
		return "", fmt.Errorf("clipboard: %w", err)
	}
	defer procCloseClipboard.Call()
	if r, _, _ := procIsClipboardFmtAvail.Call(cfUnicodeText); r == 0 {
		return "", nil
	}
	h, _, err := procGetClipboardData.Call(cfUnicodeText)
	if h == 0 {
		return "", fmt.Errorf("GetClipboardData: %w", err)
	}
	p, _, err := procGlobalLock.Call(h)
	if p == 0 {
		return "", fmt.Errorf("GlobalLock: %w", err)
	}
	defer procGlobalUnlock.Call(h)
	return windows.UTF16PtrToString(*(**uint16)(unsafe.Pointer(&p))), nil
}

// Write makes text the clipboard's content.
func (WindowsClipboard) Write(ctx context.Context, text string) error {
	u := utf16.Encode([]rune(text + "\x00"))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := openClipboard(ctx); err != nil {
		return fmt.Errorf("clipboard: %w", err)
	}
	defer procCloseClipboard.Call()
	if r, _, err := procEmptyClipboard.Call(); r == 0 {
		return fmt.Errorf("EmptyClipboard: %w", err)
	}
	const gmemMoveable = 0x0002
	h, _, err := procGlobalAlloc.Call(gmemMoveable, uintptr(len(u)*2))
	if h == 0 {
		return fmt.Errorf("GlobalAlloc: %w", err)
	}
	p, _, err := procGlobalLock.Call(h)
	if p == 0 {
		procGlobalFree.Call(h)
		return fmt.Errorf("GlobalLock: %w", err)
	}
	copy(unsafe.Slice(*(**uint16)(unsafe.Pointer(&p)), len(u)), u)
	procGlobalUnlock.Call(h)
	if r, _, err := procSetClipboardData.Call(cfUnicodeText, h); r == 0 {
		procGlobalFree.Call(h)
		return fmt.Errorf("SetClipboardData: %w", err)
	}
	return nil // the clipboard owns h now
}

var (
	procEnumThreadWindows = user32w.NewProc("EnumThreadWindows")
	procPostMessage       = user32w.NewProc("PostMessageW")
	closeWindowCallback   = windows.NewCallback(func(hwnd, _ uintptr) uintptr {
		const wmClose = 0x0010
		procPostMessage.Call(hwnd, wmClose, 0, 0)
		return 1
	})
)

// closeThreadWindows asks every top-level window of a thread to close.
func closeThreadWindows(tid uint32) {
	procEnumThreadWindows.Call(uintptr(tid), closeWindowCallback, 0)
}
