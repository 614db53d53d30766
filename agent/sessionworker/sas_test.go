package sessionworker

import (
	"errors"
	"strings"
	"testing"
)

// Ctrl+Alt+Del goes to SendSAS only for the service with a policy that
// lets services; every refusal says why.
func TestSASCheck(t *testing.T) {
	noDLL := errors.New("sas.dll: not found")
	for _, tc := range []struct {
		name string
		s    sasState
		why  string // "" allowed
	}{
		{"service, services allowed", sasState{service: true, policy: 1, policySet: true}, ""},
		{"service, services and ease of access", sasState{service: true, policy: 3, policySet: true}, ""},
		{"not the service", sasState{policy: 1, policySet: true}, "LocalSystem"},
		{"policy unset", sasState{service: true}, "not set"},
		{"policy none", sasState{service: true, policy: 0, policySet: true}, "is 0"},
		{"ease of access only", sasState{service: true, policy: 2, policySet: true}, "is 2"},
		{"no sas.dll", sasState{service: true, policy: 1, policySet: true, dllErr: noDLL}, "sas.dll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sasCheck(tc.s)
			if tc.why == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrSASRefused) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("sasCheck = %v, want ErrSASRefused saying %q", err, tc.why)
			}
		})
	}
}
