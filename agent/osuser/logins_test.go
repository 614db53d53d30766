package osuser

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// TestLoginRecordsWithoutUtmpRunsNothing: on Linux without a utmp file
// LoginRecords says so (fs.ErrNotExist) and starts no loginctl, which
// gopsutil's own fallback does on every call (the core polls every 10 s).
func TestLoginRecordsWithoutUtmpRunsNothing(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the utmp check is Linux's")
	}
	bin := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	script := "#!/bin/sh\necho \"$@\" >> " + marker + "\n"
	if err := os.WriteFile(filepath.Join(bin, "loginctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HOST_VAR", t.TempDir()) // no run/utmp there
	l, err := LoginRecords(context.Background())
	if !errors.Is(err, fs.ErrNotExist) || l != nil {
		t.Fatalf("LoginRecords = %v, %v; want fs.ErrNotExist", l, err)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("loginctl ran: %q", b)
	}
}

func TestLogindLogins(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []LogindSession
		want []Login
	}{
		{"tty login", []LogindSession{{User: "ann", Class: "user", State: "active", TTY: "tty2", Started: 100}},
			[]Login{{User: "ann", Terminal: "tty2", Started: 100}}},
		{"graphical login shows its seat", []LogindSession{{User: "bob", Class: "user", State: "active", Seat: "seat0"}},
			[]Login{{User: "bob", Terminal: "seat0"}}},
		{"ssh login keeps its host", []LogindSession{{User: "cy", Class: "user", State: "online", TTY: "pts/0", RemoteHost: "10.0.0.5"}},
			[]Login{{User: "cy", Terminal: "pts/0", Host: "10.0.0.5"}}},
		{"greeter, manager, closing and seatless ttyless sessions are no logins", []LogindSession{
			{User: "gdm", Class: "greeter", Seat: "seat0"},
			{User: "ann", Class: "manager"},
			{User: "dan", Class: "user", State: "closing", TTY: "tty3"},
			{User: "eve", Class: "user", State: "active"},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logindLogins(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("logindLogins = %+v, want %+v", got, tc.want)
			}
		})
	}
}
