package script

import (
	"fmt"
	"strings"
)

// validServiceName accepts the names service managers use (systemd units
// with @ and \x escapes, launchd labels, Windows service names with
// spaces) and refuses what a command line would take for an option.
func validServiceName(name string) error {
	if name == "" || len(name) > 256 || strings.HasPrefix(name, "-") {
		return fmt.Errorf("invalid service name %q", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/"*?<>|%`, r) {
			return fmt.Errorf("invalid service name %q", name)
		}
	}
	return nil
}

// serviceDetail is the `service` reply body meshcore.js sends (mc:1319)
// and the device page's Service Details dialog shows (ui:10600): start
// type, failure actions, account, install date, besides the list entry.
type serviceDetail struct {
	Name           string         `json:"name"`
	DisplayName    string         `json:"displayName,omitempty"`
	Status         map[string]any `json:"status"`
	StartType      string         `json:"startType,omitempty"`
	FailureActions *failureAct    `json:"failureActions,omitempty"`
	InstalledDate  string         `json:"installedDate,omitempty"`
	InstalledBy    string         `json:"installedBy,omitempty"`
	User           string         `json:"user,omitempty"`
}

// failureAct is what the dialog reads: resetPeriod (seconds) and up to
// three actions (first, second, subsequent failures) with a type name.
type failureAct struct {
	ResetPeriod uint64      `json:"resetPeriod,omitempty"`
	Actions     []failureOp `json:"actions"`
}

type failureOp struct {
	Type  string `json:"type"`
	Delay int64  `json:"delay"` // milliseconds
}
