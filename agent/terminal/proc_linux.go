package terminal

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// killSession SIGKILLs every process whose session id is sid. Jobs that
// bash moved into their own process groups stay in the shell's session, so
// this is what makes "the client left" really end everything the terminal
// started (short of programs that called setsid themselves, i.e. daemons).
func killSession(sid int) {
	if sid <= 1 {
		return
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if s, ok := statSession(stat); ok && s == sid {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// statSession extracts the session id (field 6) from /proc/PID/stat. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func statSession(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0]=state f[1]=ppid f[2]=pgrp f[3]=session
	if len(f) < 4 {
		return 0, false
	}
	n, err := strconv.Atoi(f[3])
	return n, err == nil
}
