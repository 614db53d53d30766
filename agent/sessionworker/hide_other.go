//go:build !windows

package sessionworker

import "os/exec"

func hideWindow(*exec.Cmd) {}
