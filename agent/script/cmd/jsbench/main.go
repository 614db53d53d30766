// Command jsbench prints how long the script runtime takes for the
// "Script runtime" issue's workloads (script.Workloads), timed inside the
// runtime the way the C agent's console eval is timed, plus process CPU
// time (less sensitive to a loaded machine), and the idle RSS of a process
// running the default core.
//
//	jsbench [-n 5] [-gogc 100] [-idle 10s] [-cagent path/to/meshagent_x86-64]
//
// With -cagent the same workload text also runs in the C agent's Duktape
// (the C agent executes a .js file given as its argument), alternating
// with ours so both see the same machine load.
//
// default.pgo beside this file is a CPU profile of the workloads
// (go test -bench Workloads -cpuprofile); Go builds this command with it
// automatically. The agent's main package can use the same profile: it
// gave 4-7% on these workloads.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/meshgo/meshagent/agent/script"
	"github.com/meshgo/meshagent/scripts"
)

func main() {
	n := flag.Int("n", 5, "runs per workload (the best is reported)")
	gogc := flag.Int("gogc", -1, "GOGC to set (-1 = leave as is)")
	memlimit := flag.Int64("memlimit", 0, "GOMEMLIMIT in MiB (0 = leave as is)")
	idle := flag.Duration("idle", 10*time.Second, "how long to run the default core before reading RSS (0 = skip)")
	only := flag.String("only", "", "run only workloads whose name contains this")
	cagent := flag.String("cagent", "", "path of a MeshCentral C agent binary (meshagent_x86-64): also run the workloads in its Duktape engine (it runs a .js file given as its argument) and print both")
	rounds := flag.Int("rounds", 3, "with -cagent: alternate the two engines this many times per workload (best kept) to even out machine load")
	idleCore := flag.String("core", "", "script file to use for the idle measurement instead of the default core")
	flag.Parse()
	if *gogc >= 0 {
		debug.SetGCPercent(*gogc)
	}
	if *memlimit > 0 {
		debug.SetMemoryLimit(*memlimit << 20)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if *idle > 0 {
		// Idle first, in a fresh process state: the benchmarks would grow
		// the heap and hide the idle figure.
		h := script.New(script.Config{Send: func([]byte) error { return nil }, Logger: log,
			Agent: script.AgentInfo{NodeID: "@bench", AgentID: 6, Version: "jsbench"}})
		src := scripts.DefaultCore
		if *idleCore != "" {
			b, err := os.ReadFile(*idleCore)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			src = b
		}
		if err := h.Start("defaultcore", src); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		time.Sleep(*idle)
		fmt.Printf("idle RSS with default core after %s: %.1f MiB (Go heap %.1f MiB)\n", *idle, float64(rss())/(1<<20), heap())
		debug.FreeOSMemory()
		fmt.Printf("  after debug.FreeOSMemory: %.1f MiB\n", float64(rss())/(1<<20))
		h.Close()
	}

	results := make(chan map[string]any, 16)
	h := script.New(script.Config{Logger: log, TurnBudget: 10 * time.Minute, Send: func(b []byte) error {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err == nil {
			results <- m
		}
		return nil
	}})
	defer h.Close()
	if *cagent == "" {
		*rounds = 1
	}
	// wall: best single run; cpu: process CPU per run (mean over n runs,
	// GC included), which a loaded machine disturbs less than wall time.
	fmt.Printf("%-14s %10s %10s %12s %11s   (n=%d, rounds=%d; GOMAXPROCS %d, %s)\n", "workload", "wall ms", "cpu ms", "C wall ms", "C cpu ms", *n, *rounds, runtime.GOMAXPROCS(0), runtime.Version())
	for _, w := range script.Workloads {
		if *only != "" && !strings.Contains(w.Name, *only) {
			continue
		}
		wall, cpu, cwall, ccpu := math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)
		var result any
		for r := 0; r < *rounds; r++ {
			if err := h.Start(w.Name, []byte(driver(w, *n))); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			select {
			case m := <-results:
				wall = math.Min(wall, m["wall"].(float64))
				cpu = math.Min(cpu, m["cpu"].(float64))
				result = m["result"]
			case <-time.After(5 * time.Minute):
				fmt.Printf("%-14s timed out\n", w.Name)
			}
			if *cagent != "" {
				ms, c, err := runCAgent(*cagent, w, *n)
				if err != nil {
					fmt.Fprintln(os.Stderr, "C agent:", err)
				} else {
					cwall, ccpu = math.Min(cwall, ms), math.Min(ccpu, c)
				}
			}
		}
		c := "          -           -"
		if !math.IsInf(cwall, 1) {
			c = fmt.Sprintf("%12.1f %11.1f", cwall, ccpu)
		}
		fmt.Printf("%-14s %10.1f %10.1f %s   result %v\n", w.Name, wall, cpu, c, result)
	}
}

// runCAgent runs the workload in the C agent's Duktape: the agent executes
// a .js file given as its first argument. Timing uses Date.now() inside
// the script, as a console eval would.
func runCAgent(bin string, w script.Workload, n int) (wall, cpu float64, err error) {
	dir, err := os.MkdirTemp("", "jsbench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	src := w.Setup + `
function cpuTicks() { // utime + stime in clock ticks (10 ms)
  var st = require('fs').readFileSync('/proc/self/stat').toString();
  var f = st.substring(st.lastIndexOf(')') + 2).split(' ');
  return parseInt(f[11]) + parseInt(f[12]);
}
var best = Infinity, result, c0 = cpuTicks();
for (var k = 0; k < ` + strconv.Itoa(n) + `; k++) {
  var t0 = Date.now();
  result = ` + w.Run + `;
  best = Math.min(best, Date.now() - t0);
}
var cpu = (cpuTicks() - c0) * 10 / ` + strconv.Itoa(n) + `;
console.log('JSBENCH ' + JSON.stringify({ wall: best, cpu: cpu, result: result }));
process.exit(0);
`
	f := filepath.Join(dir, "bench.js")
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(bin, f)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, out)
	}
	for _, ln := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(strings.TrimSpace(ln), "JSBENCH "); ok {
			var m struct{ Wall, CPU float64 }
			if err := json.Unmarshal([]byte(j), &m); err != nil {
				return 0, 0, err
			}
			return m.Wall, m.CPU, nil
		}
	}
	return 0, 0, fmt.Errorf("no result in output %q", out)
}

// driver wraps a workload: setup once, then n timed runs; reports the best
// wall time (hrtime) and the best CPU time.
func driver(w script.Workload, n int) string {
	return `var p = require('process');
` + w.Setup + `
var bestWall = Infinity, result, c0 = p.cpuUsage();
for (var k = 0; k < ` + strconv.Itoa(n) + `; k++) {
  var t0 = p.hrtime();
  result = ` + w.Run + `;
  bestWall = Math.min(bestWall, (p.hrtime() - t0) / 1e6);
}
var c1 = p.cpuUsage();
require('mesh').send({ wall: bestWall, cpu: (c1.user + c1.system - c0.user - c0.system) / 1e3 / ` + strconv.Itoa(n) + `, result: result });
`
}

func heap() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}
