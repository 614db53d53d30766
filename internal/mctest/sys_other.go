//go:build !unix

package mctest

import (
	"errors"
	"os/exec"
	"syscall"
)

var errUnsupported = errors.New("mctest: the interop harness only runs on Unix systems")

func setupProc(*exec.Cmd, syscall.Signal) {}

func signalGroup(int, syscall.Signal) bool { return false }

const (
	sigInt  = syscall.SIGINT
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)
