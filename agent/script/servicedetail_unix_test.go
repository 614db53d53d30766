//go:build !windows

package script

import (
	"strings"
	"testing"
	"time"
)

func TestParseSystemdShow(t *testing.T) {
	running := "Id=ssh.service\nDescription=OpenBSD Secure Shell server\nLoadState=loaded\nActiveState=active\nSubState=running\n" +
		"MainPID=812\nUnitFileState=enabled\nUser=\nRestart=on-failure\nRestartUSec=100ms\nFragmentPath=/nonexistent/ssh.service\n"
	d, err := parseSystemdShow("ssh", running)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status["state"] != "RUNNING" || d.Status["pid"] != 812 || d.StartType != "AUTO_START" || d.User != "root" ||
		d.DisplayName != "OpenBSD Secure Shell server" || d.FailureActions == nil || len(d.FailureActions.Actions) != 3 ||
		d.FailureActions.Actions[0].Delay != 100 || !strings.HasPrefix(d.FailureActions.Actions[0].Type, "SERVICE_RESTART") {
		t.Errorf("running: %+v %+v", d, d.FailureActions)
	}
	stopped := "LoadState=loaded\nActiveState=inactive\nSubState=dead\nMainPID=0\nUnitFileState=static\nUser=www-data\nRestart=no\nRestartUSec=1min 30s\n"
	d, err = parseSystemdShow("web", stopped)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status["state"] != "STOPPED" || d.Status["pid"] != nil || d.StartType != "static" || d.User != "www-data" || d.FailureActions != nil {
		t.Errorf("stopped: %+v", d)
	}
	if _, err := parseSystemdShow("gone", "Id=gone.service\nLoadState=not-found\nActiveState=inactive\n"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("not-found unit: %v", err)
	}
	if got := parseSystemdUSec("1min 30s"); got != 90*time.Second {
		t.Errorf("1min 30s = %v", got)
	}
}
