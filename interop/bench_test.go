//go:build linux

package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
)

// nodeEvent is a nodeconnect event as meshctrl showevents prints it.
type nodeEvent struct {
	MeshID string `json:"meshid"`
	NodeID string `json:"nodeid"`
	Conn   int    `json:"conn"`
	at     time.Time
}

// watchNodeEvents streams MeshCentral's nodeconnect events through meshctrl
// showevents, stamped with the time they arrived.
func watchNodeEvents(tb testing.TB, srv *mctest.Server) <-chan nodeEvent {
	tb.Helper()
	cmd := exec.Command("node", filepath.Join(srv.MeshCentralDir(), "meshctrl.js"), "showevents", "--filter", "nodeconnect",
		"--url", srv.URL(), "--loginuser", srv.AdminUser(), "--loginpass", srv.AdminPass())
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ch := make(chan nodeEvent, 64)
	ready := make(chan struct{})
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n') // "Connected. Press ctrl-c to end."
		if !strings.HasPrefix(line, "Connected") {
			tb.Errorf("showevents: %q", line)
		}
		close(ready)
		dec := json.NewDecoder(r)
		for {
			var m struct {
				Event nodeEvent `json:"event"`
			}
			if err := dec.Decode(&m); err != nil {
				close(ch)
				return
			}
			m.Event.at = time.Now()
			ch <- m.Event
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		tb.Fatal("showevents did not connect")
	}
	return ch
}

// waitConn waits for a nodeconnect event of group mesh with the given
// connection state and returns its arrival time and node id.
func waitConn(tb testing.TB, ev <-chan nodeEvent, mesh string, online bool) nodeEvent {
	tb.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case e, ok := <-ev:
			if !ok {
				tb.Fatal("event stream ended")
			}
			if e.MeshID == mesh && (e.Conn&1 != 0) == online {
				return e
			}
		case <-timeout:
			tb.Fatalf("no nodeconnect (online=%v) for %s", online, mesh)
		}
	}
}

// vmRSS reads a process's resident set size in kB.
func vmRSS(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

// rssSplit says where a process's resident memory is: anonymous (heap,
// stacks, runtime), file-backed (the executable and libraries) and shared.
func rssSplit(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	var parts []string
	for _, line := range strings.Split(string(data), "\n") {
		for _, k := range []string{"RssAnon:", "RssFile:", "RssShmem:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				parts = append(parts, strings.TrimSuffix(k, ":")+" "+strings.Join(strings.Fields(v), " "))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// rssByMapping says which mappings hold a process's resident memory, from
// /proc/PID/smaps: the executable's code (r-x), read-only data (r--) and
// writable data, the Go heap and other anonymous memory, and the rest
// (libraries, vdso, stacks of a C program). Shared pages count in full.
func rssByMapping(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return "?"
	}
	defer f.Close()
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	order := []string{"exe r-x", "exe r--", "exe rw-", "anon", "heap", "other file"}
	kb := map[string]int{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 {
			// 00400000-00ac3000 r-xp 00000000 fd:01 1234 /path
			path := ""
			if len(fields) >= 6 {
				path = fields[5]
			}
			perms := fields[1][:3]
			switch {
			case path == exe:
				if perms[1] == 'w' {
					perms = "rw-"
				}
				cur = "exe " + perms
			case path == "" || path == "[anon]":
				cur = "anon"
			case path == "[heap]":
				cur = "heap"
			default:
				cur = "other file"
			}
			continue
		}
		if fields[0] == "Rss:" && len(fields) >= 2 {
			n, _ := strconv.Atoi(fields[1])
			kb[cur] += n
		}
	}
	var parts []string
	for _, k := range order {
		if kb[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d kB", k, kb[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// subject is one agent under measurement.
type subject struct {
	name    string
	start   func() // first start in a fresh directory
	stop    func()
	restart func() // start again after stop, same identity
	pid     func() int
}

type figures struct {
	first    time.Duration
	restarts []time.Duration
	rss      int
	split    string // RssAnon / RssFile / RssShmem at the same moment
	maps     string // the same by mapping (rssByMapping)
}

func measure(b *testing.B, srv *mctest.Server, ev <-chan nodeEvent, mesh string, s subject, restarts int, settle time.Duration) figures {
	var f figures
	t0 := time.Now()
	s.start()
	f.first = waitConn(b, ev, mesh, true).at.Sub(t0)
	time.Sleep(settle)
	f.rss = vmRSS(s.pid())
	f.split = rssSplit(s.pid())
	f.maps = rssByMapping(s.pid())
	for i := 0; i < restarts; i++ {
		s.stop()
		waitConn(b, ev, mesh, false)
		time.Sleep(300 * time.Millisecond)
		t0 := time.Now()
		s.restart()
		f.restarts = append(f.restarts, waitConn(b, ev, mesh, true).at.Sub(t0))
	}
	return f
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkOnline prints, side by side against the real C agent on the same
// MeshCentral in one run: first-start-to-online, restart-to-online (median
// of several) and idle RSS 20 s after online. Online is when MeshCentral
// announces the device (its nodeconnect event), measured from process start.
//
//	go test ./interop -run '^$' -bench Online -benchtime 1x
func BenchmarkOnline(b *testing.B) {
	srv := mctest.Shared(b)
	ev := watchNodeEvents(b, srv)
	// MeshCentral treats more than 4 disconnects of one node in 2 minutes as a
	// reconnect storm (control.md §9.3), so stay at 4.
	const restarts = 4
	settle := 20 * time.Second

	ourMesh := srv.AddDeviceGroup(b, "bench-ours")
	// The binary that ships, as in BenchmarkSessions: the test build links
	// cgo, and libc and the loader would count in its idle RSS.
	rel, err := agentbin.BuildRelease()
	if err != nil {
		b.Fatal(err)
	}
	var ours *agentProc
	our := subject{
		name:    "meshgo agent (release build)",
		start:   func() { ours = startAgentBin(b, rel, srv.MSH(b, ourMesh), nil) },
		stop:    func() { ours.stop() },
		restart: func() { ours.start() },
		pid:     func() int { return ours.cmd.Process.Pid },
	}
	cMesh := srv.AddDeviceGroup(b, "bench-c")
	var c *mctest.CAgent
	cagent := subject{
		name:    "C MeshAgent",
		start:   func() { c = mctest.StartCAgent(b, srv.MSH(b, cMesh)) },
		stop:    func() { c.Stop() },
		restart: func() { c.Restart() },
		pid:     func() int { return c.PID() },
	}
	for i := 0; i < b.N; i++ {
		fo := measure(b, srv, ev, ourMesh, our, restarts, settle)
		fc := measure(b, srv, ev, cMesh, cagent, restarts, settle)
		row := func(name string, o, c float64, unit string) {
			fmt.Printf("%-28s %10.1f %10.1f %8.2fx  %s\n", name, o, c, o/c, unit)
		}
		fmt.Printf("\n%-28s %10s %10s %9s\n", "figure", "ours", "C agent", "ratio")
		row("first start to online", ms(fo.first), ms(fc.first), "ms")
		row("restart to online (median)", ms(median(fo.restarts)), ms(median(fc.restarts)), "ms")
		row("idle RSS 20 s after online", float64(fo.rss)/1024, float64(fc.rss)/1024, "MB")
		fmt.Printf("idle RSS split ours: %s\nidle RSS split C:    %s\n", fo.split, fc.split)
		fmt.Printf("idle RSS by mapping ours: %s\nidle RSS by mapping C:    %s\n", fo.maps, fc.maps)
		fmt.Printf("restarts ours: %v\nrestarts C:    %v\n", fo.restarts, fc.restarts)
		b.ReportMetric(ms(median(fo.restarts)), "ours-restart-ms")
		b.ReportMetric(ms(median(fc.restarts)), "c-restart-ms")
		b.ReportMetric(float64(fo.rss)/1024, "ours-rss-MB")
		b.ReportMetric(float64(fc.rss)/1024, "c-rss-MB")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
