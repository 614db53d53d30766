//go:build linux

package interop

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
)

// peakRSS samples a process's RSS every 20 ms until stop is called and
// returns the highest value seen, in kB: the peak during the work, which
// VmHWM cannot tell apart from start-up.
func peakRSS(pid int) (stop func() int) {
	done := make(chan struct{})
	result := make(chan int)
	go func() {
		peak, split := 0, ""
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := vmRSS(pid); r > peak {
				peak = r
				if os.Getenv("MESHGO_BENCH_SPLIT") != "" {
					split = rssSplit(pid)
				}
			}
			select {
			case <-done:
				if split != "" {
					fmt.Printf("pid %d peak RSS %d kB: %s\n", pid, peak, split)
				}
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() int { close(done); return <-result }
}

type sessionFigures struct {
	up, down float64 // MiB/s
	upCPU    float64 // agent CPU seconds per 50 MiB uploaded (utime+stime)
	downCPU  float64 // the same for the download
	peakKB   int     // over both transfers
	upKB     int     // peak during the upload
	rtt      time.Duration
}

// benchSize is the transfer size: 50 MiB, or MESHGO_BENCH_MIB (e.g. 1024
// or 5120) to check that peak RSS stays flat in the file size.
func benchSize(b *testing.B) int64 {
	v := os.Getenv("MESHGO_BENCH_MIB")
	if v == "" {
		return 50 << 20
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("MESHGO_BENCH_MIB=%q: want a positive number of MiB", v)
	}
	return n << 20
}

// measureSessions moves a file (50 MiB unless MESHGO_BENCH_MIB says) up
// and down through MeshCentral's relay and times keystroke echo in a
// terminal, as a client does.
func measureSessions(b *testing.B, srv *mctest.Server, nodeID string, pid int) sessionFigures {
	size := benchSize(b)
	var f sessionFigures
	u := dialControl(b, srv)
	dir := b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+time.Duration(size>>20)*time.Second)
	defer cancel()

	src := rand.NewChaCha8([32]byte{1})
	h := sha256.New()
	ch := openRelay(b, srv, u, nodeID, 5, "")
	stopPeak := peakRSS(pid)
	t0, c0 := time.Now(), treeCPU(pid)
	if err := uploadFile(ctx, ch, dir, "bench.bin", io.TeeReader(io.LimitReader(src, size), h), size, 16); err != nil {
		b.Fatalf("upload: %v", err)
	}
	f.up = float64(size) / (1 << 20) / time.Since(t0).Seconds()
	f.upCPU = (treeCPU(pid) - c0) * float64(50<<20) / float64(size)
	ch.Close()
	f.upKB = stopPeak()
	stopPeak = peakRSS(pid)

	ch = openRelay(b, srv, u, nodeID, 5, "")
	back := sha256.New()
	t0, c0 = time.Now(), treeCPU(pid)
	n, err := downloadFile(ctx, ch, filepath.Join(dir, "bench.bin"), back)
	if err != nil || n != size {
		b.Fatalf("download: %d bytes, %v", n, err)
	}
	f.down = float64(size) / (1 << 20) / time.Since(t0).Seconds()
	f.downCPU = (treeCPU(pid) - c0) * float64(50<<20) / float64(size)
	ch.Close()
	if string(h.Sum(nil)) != string(back.Sum(nil)) {
		b.Fatal("downloaded file differs")
	}
	f.peakKB = max(f.upKB, stopPeak())

	ch = openRelay(b, srv, u, nodeID, 1, `{"ctrlChannel":"102938","type":"options","cols":80,"rows":25}`)
	rtts, err := echoRTT(ctx, ch, 25)
	if err != nil || len(rtts) == 0 {
		b.Fatalf("terminal echo: %v", err)
	}
	f.rtt = median(rtts)
	ch.Close()
	return f
}

// BenchmarkSessions prints, side by side with the real C agent on the same
// MeshCentral: 50 MiB upload and download throughput through the relay,
// the agent's peak RSS, and the terminal keystroke echo round trip. Our
// agent is the release build (static, stripped), as the C agent is.
//
//	go test ./interop -run '^$' -bench Sessions -benchtime 1x
//	MESHGO_BENCH_MIB=1024 go test ./interop -run '^$' -bench Sessions -benchtime 1x -timeout 1h
func BenchmarkSessions(b *testing.B) {
	srv := mctest.Shared(b)
	ourMesh := srv.AddDeviceGroup(b, "bench-sessions-ours")
	// The binary that ships (build/release.sh's flags): the test build
	// links cgo, and libc and the loader would count in its RSS.
	rel, err := agentbin.BuildRelease()
	if err != nil {
		b.Fatal(err)
	}
	ours := startAgentBin(b, rel, srv.MSH(b, ourMesh), nil)
	if _, ok := ours.waitLog(60*time.Second, "core started"); !ok {
		b.Fatal("our agent did not start its core")
	}
	// The figures are a settled agent's, as the C agent's are: until its
	// first trim, 5 s after start-up's last step, our agent still holds
	// start-up's resident binary (RssFile about 16 MB against 4-7 MB
	// after), and a session that starts in that time trims first, just
	// after the relay pairs, where the sampler would count it. Printed so
	// that the wait is seen.
	settled := time.Now().Add(6 * time.Second)
	fmt.Printf("our agent at core start: %s\n", rssSplit(ours.cmd.Process.Pid))
	ourID := "node//" + ours.nodeID()
	srv.WaitDevice(b, func(d mctest.Device) bool { return d.ID == ourID && d.Online() }, 60*time.Second)

	cMesh := srv.AddDeviceGroup(b, "bench-sessions-c")
	c := mctest.StartCAgent(b, srv.MSH(b, cMesh))
	cdev := srv.WaitDevice(b, func(d mctest.Device) bool { return d.MeshID == cMesh && d.Online() && d.Agent.Core != "" }, 90*time.Second)

	time.Sleep(time.Until(settled))
	fmt.Printf("our agent settled (6 s after core start): %s\n", rssSplit(ours.cmd.Process.Pid))
	for i := 0; i < b.N; i++ {
		fo := measureSessions(b, srv, ourID, ours.cmd.Process.Pid)
		fc := measureSessions(b, srv, cdev.ID, c.PID())
		rowP := func(name string, prec int, o, c float64, unit string) {
			fmt.Printf("%-30s %10.*f %10.*f %8.2fx  %s\n", name, prec, o, prec, c, o/c, unit)
		}
		row := func(name string, o, c float64, unit string) { rowP(name, 1, o, c, unit) }
		fmt.Printf("\n%-30s %10s %10s %9s\n", fmt.Sprintf("figure (%d MiB, via relay)", benchSize(b)>>20), "ours", "C agent", "ratio")
		row("upload", fo.up, fc.up, "MiB/s")
		row("download", fo.down, fc.down, "MiB/s")
		row("agent peak RSS in transfers", float64(fo.peakKB)/1024, float64(fc.peakKB)/1024, "MB")
		row("  of which during upload", float64(fo.upKB)/1024, float64(fc.upKB)/1024, "MB")
		// CPU per 50 MiB holds when the machine is loaded and MiB/s does not.
		rowP("agent CPU per 50 MiB, upload", 2, fo.upCPU, fc.upCPU, "s")
		rowP("agent CPU per 50 MiB, download", 2, fo.downCPU, fc.downCPU, "s")
		row("keystroke echo (median)", ms(fo.rtt), ms(fc.rtt), "ms")
		if p := os.Getenv("MESHGO_BENCH_AGENTLOG"); p != "" {
			// Our agent's log (with GODEBUG=gctrace=1, its collections).
			if err := os.WriteFile(p, []byte(ours.log.String()), 0o644); err != nil {
				b.Error(err)
			}
		}
		b.ReportMetric(fo.up, "ours-up-MiB/s")
		b.ReportMetric(fc.up, "c-up-MiB/s")
		b.ReportMetric(fo.down, "ours-down-MiB/s")
		b.ReportMetric(fc.down, "c-down-MiB/s")
	}
}
