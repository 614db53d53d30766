package notify

import (
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// FactorName is the messaging factor's name in the login paths and the
// audit log (accounts.SecondFactor.Name).
const FactorName = "msg"

// loginResend is the shortest time between two login codes to one user:
// anyone who knows the password can ask for one, and must not be able to
// flood the user's chat or mailbox.
const loginResend = 30 * time.Second

// LoginFactor is messaging as a login second factor: a user with a
// verified handle gets a 6-digit code there when their password was right,
// and must give it (meshctrl --token, the form's token field, the CLI's
// --token). It implements accounts.SecondFactor; register it with
// accounts.Manager.AddFactor. Msg2Factor false (the "msg2factor" setting,
// MeshCentral's passwordRequirements.msg2factor) turns it off server-wide.
type LoginFactor struct{ n *Notifier }

// LoginFactor returns the notifier's login factor.
func (n *Notifier) LoginFactor() LoginFactor { return LoginFactor{n} }

// Name implements accounts.SecondFactor.
func (LoginFactor) Name() string { return FactorName }

// Enabled implements accounts.SecondFactor: messaging is on as a factor
// and the user has a verified handle.
func (f LoginFactor) Enabled(u accounts.User) bool { return f.n.NeedsLoginCode(u.ID) }

// Challenge implements accounts.SecondFactor: it sends a code, unless one
// was sent less than loginResend ago and is still valid (then that one
// stands).
func (f LoginFactor) Challenge(u accounts.User) (bool, error) {
	n := f.n
	n.mu.Lock()
	p := n.login[u.ID]
	recent := p != nil && time.Now().Before(p.expires) && time.Until(p.expires) > codeLife-loginResend
	n.mu.Unlock()
	if recent {
		return true, nil
	}
	if err := n.SendLoginCode(u.ID); err != nil {
		return false, err
	}
	return true, nil
}

// Verify implements accounts.SecondFactor: the code is good once.
func (f LoginFactor) Verify(u *accounts.User, code string, _ time.Time) bool {
	return f.n.CheckLoginCode(u.ID, code)
}

var _ accounts.SecondFactor = LoginFactor{}
