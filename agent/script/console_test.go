package script

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// consoleCmd sends one console command the way the server does and
// returns the core's console reply for it.
func consoleCmd(t *testing.T, h *Host, c *capture, sid, line string, rights float64) string {
	t.Helper()
	deliver(h, map[string]any{"action": "msg", "type": "console", "value": line, "rights": rights, "sessionid": sid,
		"userid": "user//tester", "username": "tester", "remoteaddr": "127.0.0.1"})
	m := c.wait(t, 10*time.Second, isMsg("console", sid))
	v, _ := m["value"].(string)
	return v
}

// TestConsoleMoreCommands drives type, tunnels, timerinfo, fdcount,
// agentsize, dnsinfo, log and print through the server's console path.
func TestConsoleMoreCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	lf := write("lf.txt", []byte("line one\nline two\n"))
	crlf := write("crlf.txt", []byte("a\r\nb\r\n"))
	empty := write("empty.txt", nil)
	bigData := bytes.Repeat([]byte("abcdefghij"), 1000) // 10000 bytes
	big := write("big.txt", bigData)
	hugeData := bytes.Repeat([]byte("x"), 70000)
	huge := write("huge.txt", hugeData)
	utf := write("utf.txt", []byte("ééé")) // 2 bytes per é
	spaced := write("with space.txt", []byte("spaced"))
	missing := filepath.Join(dir, "missing.txt")
	_, statErr := os.Stat(missing)
	var pe *fs.PathError
	if !errors.As(statErr, &pe) {
		t.Fatalf("stat of a missing file: %v", statErr)
	}
	notFound := pe.Err.Error()

	var tmu sync.Mutex
	var open []Tunnel
	setTunnels := func(ts ...Tunnel) func() {
		return func() { tmu.Lock(); open = ts; tmu.Unlock() }
	}
	h, c := startCore(t, Config{Tunnels: func() []Tunnel {
		tmu.Lock()
		defer tmu.Unlock()
		return append([]Tunnel(nil), open...)
	}})
	c.wait(t, 10*time.Second, isAction("coreinfo"))

	equals := func(want string) func(*testing.T, string) {
		return func(t *testing.T, got string) {
			t.Helper()
			if got != want {
				t.Errorf("reply %q, want %q", got, want)
			}
		}
	}
	contains := func(want ...string) func(*testing.T, string) {
		return func(t *testing.T, got string) {
			t.Helper()
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("reply %q does not contain %q", got, w)
				}
			}
		}
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exeInfo, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	dnsWant := "DNS servers: none found"
	if ns := resolvConfServers(); len(ns) > 0 {
		dnsWant = "DNS Servers: " + strings.Join(ns, ", ")
	} else if runtime.GOOS == "windows" {
		dnsWant = "not available on windows"
	}
	longText := strings.Repeat("L", 5000)

	tests := []struct {
		name    string
		cmd     string
		setup   func()
		check   func(*testing.T, string)
		sentLog string // msg of the {action:'log'} the command must send
	}{
		{name: "type usage", cmd: "type", check: contains("Proper usage: type")},
		{name: "type bad maxlength", cmd: "type " + lf + " lots", check: contains("Proper usage: type")},
		{name: "type lf to crlf", cmd: `type "` + lf + `"`, check: equals("line one\r\nline two\r\n")},
		{name: "type crlf kept", cmd: `type "` + crlf + `"`, check: equals("a\r\nb\r\n")},
		{name: "type quoted path with space", cmd: `type "` + spaced + `"`, check: equals("spaced")},
		{name: "type empty", cmd: `type "` + empty + `"`, check: equals("(empty file)")},
		{name: "type default limit", cmd: `type "` + big + `"`,
			check: equals(string(bigData[:4096]) + "\r\n... (first 4096 bytes of 10000)")},
		{name: "type maxlength", cmd: `type "` + big + `" 25`,
			check: equals(string(bigData[:25]) + "\r\n... (first 25 bytes of 10000)")},
		{name: "type whole file under maxlength", cmd: `type "` + big + `" 20000`, check: equals(string(bigData))},
		{name: "type maxlength capped", cmd: `type "` + huge + `" 100000`,
			check: equals(string(hugeData[:65536]) + "\r\n... (first 65536 bytes of 70000)")},
		{name: "type cut inside a character", cmd: `type "` + utf + `" 3`, check: equals("é\r\n... (first 3 bytes of 6)")},
		{name: "type missing file", cmd: `type "` + missing + `"`,
			check: contains("Command returned an exception error", missing, notFound)},
		{name: "type directory", cmd: `type "` + dir + `"`, check: contains("Command returned an exception error", "is a directory")},

		{name: "tunnels none", cmd: "tunnels", setup: setTunnels(), check: equals("No relay sessions.")},
		{name: "tunnels open", cmd: "tunnels", setup: setTunnels(
			Tunnel{ID: 3, Protocol: 1, Kind: "terminal", UserID: "user//admin", RemoteAddr: "10.0.0.5", Started: time.Now().Add(-65 * time.Second)},
			Tunnel{ID: 7, Protocol: 5, Kind: "files", UserID: "user//bob", Started: time.Now().Add(-(2*time.Hour + 3*time.Second))}),
			check: func(t *testing.T, got string) {
				lines := strings.Split(got, "\r\n")
				if len(lines) != 3 || lines[0] != "2 relay sessions:" ||
					!strings.HasPrefix(lines[1], "Tunnel #3, terminal (protocol 1), user//admin from 10.0.0.5, open 1m ") ||
					!strings.HasPrefix(lines[2], "Tunnel #7, files (protocol 5), user//bob, open 2h 0m ") {
					t.Errorf("reply %q", got)
				}
			}},

		{name: "fdcount", cmd: "fdcount", check: func(t *testing.T, got string) {
			if runtime.GOOS != "linux" {
				if got != "fdcount: not supported on "+runtime.GOOS+"." {
					t.Errorf("reply %q", got)
				}
				return
			}
			// Opening files must raise the count by as many.
			n1 := descriptorCount(t, got)
			var files []*os.File
			for i := 0; i < 25; i++ {
				f, err := os.Open(lf)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
			}
			defer func() {
				for _, f := range files {
					f.Close()
				}
			}()
			n2 := descriptorCount(t, consoleCmd(t, h, c, "fdcount-again", "fdcount", 8|16))
			if d := n2 - n1; d < 25 || d > 35 {
				t.Errorf("descriptor count went from %d to %d after opening 25 files", n1, n2)
			}
		}},
		{name: "agentsize", cmd: "agentsize", check: equals(fmt.Sprintf("Agent Size: %d bytes (%d kb), %s", exeInfo.Size(), exeInfo.Size()/1024, exe))},
		{name: "dnsinfo", cmd: "dnsinfo", check: contains(dnsWant)},

		{name: "log usage", cmd: "log", check: contains("Proper usage: log")},
		{name: "log quoted", cmd: `log "disk  replaced"`, check: equals("ok"), sentLog: "disk  replaced"},
		{name: "log unquoted", cmd: `log backup done --at 5`, check: equals("ok"), sentLog: "backup done --at 5"},
		{name: "log clipped", cmd: "log " + longText, check: equals("ok"), sentLog: longText[:4095]},
		{name: "print", cmd: `print "hello   world"`, check: equals("hello   world")},
		{name: "print words", cmd: `print 42 and "more"`, check: equals(`42 and "more"`)},
		{name: "print usage", cmd: "print", check: contains("Proper usage: print")},
		{name: "help one command", cmd: "help TYPE", check: contains("type: type <file> [maxlength]")},
		{name: "help unknown", cmd: "help nope", check: equals(`Unknown command "nope".`)},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests, struct {
			name    string
			cmd     string
			setup   func()
			check   func(*testing.T, string)
			sentLog string
		}{name: "type device refused", cmd: "type /dev/null", check: contains("not a regular file")})
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			sid := fmt.Sprintf("user/domain/more/%d", i)
			got := consoleCmd(t, h, c, sid, tc.cmd, 8|16)
			tc.check(t, got)
			if tc.sentLog != "" {
				m := c.wait(t, 5*time.Second, func(m map[string]any) bool { return m["action"] == "log" && m["sessionid"] == sid })
				msg, _ := m["msg"].(string)
				if msg != tc.sentLog || m["userid"] != "user//tester" || m["remoteaddr"] != "127.0.0.1" {
					t.Errorf("log sent msg %.60q (%d chars) from %v at %v, want %.60q (%d chars) from user//tester at 127.0.0.1",
						msg, len(msg), m["userid"], m["remoteaddr"], tc.sentLog, len(tc.sentLog))
				}
			}
		})
	}

	// Every command documents itself.
	for _, name := range []string{"type", "tunnels", "timerinfo", "fdcount", "agentsize", "dnsinfo", "log", "print"} {
		got := consoleCmd(t, h, c, "help-"+name, "help "+name, 8|16)
		if !strings.HasPrefix(got, name+": ") || len(got) < len(name)+10 {
			t.Errorf("help %s: %q", name, got)
		}
	}
	list := consoleCmd(t, h, c, "help-all", "help", 8|16)
	for _, name := range []string{"agentsize", "dnsinfo", "fdcount", "log", "print", "timerinfo", "tunnels", "type"} {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(list) {
			t.Errorf("help does not list %s: %q", name, list)
		}
	}
}

func descriptorCount(t *testing.T, reply string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(reply, "Descriptor Count: "))
	if err != nil || n < 3 {
		t.Fatalf("fdcount reply %q", reply)
	}
	return n
}

func resolvConfServers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if w := strings.Fields(sc.Text()); len(w) >= 2 && w[0] == "nameserver" {
			out = append(out, w[1])
		}
	}
	return out
}

// TestConsoleTimerinfo lists a real pending setTimeout next to the core's
// own setIntervals, and drops it once it is cleared.
func TestConsoleTimerinfo(t *testing.T) {
	h, c := startCore(t, Config{})
	c.wait(t, 10*time.Second, isAction("coreinfo"))
	if r := consoleCmd(t, h, c, "arm", `eval "globalThis.probeId = setTimeout(function probeTimer() {}, 600000); 1"`, admin); r != "1" {
		t.Fatalf("eval: %q", r)
	}
	// Let the timer age, so its remaining time must differ from its delay.
	time.Sleep(500 * time.Millisecond)
	got := consoleCmd(t, h, c, "list", "timerinfo", 8|16)
	lines := strings.Split(got, "\r\n")
	if len(lines) != 4 || lines[0] != "3 timers:" {
		t.Fatalf("timerinfo %q, want a header and 3 timers", got)
	}
	if !strings.Contains(got, "setInterval every 60000 ms, next in ") || !strings.Contains(got, "setInterval every 10000 ms, next in ") {
		t.Errorf("core's intervals missing: %q", got)
	}
	m := regexp.MustCompile(`#\d+ setTimeout 600000 ms, next in (\d+) ms, probeTimer`).FindStringSubmatch(lines[3])
	if m == nil {
		t.Fatalf("probe timer line %q", lines[3])
	}
	if left, _ := strconv.Atoi(m[1]); left > 599500 || left < 590000 {
		t.Errorf("probe timer has %d ms left 500 ms after it was set for 600000", left)
	}

	consoleCmd(t, h, c, "clear", `eval "clearTimeout(probeId); 2"`, admin)
	if got := consoleCmd(t, h, c, "list2", "timerinfo", 8|16); strings.Contains(got, "probeTimer") || !strings.HasPrefix(got, "2 timers:") {
		t.Errorf("after clearTimeout: %q", got)
	}
}

// Without a tunnel listing from the agent, `tunnels` says so rather than
// pretending no session is open.
func TestConsoleTunnelsUnavailable(t *testing.T) {
	h, c := startCore(t, Config{})
	if got := consoleCmd(t, h, c, "t", "tunnels", 8|16); !strings.Contains(got, "tunnel listing is not available") {
		t.Errorf("reply %q", got)
	}
}
