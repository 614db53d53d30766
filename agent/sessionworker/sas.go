package sessionworker

import (
	"errors"
	"fmt"
)

// Windows sends Ctrl+Alt+Del (the secure attention sequence) only for a
// caller it trusts: SendInput of the three keys does nothing, and sas.dll's
// SendSAS works for a service (LocalSystem) only when the machine's
// policy SoftwareSASGeneration (HKLM\SOFTWARE\Microsoft\Windows\
// CurrentVersion\Policies\System, "Disable or enable software Secure
// Attention Sequence") lets services: 1 (services) or 3 (services and Ease
// of Access programs). Unset or 0 lets no program; 2 only Ease of Access
// programs. The agent reads the policy and does not change it: that is
// the machine owner's decision (an admin sets it, e.g. by group policy).

// SASPolicyKey and SASPolicyValue name the policy.
const (
	SASPolicyKey   = `SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`
	SASPolicyValue = "SoftwareSASGeneration"
)

// ErrSASRefused means this agent may not send Ctrl+Alt+Del.
var ErrSASRefused = errors.New("Ctrl+Alt+Del (SendSAS) not allowed")

// sasState is what the decision needs to know about this machine.
type sasState struct {
	service   bool   // the process is LocalSystem
	policy    uint32 // SoftwareSASGeneration
	policySet bool   // the value exists
	dllErr    error  // sas.dll or its SendSAS could not be loaded
}

// sasCheck decides whether SendSAS may be called, and says why not.
func sasCheck(s sasState) error {
	switch {
	case !s.service:
		return fmt.Errorf("%w: only the agent's service (LocalSystem) may call SendSAS", ErrSASRefused)
	case !s.policySet:
		return fmt.Errorf("%w: the policy %s is not set, so no program may (set it to 1 to let services)", ErrSASRefused, SASPolicyValue)
	case s.policy != 1 && s.policy != 3:
		return fmt.Errorf("%w: the policy %s is %d, which does not let services (1 or 3 would)", ErrSASRefused, SASPolicyValue, s.policy)
	case s.dllErr != nil:
		return fmt.Errorf("%w: %w", ErrSASRefused, s.dllErr)
	}
	return nil
}
