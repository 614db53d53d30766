//go:build unix && !linux

package main

import "syscall"

// diesWithParent: only Linux has a parent-death signal; elsewhere an agent
// outlives a server killed with SIGKILL and must be stopped by hand.
func diesWithParent(*syscall.SysProcAttr) {}
