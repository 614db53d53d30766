// Package session defines the transport every remote session runs on: an
// ordered channel of frames, each text or binary, that can be closed.
//
// The relay WebSocket (meshrelay.ashx) and the WebRTC data channel both
// implement Channel, so the terminal, files and desktop handlers never know
// which one carries them, and the WebRTC switch-over lives in one place
// (proto/webrtc). Protocol reference: ../shared/protocol/sessions.md §1.
package session

import (
	"context"
	"errors"
)

// Frame is one message on a session channel. Binary mirrors the WebSocket
// opcode: MeshCentral's clients treat text and binary frames differently
// (sessions.md §1.9), so the distinction must survive every transport.
type Frame struct {
	Binary bool
	Data   []byte
}

// Channel is an ordered, message-oriented, bidirectional session transport.
//
// Read blocks until a frame arrives, ctx is done, or the channel closes (then
// it returns an error wrapping ErrClosed or the transport's error). Write may
// block for back pressure. Close is idempotent and unblocks pending calls.
// Read and Write may be called from different goroutines, but Read must not be
// called concurrently with itself, nor Write with itself.
type Channel interface {
	Read(ctx context.Context) (Frame, error)
	Write(ctx context.Context, f Frame) error
	Close() error
}

// ErrClosed is returned (possibly wrapped) by Read and Write after Close.
var ErrClosed = errors.New("session: channel closed")

// Info describes the user and the rights a session was opened with. It comes
// from the server's tunnel request (control.md §6.8, sessions.md §1.2) and is
// trusted only because the control channel that carried it was authenticated.
type Info struct {
	Protocol  int    // relay protocol number (1 terminal, 2 desktop, 5 files, ...)
	Rights    uint32 // MeshCentral rights bitmask, see the Right* constants
	Consent   uint32 // user-consent bits, see the Consent* constants
	UserID    string // e.g. "user//admin"
	Username  string
	RealName  string
	RemoteIP  string
	SessionID string // the user's control session id, echoed in replies
	ViewOnly  bool   // desktopviewonly from the server
	// Options is the client's "options" control message (sessions.md §1.7),
	// raw JSON, or nil when none was sent.
	Options []byte
}

// Rights bits (control.md §6.9, sessions.md §1.10; meshuser.js MESHRIGHT_*).
const (
	RightEditMesh        uint32 = 0x00000001
	RightManageUsers     uint32 = 0x00000002
	RightManageComputers uint32 = 0x00000004
	RightRemoteControl   uint32 = 0x00000008
	RightAgentConsole    uint32 = 0x00000010
	RightServerFiles     uint32 = 0x00000020
	RightWakeDevice      uint32 = 0x00000040
	RightSetNotes        uint32 = 0x00000080
	RightRemoteViewOnly  uint32 = 0x00000100
	RightNoTerminal      uint32 = 0x00000200
	RightNoFiles         uint32 = 0x00000400
	RightNoAMT           uint32 = 0x00000800
	RightLimitedInput    uint32 = 0x00001000
	RightLimitEvents     uint32 = 0x00002000
	RightChatNotify      uint32 = 0x00004000
	RightUninstall       uint32 = 0x00008000
	RightNoDesktop       uint32 = 0x00010000
	RightRemoteCommand   uint32 = 0x00020000
	RightResetOff        uint32 = 0x00040000
	RightGuestSharing    uint32 = 0x00080000
	RightDeviceDetails   uint32 = 0x00100000
	RightRelay           uint32 = 0x00200000
	RightAdmin           uint32 = 0xFFFFFFFF // full admin: "deny" bits are ignored
)

// Consent bits (sessions.md §1.10; meshuser.js USERCONSENT_*).
const (
	ConsentDesktopNotify  uint32 = 0x0001
	ConsentTerminalNotify uint32 = 0x0002
	ConsentFilesNotify    uint32 = 0x0004
	ConsentDesktopPrompt  uint32 = 0x0008
	ConsentTerminalPrompt uint32 = 0x0010
	ConsentFilesPrompt    uint32 = 0x0020
	ConsentToolbar        uint32 = 0x0040
)

// Relay protocol numbers (sessions.md §1.7).
const (
	ProtoTerminal     = 1
	ProtoDesktop      = 2
	ProtoFiles        = 5
	ProtoPowerShell   = 6
	ProtoUserShell    = 8
	ProtoUserPS       = 9
	ProtoFileTransfer = 10
)

// denies reports whether rights carry the deny bit, honouring full admin,
// which ignores every deny bit.
func denies(rights, bit uint32) bool { return rights != RightAdmin && rights&bit != 0 }

// AllowTerminal reports whether rights permit a terminal (protocols 1, 6, 8, 9).
func AllowTerminal(rights uint32) bool {
	return rights&RightRemoteControl != 0 && !denies(rights, RightNoTerminal)
}

// AllowFiles reports whether rights permit the files protocol (5).
func AllowFiles(rights uint32) bool {
	return rights&RightRemoteControl != 0 && !denies(rights, RightNoFiles)
}

// AllowDesktopView reports whether rights permit opening a desktop session (2).
func AllowDesktopView(rights uint32) bool {
	return rights&(RightRemoteControl|RightRemoteViewOnly) != 0 && !denies(rights, RightNoDesktop)
}

// AllowDesktopInput reports whether a desktop session may inject input.
func AllowDesktopInput(rights uint32, viewOnly bool) bool {
	if viewOnly {
		return false
	}
	return rights == RightAdmin || (rights&RightRemoteControl != 0 && rights&RightRemoteViewOnly == 0)
}

// AllowConsole reports whether rights permit agent console commands.
func AllowConsole(rights uint32) bool {
	return rights&RightRemoteControl != 0 && rights&RightAgentConsole != 0
}
