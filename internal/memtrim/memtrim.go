// Package memtrim keeps the agent's resident memory close to what it uses.
//
// An idle agent touches a small part of its executable, but the kernel maps
// file pages around every fault ("fault-around") and reads ahead, so a
// 20 MB Go binary shows most of itself as resident. Trim tells the kernel
// that the executable's read-only mappings are accessed randomly (no
// fault-around) and pages out what is mapped now: pages the agent still
// uses come back on the next access, one at a time. Writable mappings are
// never touched. It also hands freed heap back to the OS.
package memtrim

import "runtime/debug"

// Trim returns unused memory to the operating system. It is cheap enough
// to call after start-up and after a session ends, and safe to call at any
// time; on platforms without support it only frees the Go heap.
func Trim() {
	debug.FreeOSMemory()
	trimExecutable()
}
