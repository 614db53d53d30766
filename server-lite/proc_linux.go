package main

import "syscall"

// diesWithParent asks the kernel to SIGKILL the child when the server's
// thread that started it exits (the whole server, in practice: Go does not
// end threads of goroutines that did not lock them).
func diesWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
