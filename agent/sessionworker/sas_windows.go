package sessionworker

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

var procSendSAS = windows.NewLazySystemDLL("sas.dll").NewProc("SendSAS")

// SendSAS sends Ctrl+Alt+Del to the console session, as the toolbar's
// Ctrl+Alt+Del asks, when sasCheck allows (the agent is the service and
// the policy lets services); otherwise an error wrapping ErrSASRefused
// says why. SendSAS itself reports nothing: Windows either shows its
// secure screen or, for a caller it does not trust, ignores the call.
func SendSAS() error {
	st := sasState{service: IsSystem(), dllErr: procSendSAS.Find()}
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, SASPolicyKey, registry.QUERY_VALUE); err == nil {
		v, _, err := k.GetIntegerValue(SASPolicyValue)
		k.Close()
		st.policy, st.policySet = uint32(v), err == nil
	} else if !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		return fmt.Errorf("%w: reading %s: %w", ErrSASRefused, SASPolicyKey, err)
	}
	if err := sasCheck(st); err != nil {
		return err
	}
	procSendSAS.Call(0) // FALSE: as the service, not as a user
	return nil
}
