// Package consent decides when the local user must be asked before a
// remote session starts, what they are told, and what the server's event
// log records about it, as MeshCentral's agent does (meshcore.js
// kvm_consent_ask, terminal_consent_ask, files_consent_ask and their
// notifications). It owns the policy only; showing anything on a screen is
// the job of a UI, the platform seam.
//
// # The seam
//
// UI is implemented once per platform and plugged into the agent's core
// (core.Config.ConsentUI):
//
//   - Linux/X11: agent/desktop.X11UI draws the prompt, the notification and
//     the privacy bar as small native X11 windows on the console user's
//     display, over the X protocol the desktop already speaks.
//   - macOS: agent/desktop.MacUI runs osascript as the console user
//     (display dialog, display notification); no privacy bar.
//   - Windows: agent/sessionworker.ConsentUI shows the prompt (Allow and
//     Deny), the notification (a message box) and the privacy bar as
//     small native windows in the user's session: the session the viewer
//     chose (WithTSID) or the console's, through that session's worker
//     when the agent is the service; wired in cmd/meshagent.
//
// A UI must return ErrNoUI (wrapped) when there is nobody's screen to show
// anything on, so the policy can deny a prompt with MeshCentral's reason.
//
// # Policy (MeshCentral 1.1.55)
//
//   - A prompt bit (desktop 0x08, terminal 0x10, files 0x20) asks the local
//     user, unless an auto-accept option holds: "if no user"
//     (consentAutoAcceptIfNoUser or the per-kind one) when no user is
//     logged in, "if locked" when every logged-in user's session is locked.
//     Presence answers both; a Presence that knows no locked users makes
//     "if locked" never apply, as meshcore.js does with an empty lusers.
//   - The prompt waits consentTimeout seconds (30 by default). On timeout
//     the session is denied, or accepted when consentAutoAccept
//     ("autoacceptontimeout" in the domain's consentmessages) is set.
//   - Accepted: the viewer's "Waiting for user to grant access..." (console
//     msgid 1) is cleared (msgid 0) and the accept is logged (desktop 30,
//     terminal 27, files 40). Denied or timed out: msgid 2 with "denied" or
//     "timeout" and the reject is logged (34, 28, 41).
//   - A notify bit (desktop 0x01, terminal 0x02, files 0x04) shows a
//     notification once the session starts. Without a prompt, desktop and
//     files sessions log 35/36 and 42/43 (with or without notification).
//   - 0x40 shows the privacy bar on the desktop: "Sharing desktop with: {0}"
//     (or the server's privacybartext) with the names of everyone viewing,
//     and a button that disconnects them all (logged 29). Showing it logs
//     31, failing to logs 32.
package consent

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// ErrNoUI means there is no screen to show a prompt or notification on
// (nobody logged in at a display, or the platform has no implementation).
var ErrNoUI = errors.New("no user display to show a prompt on")

// Answer is the local user's answer to a prompt.
type Answer int

const (
	Denied   Answer = iota // the user clicked Deny or closed the prompt
	Accepted               // the user clicked Allow
	TimedOut               // nobody answered within the timeout
)

func (a Answer) String() string {
	switch a {
	case Accepted:
		return "accepted"
	case TimedOut:
		return "timeout"
	}
	return "denied"
}

// Prompt is one question to the local user.
type Prompt struct {
	Title   string
	Message string
	Allow   string // button labels
	Deny    string
	Timeout time.Duration
}

// UI shows the prompt, notifications and the privacy bar on the local
// user's screen: the seam each platform implements.
type UI interface {
	// Ask shows p and waits for the answer, the timeout, or ctx's end
	// (the viewer left; the prompt is taken down and Denied returned).
	// It returns an error wrapping ErrNoUI when nothing can be shown.
	Ask(ctx context.Context, p Prompt) (Answer, error)
	// Notify shows a short notification that does not wait for an answer.
	Notify(ctx context.Context, title, message string) error
	// ShowBar shows the privacy bar with text; onDisconnect runs when the
	// local user clicks its disconnect button.
	ShowBar(text string, onDisconnect func()) (Bar, error)
}

// Bar is a privacy bar on screen.
type Bar interface {
	SetText(text string) error
	Close() error
}

// Presence tells the auto-accept conditions: who is logged in and whose
// session is locked.
type Presence interface {
	// Users lists the logged-in users and, of those, the ones whose
	// session is locked (nil when that is not known).
	Users() (active, locked []string, err error)
}

// Kind is the kind of session a prompt is for.
type Kind int

const (
	Desktop Kind = iota
	Terminal
	Files
	Other // needs no consent
)

// KindOf maps a relay protocol to the kind of consent it needs.
func KindOf(proto int) Kind {
	switch proto {
	case session.ProtoDesktop:
		return Desktop
	case session.ProtoTerminal, session.ProtoPowerShell, session.ProtoUserShell, session.ProtoUserPS:
		return Terminal
	case session.ProtoFiles:
		return Files
	}
	return Other
}

// Bits are the consent bits of one kind.
type Bits struct{ Notify, Prompt uint32 }

var kindBits = map[Kind]Bits{
	Desktop:  {session.ConsentDesktopNotify, session.ConsentDesktopPrompt},
	Terminal: {session.ConsentTerminalNotify, session.ConsentTerminalPrompt},
	Files:    {session.ConsentFilesNotify, session.ConsentFilesPrompt},
}

// BitsOf returns kind's notify and prompt bits (zero for Other).
func BitsOf(k Kind) Bits { return kindBits[k] }

// Options are the consent fields of a tunnel request's soptions, as
// MeshCentral's meshrelay.js fills them from domain.consentmessages and
// domain.notificationmessages.
type Options struct {
	ConsentTitle      string `json:"consentTitle"`
	ConsentMsgDesktop string `json:"consentMsgDesktop"`
	ConsentMsgTerm    string `json:"consentMsgTerminal"`
	ConsentMsgFiles   string `json:"consentMsgFiles"`
	ConsentTimeout    int    `json:"consentTimeout"` // seconds; 0 means 30
	NotifyTitle       string `json:"notifyTitle"`
	NotifyMsgDesktop  string `json:"notifyMsgDesktop"`
	NotifyMsgTerm     string `json:"notifyMsgTerminal"`
	NotifyMsgFiles    string `json:"notifyMsgFiles"`

	AutoAcceptOnTimeout bool `json:"consentAutoAccept"`
	IfNoUser            bool `json:"consentAutoAcceptIfNoUser"`
	IfDesktopNoUser     bool `json:"consentAutoAcceptIfDesktopNoUser"`
	IfTerminalNoUser    bool `json:"consentAutoAcceptIfTerminalNoUser"`
	IfFileNoUser        bool `json:"consentAutoAcceptIfFileNoUser"`
	IfFileNoUserTypo    bool `json:"consentAautoAcceptIfFileNoUser"` // MeshCentral's spelling in meshrelay.js
	IfLocked            bool `json:"consentAutoAcceptIfLocked"`
	IfDesktopLocked     bool `json:"consentAutoAcceptIfDesktopLocked"`
	IfTerminalLocked    bool `json:"consentAutoAcceptIfTerminalLocked"`
	IfFileLocked        bool `json:"consentAutoAcceptIfFileLocked"`
}

// ParseOptions reads the consent fields of soptions; bad or missing
// options mean the defaults.
func ParseOptions(soptions []byte) Options {
	var o Options
	if len(soptions) > 0 {
		_ = json.Unmarshal(soptions, &o) // optional: bad options mean none
	}
	return o
}

// Timeout is how long a prompt waits.
func (o Options) Timeout() time.Duration {
	if o.ConsentTimeout > 0 {
		return time.Duration(o.ConsentTimeout) * time.Second
	}
	return 30 * time.Second
}

func (o Options) ifNoUser(k Kind) bool {
	switch k {
	case Desktop:
		return o.IfNoUser || o.IfDesktopNoUser
	case Terminal:
		return o.IfNoUser || o.IfTerminalNoUser
	case Files:
		return o.IfNoUser || o.IfFileNoUser || o.IfFileNoUserTypo
	}
	return false
}

func (o Options) ifLocked(k Kind) bool {
	switch k {
	case Desktop:
		return o.IfLocked || o.IfDesktopLocked
	case Terminal:
		return o.IfLocked || o.IfTerminalLocked
	case Files:
		return o.IfLocked || o.IfFileLocked
	}
	return false
}

// AutoAccept reports whether a prompt for k may be skipped, by
// MeshCentral's rule: an "if no user" option and nobody logged in, or an
// "if locked" option, somebody logged in and every one of them locked.
// Without such an option Presence is not consulted. A Presence error
// means the user must be asked.
func (o Options) AutoAccept(k Kind, p Presence) bool {
	noUser, locked := o.ifNoUser(k), o.ifLocked(k)
	if (!noUser && !locked) || p == nil {
		return false
	}
	active, lk, err := p.Users()
	if err != nil {
		return false
	}
	if noUser && len(active) == 0 {
		return true
	}
	if locked && len(active) > 0 && len(lk) > 0 {
		for _, u := range active {
			if !contains(lk, u) {
				return false
			}
		}
		return true
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// MeshCentral's default English texts (meshcore.js setDefaultCoreTranslation).
const (
	DefaultTitle      = "MeshCentral"
	textAllow         = "Allow"
	textDeny          = "Deny"
	textDesktopAsk    = "{0} requesting remote desktop access. Grant access?"
	textTerminalAsk   = "{0} requesting remote terminal access. Grant access?"
	textFilesAsk      = "{0} requesting remote file Access. Grant access?"
	textDesktopNotify = "{0} started a remote desktop session."
	textTermNotify    = "{0} started a remote terminal session."
	textFilesNotify   = "{0} started a remote file session."
	// DefaultPrivacyBar is the privacy bar's text when the server sends
	// none; {0} is the viewers' real names, {1} their user names.
	DefaultPrivacyBar = "Sharing desktop with: {0}"
	// Waiting is what the viewer shows while the prompt is up (msgid 1).
	Waiting = "Waiting for user to grant access..."
)

// fill replaces {0} with realname and {1} with username.
func fill(tmpl, realname, username string) string {
	return strings.NewReplacer("{0}", realname, "{1}", username).Replace(tmpl)
}

// Who names the requesting user the way meshcore.js does: the real name
// (or the user name), with " - guest" for a sharing link's guest.
type Who struct{ RealName, Username string }

// PromptFor builds the prompt for kind k from the server's options.
func (o Options) PromptFor(k Kind, w Who) Prompt {
	p := Prompt{Title: DefaultTitle, Allow: textAllow, Deny: textDeny, Timeout: o.Timeout()}
	if o.ConsentTitle != "" {
		p.Title = o.ConsentTitle
	}
	tmpl := map[Kind]string{Desktop: textDesktopAsk, Terminal: textTerminalAsk, Files: textFilesAsk}[k]
	if c := map[Kind]string{Desktop: o.ConsentMsgDesktop, Terminal: o.ConsentMsgTerm, Files: o.ConsentMsgFiles}[k]; c != "" {
		tmpl = c
	}
	p.Message = fill(tmpl, w.RealName, w.Username)
	return p
}

// NotificationFor returns the notification's title and message for kind k.
func (o Options) NotificationFor(k Kind, w Who) (title, message string) {
	title = DefaultTitle
	if o.NotifyTitle != "" {
		title = o.NotifyTitle
	}
	tmpl := map[Kind]string{Desktop: textDesktopNotify, Terminal: textTermNotify, Files: textFilesNotify}[k]
	if c := map[Kind]string{Desktop: o.NotifyMsgDesktop, Terminal: o.NotifyMsgTerm, Files: o.NotifyMsgFiles}[k]; c != "" {
		tmpl = c
	}
	return title, fill(tmpl, w.RealName, w.Username)
}

// PrivacyBarText fills the privacy bar template (DefaultPrivacyBar when
// empty) with the viewers' real names and user names.
func PrivacyBarText(tmpl string, realnames, usernames []string) string {
	if tmpl == "" {
		tmpl = DefaultPrivacyBar
	}
	return fill(tmpl, strings.Join(realnames, ", "), strings.Join(usernames, ", "))
}

// Event-log message ids (MeshCentral's views/default.handlebars
// eventsMessageId), so the web UI shows the entries translated.
const (
	MsgTerminalAccepted = 27
	MsgTerminalRejected = 28
	MsgBarClosedByUser  = 29
	MsgDesktopAccepted  = 30
	MsgBarShown         = 31
	MsgBarFailed        = 32
	MsgDesktopRejected  = 34
	MsgDesktopNotified  = 35
	MsgDesktopQuiet     = 36
	MsgFilesAccepted    = 40
	MsgFilesRejected    = 41
	MsgFilesNotified    = 42
	MsgFilesQuiet       = 43
	MsgLockedDesktop    = 53
)

// LogText is the English text meshcore.js sends with each id; the
// remote address is appended in parentheses, as there.
var LogText = map[int]string{
	MsgTerminalAccepted: "Local user accepted remote terminal request",
	MsgTerminalRejected: "Local user rejected remote terminal request",
	MsgBarClosedByUser:  "Remote Desktop Connection forcefully closed by local user",
	MsgDesktopAccepted:  "Starting remote desktop after local user accepted",
	MsgBarShown:         "Remote Desktop Connection Bar Activated/Updated",
	MsgBarFailed:        "Remote Desktop Connection Bar Failed or Not Supported",
	MsgDesktopRejected:  "Failed to start remote desktop after local user rejected",
	MsgDesktopNotified:  "Started remote desktop with toast notification",
	MsgDesktopQuiet:     "Started remote desktop without notification",
	MsgFilesAccepted:    "Starting remote files after local user accepted",
	MsgFilesRejected:    "Failed to start remote files after local user rejected",
	MsgFilesNotified:    "Started remote files with toast notification",
	MsgFilesQuiet:       "Started remote files without notification",
	MsgLockedDesktop:    "Locking remote user out of desktop",
}

// AcceptedID and RejectedID are the event ids of a prompt's outcome.
func AcceptedID(k Kind) int {
	return map[Kind]int{Desktop: MsgDesktopAccepted, Terminal: MsgTerminalAccepted, Files: MsgFilesAccepted}[k]
}

// RejectedID is the event id of a denied or timed-out prompt for k.
func RejectedID(k Kind) int {
	return map[Kind]int{Desktop: MsgDesktopRejected, Terminal: MsgTerminalRejected, Files: MsgFilesRejected}[k]
}

// StartedID is the event id logged when a desktop or files session starts
// without a prompt (with or without a notification); 0 for terminals,
// which meshcore.js does not log.
func StartedID(k Kind, notified bool) int {
	switch {
	case k == Desktop && notified:
		return MsgDesktopNotified
	case k == Desktop:
		return MsgDesktopQuiet
	case k == Files && notified:
		return MsgFilesNotified
	case k == Files:
		return MsgFilesQuiet
	}
	return 0
}
