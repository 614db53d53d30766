package terminal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
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

// seatFile is where systemd-logind describes the console seat (a variable
// so tests can stand in for logind).
var seatFile = "/run/systemd/seats/seat0"

// consoleUser finds the user of the active graphical or text console
// session, as systemd-logind records it for seat0. That is the user the
// reference means by "logged-in user" for protocol 8.
func consoleUser() (*user.User, error) {
	f, err := os.Open(seatFile)
	if err != nil {
		return nil, errors.New("cannot tell who is logged in at the console (no systemd-logind seat0)")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ACTIVE_UID="); ok && v != "" {
			u, err := user.LookupId(v)
			if err != nil {
				return nil, fmt.Errorf("console user %s: %w", v, err)
			}
			return u, nil
		}
	}
	return nil, errors.New("no user is logged in at the console")
}
