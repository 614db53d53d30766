package sessionworker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// PipePrefix starts every worker pipe's name; the rest is random so no
// other process can guess it, and the first instance flag makes squatting
// on it fail for us rather than succeed for them.
const PipePrefix = `\\.\pipe\meshagent-worker-`

// PipeSDDL is the pipe's security descriptor: a protected DACL granting
// full access to LocalSystem and to each given SID, and nothing else (no
// inheritance, no Everyone, no Administrators: an administrator's process
// in another session cannot open a worker's pipe).
func PipeSDDL(sids []*windows.SID) string {
	var b strings.Builder
	b.WriteString("D:P(A;;GA;;;SY)")
	seen := map[string]bool{"S-1-5-18": true}
	for _, s := range sids {
		str := s.String()
		if seen[str] {
			continue
		}
		seen[str] = true
		fmt.Fprintf(&b, "(A;;GA;;;%s)", str)
	}
	return b.String()
}

// newPipeName returns an unguessable pipe name.
func newPipeName() string {
	var r [16]byte
	rand.Read(r[:])
	return PipePrefix + hex.EncodeToString(r[:])
}

// listener is the server end of one worker's pipe, before the worker has
// connected.
type listener struct {
	name string
	h    windows.Handle
}

// listenPipe creates the pipe name admitting only SYSTEM and sids, one
// instance, local clients only, overlapped so reads and writes can run
// at the same time.
func listenPipe(name string, sids []*windows.SID) (*listener, error) {
	sd, err := windows.SecurityDescriptorFromString(PipeSDDL(sids))
	if err != nil {
		return nil, fmt.Errorf("pipe security descriptor: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateNamedPipe(n,
		windows.PIPE_ACCESS_DUPLEX|windows.FILE_FLAG_OVERLAPPED|windows.FILE_FLAG_FIRST_PIPE_INSTANCE,
		windows.PIPE_TYPE_BYTE|windows.PIPE_READMODE_BYTE|windows.PIPE_WAIT|windows.PIPE_REJECT_REMOTE_CLIENTS,
		1, 256<<10, 256<<10, 0, sa)
	if err != nil {
		return nil, fmt.Errorf("CreateNamedPipe %s: %w", name, err)
	}
	return &listener{name: name, h: h}, nil
}

// DACL reads the pipe's DACL back from the kernel object, as SDDL.
func (l *listener) DACL() (string, error) { return handleDACL(l.h) }

func handleDACL(h windows.Handle) (string, error) {
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return "", fmt.Errorf("GetSecurityInfo: %w", err)
	}
	return sd.String(), nil
}

func (l *listener) Close() error {
	if l.h == windows.InvalidHandle {
		return nil
	}
	err := windows.CloseHandle(l.h)
	l.h = windows.InvalidHandle
	return err
}

// accept waits for the worker to connect and checks that the client is
// the process we started (wantPID; 0 skips the check). The returned file
// owns the handle.
func (l *listener) accept(ctx context.Context, wantPID uint32) (*os.File, error) {
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("CreateEvent: %w", err)
	}
	defer windows.CloseHandle(ev)
	ov := &windows.Overlapped{HEvent: ev}
	err = windows.ConnectNamedPipe(l.h, ov)
	switch {
	case err == nil, errors.Is(err, windows.ERROR_PIPE_CONNECTED):
	case errors.Is(err, windows.ERROR_IO_PENDING):
		for {
			r, werr := windows.WaitForSingleObject(ev, 100)
			if werr != nil {
				return nil, fmt.Errorf("wait for worker: %w", werr)
			}
			if r == windows.WAIT_OBJECT_0 {
				var n uint32
				if err := windows.GetOverlappedResult(l.h, ov, &n, false); err != nil {
					return nil, fmt.Errorf("ConnectNamedPipe: %w", err)
				}
				break
			}
			if ctx.Err() != nil {
				windows.CancelIoEx(l.h, ov)
				var n uint32
				windows.GetOverlappedResult(l.h, ov, &n, true)
				return nil, fmt.Errorf("wait for worker: %w", ctx.Err())
			}
		}
	default:
		return nil, fmt.Errorf("ConnectNamedPipe: %w", err)
	}
	if wantPID != 0 {
		var pid uint32
		if err := windows.GetNamedPipeClientProcessId(l.h, &pid); err != nil {
			return nil, fmt.Errorf("GetNamedPipeClientProcessId: %w", err)
		}
		if pid != wantPID {
			return nil, fmt.Errorf("pipe client is process %d, not the worker %d", pid, wantPID)
		}
	}
	f := os.NewFile(uintptr(l.h), l.name)
	l.h = windows.InvalidHandle
	return f, nil
}

// DialPipe opens a worker pipe from the worker's side, waiting up to
// timeout for the service to create it.
func DialPipe(name string, timeout time.Duration) (*os.File, error) {
	if !strings.HasPrefix(name, PipePrefix) {
		return nil, fmt.Errorf("not a worker pipe: %q", name)
	}
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		h, err := windows.CreateFile(n, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, windows.FILE_FLAG_OVERLAPPED, 0)
		if err == nil {
			return os.NewFile(uintptr(h), name), nil
		}
		if time.Now().After(deadline) || (!errors.Is(err, windows.ERROR_PIPE_BUSY) && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND)) {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
