//go:build linux

package interop

import (
	"fmt"
	"image"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/waylandtest"
)

// wlPainter draws the benchmark's screens through a Wayland test client
// covering the output: the same static picture as the X painter, and
// noise in the 200x200 region or over everything, each change committed
// with only its rectangle damaged.
type wlPainter struct {
	win   *waylandtest.Window
	want  *image.RGBA
	noise [][]uint32 // (deskW+noiseMargin) x (deskH+noiseMargin) each
	rng   *mrand.Rand
	mu    sync.Mutex
	drawn int
}

func newWLPainter(tb testing.TB, win *waylandtest.Window, want *image.RGBA) *wlPainter {
	p := &wlPainter{win: win, want: want, rng: mrand.New(mrand.NewPCG(7, 11))}
	src := mrand.NewChaCha8([32]byte{42})
	nw := deskW + noiseMargin
	for k := 0; k < noisePixmaps; k++ {
		n := make([]uint32, nw*(deskH+noiseMargin))
		var buf [4]byte
		for i := range n {
			src.Read(buf[:3])
			n[i] = uint32(buf[0])<<16 | uint32(buf[1])<<8 | uint32(buf[2])
		}
		p.noise = append(p.noise, n)
	}
	p.showStatic()
	return p
}

func (p *wlPainter) staticPix(x, y int) uint32 {
	o := p.want.PixOffset(x, y)
	return uint32(p.want.Pix[o])<<16 | uint32(p.want.Pix[o+1])<<8 | uint32(p.want.Pix[o+2])
}

func (p *wlPainter) showStatic() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.win.Paint(p.staticPix)
}

func (p *wlPainter) change(mode string, i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.noise[i%len(p.noise)]
	nw := deskW + noiseMargin
	switch mode {
	case "region":
		sx, sy := p.rng.IntN(deskW-regionW), p.rng.IntN(deskH-regionH)
		p.win.PaintDamage(func(x, y int) uint32 { return n[(y-regionY+sy)*nw+x-regionX+sx] }, regionX, regionY, regionW, regionH)
	case "full":
		sx, sy := p.rng.IntN(noiseMargin), p.rng.IntN(noiseMargin)
		p.win.PaintDamage(func(x, y int) uint32 { return n[(y+sy)*nw+x+sx] }, 0, 0, deskW, deskH)
	}
	p.drawn++
}

func (p *wlPainter) changes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drawn
}

func (p *wlPainter) wantImage() *image.RGBA { return p.want }

func (p *wlPainter) animate(mode string, perSecond int) (stop func()) {
	return animate(mode, perSecond, p.change, p.showStatic)
}

// BenchmarkDesktopWayland prints our agent's desktop figures on Wayland,
// the scenes of BenchmarkDesktop (static, a 200x200 region changing 30
// times a second, every pixel changing) through MeshCentral with the web
// viewer's settings: on headless sway (wlr-screencopy with damage) and on
// headless mutter (Mutter ScreenCast through PipeWire, read by a
// gst-launch-1.0 child that counts as the agent's: the whole process tree
// is measured). The C agent has no Wayland support, so there is no
// comparison column. Both compositors render in software here: their own
// CPU is not the agent's and is not counted, but it bounds frames/s.
//
//	go test ./interop -run '^$' -bench DesktopWayland -benchtime 1x
func BenchmarkDesktopWayland(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("runs the compositors as an unprivileged user")
	}
	want := staticPicture()
	srv := mctest.Shared(b)
	u := dialControl(b, srv)
	type scene struct {
		name  string
		start func(tb testing.TB) (socket string, env []string, fullscreen bool)
	}
	scenes := []scene{
		{"sway", func(tb testing.TB) (string, []string, bool) {
			sw := waylandtest.StartSway(tb, deskW, deskH)
			sw.Msg("seat", "*", "cursor", "set", fmt.Sprint(deskW-1), fmt.Sprint(deskH-1))
			return sw.Socket, []string{"WAYLAND_DISPLAY=" + sw.Socket}, false
		}},
		{"mutter", func(tb testing.TB) (string, []string, bool) {
			m := waylandtest.StartMutter(tb, deskW, deskH)
			return m.Socket, []string{"WAYLAND_DISPLAY="}, true
		}},
	}
	modes := []struct{ mode, title string }{
		{"static", "(a) static screen"},
		{"region", "(b) 200x200 region changing"},
		{"full", "(c) every pixel changing"},
	}
	var out strings.Builder
	for _, sc := range scenes {
		b.Run(sc.name, func(b *testing.B) {
			socket, env, full := sc.start(b)
			open := waylandtest.OpenWindow
			if full {
				open = waylandtest.OpenFullscreenWindow
			}
			win, err := open(socket)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(win.Close)
			if w, h := win.Size(); w != deskW || h != deskH {
				b.Fatalf("test window %dx%d, want %dx%d", w, h, deskW, deskH)
			}
			p := newWLPainter(b, win, want)
			b.Setenv("DISPLAY", "")
			b.Setenv("XAUTHORITY", "")
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				b.Setenv(k, v)
			}
			mesh := srv.AddDeviceGroup(b, "bench-desktop-"+sc.name)
			ours := startAgent(b, srv.MSH(b, mesh))
			if _, ok := ours.waitLog(60*time.Second, "core started"); !ok {
				b.Fatal("our agent did not start its core")
			}
			id := "node//" + ours.nodeID()
			dev := srv.WaitDevice(b, func(d mctest.Device) bool { return d.ID == id && d.Online() && d.Agent.Core != "" }, desktopCapsTimeout)
			// Idle cost with no session, for reference (as BenchmarkDesktop):
			// the agent's start-up work is over before the scenes.
			pid := ours.cmd.Process.Pid
			time.Sleep(3 * time.Second)
			c0, t0 := treeCPU(pid), time.Now()
			time.Sleep(5 * time.Second)
			idle := (treeCPU(pid) - c0) / time.Since(t0).Seconds()
			for i := 0; i < b.N; i++ {
				fmt.Fprintf(&out, "\nour agent's desktop on headless %s %dx%d (caps %d), viewer quality %d, frame timer %d ms, %d screen changes/s asked, %s per scenario\n",
					sc.name, deskW, deskH, dev.Agent.Caps, viewerQuality, viewerFrameMS, changesPerSecond, deskWindow)
				fmt.Fprintf(&out, "%-30s agent CPU %6.3f s/s\n", "no session (idle agent)", idle)
				for _, m := range modes {
					f := measureDesktop(b, srv, u, p, "ours-"+sc.name, id, ours.cmd.Process.Pid, m.mode, viewerFrameMS, changesPerSecond)
					fmt.Fprintf(&out, "%-30s frames/s %6.1f  bytes/frame %8.1f KB  agent CPU %6.3f s/s  peak RSS %6.1f MB  first tile %5.0f ms  changes drawn/s %5.1f\n",
						m.title, f.framesPerSec, f.bytesPerFrm/1024, f.cpuPerSec, f.peakRSSMB, ms(f.firstTile), f.changesPerS)
					b.ReportMetric(f.cpuPerSec, m.mode+"-cpu-s/s")
					b.ReportMetric(f.framesPerSec, m.mode+"-fps")
				}
			}
		})
	}
	fmt.Print(out.String())
}
