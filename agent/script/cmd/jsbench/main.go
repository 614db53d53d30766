// Command jsbench prints how long the script runtime takes for the
// "Script runtime" issue's workloads (script.Workloads), timed inside the
// runtime the way the C agent's console eval is timed, plus process CPU
// time (less sensitive to a loaded machine), and the idle RSS of a process
// running the default core.
//
//	jsbench [-n 5] [-gogc 100] [-idle 10s]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
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
	fmt.Printf("%-14s %10s %10s   (best of %d; GOMAXPROCS %d, %s)\n", "workload", "wall ms", "cpu ms", *n, runtime.GOMAXPROCS(0), runtime.Version())
	for _, w := range script.Workloads {
		if *only != "" && !strings.Contains(w.Name, *only) {
			continue
		}
		if err := h.Start(w.Name, []byte(driver(w, *n))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		select {
		case r := <-results:
			fmt.Printf("%-14s %10.1f %10.1f   result %v\n", w.Name, r["wall"], r["cpu"], r["result"])
		case <-time.After(5 * time.Minute):
			fmt.Printf("%-14s timed out\n", w.Name)
		}
	}
}

// driver wraps a workload: setup once, then n timed runs; reports the best
// wall time (hrtime) and the best CPU time.
func driver(w script.Workload, n int) string {
	return `var p = require('process');
` + w.Setup + `
var bestWall = Infinity, bestCpu = Infinity, result;
for (var k = 0; k < ` + strconv.Itoa(n) + `; k++) {
  var c0 = p.cpuUsage(), t0 = p.hrtime();
  result = ` + w.Run + `;
  var t1 = p.hrtime(), c1 = p.cpuUsage();
  bestWall = Math.min(bestWall, (t1 - t0) / 1e6);
  bestCpu = Math.min(bestCpu, (c1.user + c1.system - c0.user - c0.system) / 1e3);
}
require('mesh').send({ wall: bestWall, cpu: bestCpu, result: result });
`
}

func heap() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}
