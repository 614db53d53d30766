package osuser

import (
	"reflect"
	"strings"
	"testing"
)

// firstLogin is the login-records part of the rule on its own: the user
// the best record names ("" when none qualifies).
func firstLogin(entries []Login) string {
	g, l, o := rankLogins(entries)
	for _, list := range [][]string{g, l, o} {
		if len(list) > 0 {
			return list[0]
		}
	}
	return ""
}

func TestLoginRecordsRule(t *testing.T) {
	e := func(user, term, host string, started int) Login {
		return Login{User: user, Terminal: term, Host: host, Started: started}
	}
	tests := []struct {
		name    string
		entries []Login
		want    string
	}{
		{"none", nil, ""},
		{"only root", []Login{e("root", "tty1", "", 10), e("root", ":0", "", 20)}, ""},
		{"X display terminal beats ssh", []Login{e("bob", "pts/0", "10.0.0.5", 50), e("alice", ":0", "", 10)}, "alice"},
		{"X display as host (gdm)", []Login{e("bob", "tty1", "", 50), e("carol", "tty2", ":1", 10)}, "carol"},
		{"local tty beats pts", []Login{e("bob", "pts/3", "", 50), e("dave", "tty1", "", 10)}, "dave"},
		{"logind seat", []Login{e("bob", "pts/1", "192.168.1.2", 50), e("erin", "seat0", "", 10)}, "erin"},
		{"macOS console", []Login{e("bob", "ttys000", "", 50), e("frank", "console", "", 10)}, "frank"},
		{"tty with remote host is not local", []Login{e("bob", "tty1", "host.example", 50), e("gina", "pts/0", "", 60)}, "gina"},
		{"any non-root user as a last resort", []Login{e("root", "tty1", "", 90), e("hank", "pts/0", "10.1.1.1", 10)}, "hank"},
		{"most recent login wins a tie", []Login{e("ivan", ":0", "", 10), e("judy", ":1", "", 20)}, "judy"},
		{"name breaks an exact tie", []Login{e("mike", "tty1", "", 10), e("kate", "tty2", "", 10)}, "kate"},
		{"implausible names skipped", []Login{e("", ":0", "", 90), e("a b", ":0", "", 90), e("lena", "pts/0", "", 1)}, "lena"},
		{"root on the display, user on ssh", []Login{e("root", ":0", "", 90), e("nina", "pts/0", "10.0.0.1", 1)}, "nina"},
		{"a user's best record counts", []Login{e("olga", "pts/0", "10.0.0.1", 90), e("pete", "tty1", "", 50), e("olga", ":0", "", 10)}, "olga"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstLogin(tc.entries); got != tc.want {
				t.Errorf("login rule = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConsoleRule(t *testing.T) {
	seat := func(s string) *strings.Reader { return strings.NewReader(s) }
	ssh := Login{User: "sam", Terminal: "pts/0", Host: "10.0.0.9", Started: 99}
	x := Login{User: "xena", Terminal: ":0", Started: 5}
	tty := Login{User: "tom", Terminal: "tty2", Started: 50}
	u := func(uid string) candidate { return candidate{uid: uid} }
	n := func(name string) candidate { return candidate{name: name} }
	tests := []struct {
		name string
		f    facts
		want []candidate
	}{
		{"nothing", facts{consoleOwner: -1}, nil},
		{"macOS console owner decides", facts{consoleOwner: 501, logins: []Login{x}}, []candidate{u("501")}},
		{"macOS login window: nobody, records ignored", facts{consoleOwner: 0, logins: []Login{x, tty}}, nil},
		{"logind active user first", facts{consoleOwner: -1, seat0: seat("# comment\nIS_SEAT0=1\nACTIVE=c2\nACTIVE_UID=1000\n"), logins: []Login{x, ssh}},
			[]candidate{u("1000"), n("xena"), n("sam")}},
		{"logind root session is skipped", facts{consoleOwner: -1, seat0: seat("ACTIVE_UID=0\n"), logins: []Login{ssh}}, []candidate{n("sam")}},
		{"logind seat with no active session", facts{consoleOwner: -1, seat0: seat("IS_SEAT0=1\nCAN_GRAPHICAL=yes\n"), logins: []Login{tty}}, []candidate{n("tom")}},
		{"garbage ACTIVE_UID ignored", facts{consoleOwner: -1, seat0: seat("ACTIVE_UID=abc\n")}, nil},
		{"X socket owner after graphical records, before ttys", facts{consoleOwner: -1, logins: []Login{tty, x, ssh}, xOwners: map[int]int64{1: 1002, 0: 1001}},
			[]candidate{n("xena"), u("1001"), u("1002"), n("tom"), n("sam")}},
		{"root-owned X socket (Xorg) is no evidence", facts{consoleOwner: -1, logins: []Login{ssh}, xOwners: map[int]int64{0: 0}}, []candidate{n("sam")}},
		{"Wayland socket owners after X socket owners, before ttys", facts{consoleOwner: -1, logins: []Login{tty, ssh}, xOwners: map[int]int64{0: 1001}, waylandOwners: []int64{1003, 0, 1004}},
			[]candidate{u("1001"), u("1003"), u("1004"), n("tom"), n("sam")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := candidates(tc.f); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("candidates = %+v, want %+v", got, tc.want)
			}
		})
	}
}
