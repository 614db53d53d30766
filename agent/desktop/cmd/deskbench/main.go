//go:build linux

// Command deskbench measures the remote desktop handler: it starts its own
// Xvfb, or with -wayland a headless sway run as an unprivileged user (the
// process must be root), animates content, serves a protocol-2 session
// over an in-memory pipe with the web viewer's settings, and prints
// frames/s, bytes/frame, CPU seconds per second and RSS for a static
// screen, a small changing region and a full-screen change.
//
//	go run ./agent/desktop/cmd/deskbench -size 1920x1080 -seconds 10
//	go run ./agent/desktop/cmd/deskbench -wayland -size 1920x1080
//	go run ./agent/desktop/cmd/deskbench -gnome -size 1920x1080
//
// -gnome runs headless mutter with PipeWire and WirePlumber as an
// unprivileged user and lets the handler find it by itself; the
// gst-launch-1.0 subprocess that reads the PipeWire stream is the agent's
// too, so its CPU is counted in CPU s/s.
//
// CPU s/s is the process's CPU minus what the animating goroutine itself
// spent (its thread's CPU clock), so the Wayland painter, which draws into
// shared memory in this process, is not charged to the agent.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/internal/waylandtest"
	"github.com/meshgo/meshagent/proto/session"
	"golang.org/x/sys/unix"
)

func main() {
	size := flag.String("size", "1920x1080", "Xvfb screen size")
	secs := flag.Float64("seconds", 10, "duration of each scenario")
	quality := flag.Int("quality", 40, "JPEG quality the viewer asks for (web UI default 40)")
	frameMS := flag.Int("frame", 50, "frame timer in ms the viewer asks for (web UI default 50)")
	modes := flag.String("modes", "static,small,full", "scenarios to run")
	wl := flag.Bool("wayland", false, "capture a headless sway (wlr-screencopy) instead of Xvfb")
	gnome := flag.Bool("gnome", false, "capture a headless mutter (Mutter RemoteDesktop/ScreenCast, PipeWire) instead of Xvfb")
	flag.Parse()
	var w, h int
	if _, err := fmt.Sscanf(*size, "%dx%d", &w, &h); err != nil {
		fail("bad -size: %v", err)
	}
	var target desktop.Options
	var newAnim func() (painter, error)
	switch {
	case *gnome:
		tb := &cmdTB{}
		defer tb.cleanup()
		m := waylandtest.StartMutter(tb, w, h)
		os.Setenv("DISPLAY", "")
		os.Setenv("WAYLAND_DISPLAY", "")
		newAnim = func() (painter, error) { return newWLAnimator(m.Socket, w, h, true) }
		fmt.Printf("deskbench: headless mutter %s %dx%d, quality %d, frame timer %d ms, %.0f s per scenario\n", m.Socket, w, h, *quality, *frameMS, *secs)
	case *wl:
		tb := &cmdTB{}
		defer tb.cleanup()
		sw := waylandtest.StartSway(tb, w, h)
		target.WaylandDisplay = sw.Socket
		newAnim = func() (painter, error) { return newWLAnimator(sw.Socket, w, h, false) }
		fmt.Printf("deskbench: headless sway %s %dx%d, quality %d, frame timer %d ms, %.0f s per scenario\n", sw.Socket, w, h, *quality, *frameMS, *secs)
	default:
		disp, auth, stop := startXvfb(w, h)
		defer stop()
		os.Setenv("DISPLAY", disp)
		os.Setenv("XAUTHORITY", auth)
		target.Display, target.XAuthority = disp, auth
		newAnim = func() (painter, error) { return newAnimator(w, h) }
		fmt.Printf("deskbench: Xvfb %s %dx%d, quality %d, frame timer %d ms, %.0f s per scenario\n", disp, w, h, *quality, *frameMS, *secs)
	}
	fmt.Printf("%-8s %10s %12s %10s %10s %10s %10s\n", "scenario", "frames/s", "bytes/frame", "CPU s/s", "RSS MB", "first ms", "paint s/s")
	for _, m := range strings.Split(*modes, ",") {
		if err := run(m, target, newAnim, *quality, *frameMS, time.Duration(*secs*float64(time.Second))); err != nil {
			fail("%s: %v", m, err)
		}
	}
}

// painter animates the screen one tick at a time.
type painter interface {
	tick(mode string, i int)
	close()
}

// cmdTB lets waylandtest.StartSway run outside a test.
type cmdTB struct{ fns []func() }

func (t *cmdTB) Helper()                   {}
func (t *cmdTB) Skip(a ...any)             { t.cleanup(); fail("%s", fmt.Sprint(a...)) }
func (t *cmdTB) Fatal(a ...any)            { t.cleanup(); fail("%s", fmt.Sprint(a...)) }
func (t *cmdTB) Fatalf(f string, a ...any) { t.cleanup(); fail(f, a...) }
func (t *cmdTB) Cleanup(f func())          { t.fns = append(t.fns, f) }
func (t *cmdTB) cleanup() {
	for i := len(t.fns) - 1; i >= 0; i-- {
		t.fns[i]()
	}
	t.fns = nil
}

// wlAnimator paints through a Wayland test window: the same kind of
// content as the X animator, each tick only the changed rectangle.
type wlAnimator struct {
	win  *waylandtest.Window
	pix  [3][]uint32
	pw   int
	w, h int
}

func newWLAnimator(socket string, w, h int, fullscreen bool) (*wlAnimator, error) {
	open := waylandtest.OpenWindow
	if fullscreen {
		open = waylandtest.OpenFullscreenWindow
	}
	win, err := open(socket)
	if err != nil {
		return nil, err
	}
	a := &wlAnimator{win: win, pw: w + 64, w: w, h: h}
	for k := 0; k < 3; k++ {
		a.pix[k] = make([]uint32, a.pw*h)
		seed := uint32(k*7919 + 1)
		for y := 0; y < h; y++ {
			for x := 0; x < a.pw; x++ {
				seed = seed*1664525 + 1013904223
				var px uint32
				switch {
				case x > w*2/3 && y > h/2:
					px = uint32(byte(x+k*40+int(seed>>28)))<<16 | uint32(byte(y+int(seed>>27)))<<8 | uint32(byte(x^y+k))
				case ((x+k*3)/7+y/11)%5 == 0 && y%16 < 12:
					px = 0x202020
				default:
					px = 0xf0f0eb - uint32(k)*0x0a0a0a
				}
				a.pix[k][y*a.pw+x] = px
			}
		}
	}
	if err := win.Paint(func(x, y int) uint32 { return a.pix[0][y*a.pw+x] }); err != nil {
		win.Close()
		return nil, err
	}
	return a, nil
}

func (a *wlAnimator) tick(mode string, i int) {
	src := a.pix[i%3]
	switch mode {
	case "small": // the X animator's 256x192 region
		dx, dy := a.w/3, a.h/3
		ox, oy := (i*8)%(a.w-256), a.h/2
		a.win.PaintDamage(func(x, y int) uint32 { return src[(y-dy+oy)*a.pw+x-dx+ox] }, dx, dy, 256, 192)
	case "full":
		off := (i * 8) % 64
		a.win.PaintDamage(func(x, y int) uint32 { return src[y*a.pw+x+off] }, 0, 0, a.w, a.h)
	}
}

func (a *wlAnimator) close() { a.win.Close() }

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "deskbench: "+f+"\n", a...)
	os.Exit(1)
}

// startXvfb launches Xvfb on a free display with a fresh cookie and returns
// a function that stops exactly that process.
func startXvfb(w, h int) (string, string, func()) {
	dir, err := os.MkdirTemp("", "deskbench")
	if err != nil {
		fail("%v", err)
	}
	auth := filepath.Join(dir, "xauth")
	ck := make([]byte, 16)
	rand.Read(ck)
	for n := 150; n < 400; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); err == nil {
			continue
		}
		disp := ":" + strconv.Itoa(n)
		if out, err := exec.Command("xauth", "-f", auth, "add", disp, ".", hex.EncodeToString(ck)).CombinedOutput(); err != nil {
			fail("xauth: %v %s", err, out)
		}
		cmd := exec.Command("Xvfb", disp, "-screen", "0", fmt.Sprintf("%dx%dx24", w, h), "-auth", auth, "-nolisten", "tcp", "-noreset")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			fail("Xvfb: %v", err)
		}
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			os.RemoveAll(dir)
		}
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
				time.Sleep(100 * time.Millisecond)
				return disp, auth, stop
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
	}
	fail("no free display")
	return "", "", nil
}

// animator draws on the display from its own connection: pre-rendered
// detailed pixmaps are copied each tick, so the drawing itself costs the
// benchmark almost nothing while the captured content is realistic.
type animator struct {
	c    *xgb.Conn
	win  xproto.Window
	gc   xproto.Gcontext
	pix  []xproto.Pixmap
	w, h int
}

func newAnimator(w, h int) (*animator, error) {
	c, err := xgb.NewConn()
	if err != nil {
		return nil, fmt.Errorf("animator connect: %w", err)
	}
	scr := xproto.Setup(c).DefaultScreen(c)
	a := &animator{c: c, w: w, h: h}
	wid, _ := c.NewId()
	a.win = xproto.Window(wid)
	xproto.CreateWindow(c, scr.RootDepth, a.win, scr.Root, 0, 0, uint16(w), uint16(h), 0,
		xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{0xf0f0f0, 1})
	xproto.MapWindow(c, a.win)
	gid, _ := c.NewId()
	a.gc = xproto.Gcontext(gid)
	xproto.CreateGC(c, a.gc, xproto.Drawable(a.win), 0, nil)
	rows := 16
	pw := w + 64 // wider than the screen so each tick can shift the source
	line := make([]byte, pw*4*rows)
	for k := 0; k < 3; k++ {
		pid, _ := c.NewId()
		p := xproto.Pixmap(pid)
		xproto.CreatePixmap(c, scr.RootDepth, p, xproto.Drawable(a.win), uint16(pw), uint16(h))
		seed := uint32(k*7919 + 1)
		for y0 := 0; y0 < h; y0 += rows {
			n := min(rows, h-y0)
			for y := 0; y < n; y++ {
				for x := 0; x < pw; x++ {
					seed = seed*1664525 + 1013904223
					o := (y*pw + x) * 4
					yy := y0 + y
					var px uint32
					switch {
					case x > w*2/3 && yy > h/2: // photo-like
						px = uint32(byte(x+k*40+int(seed>>28)))<<16 | uint32(byte(yy+int(seed>>27)))<<8 | uint32(byte(x^yy+k))
					case ((x+k*3)/7+yy/11)%5 == 0 && yy%16 < 12: // text-like strokes
						px = 0x202020
					default:
						px = 0xf0f0eb - uint32(k)*0x0a0a0a
					}
					binary.LittleEndian.PutUint32(line[o:], px)
				}
			}
			xproto.PutImage(c, xproto.ImageFormatZPixmap, xproto.Drawable(p), a.gc, uint16(pw), uint16(n), 0, int16(y0), 0, scr.RootDepth, line[:pw*4*n])
		}
		a.pix = append(a.pix, p)
	}
	xproto.CopyArea(c, xproto.Drawable(a.pix[0]), xproto.Drawable(a.win), a.gc, 0, 0, 0, 0, uint16(w), uint16(h))
	if _, err := xproto.GetInputFocus(c).Reply(); err != nil {
		return nil, err
	}
	return a, nil
}

// tick draws frame i of the scenario.
func (a *animator) close() { a.c.Close() }

func (a *animator) tick(mode string, i int) {
	switch mode {
	case "small": // a 256x192 region, like a clock or a progress animation
		xproto.CopyArea(a.c, xproto.Drawable(a.pix[i%3]), xproto.Drawable(a.win), a.gc,
			int16((i*8)%(a.w-256)), int16(a.h/2), int16(a.w/3), int16(a.h/3), 256, 192)
		// Every tick differs from the last few: another pixmap and offset.
	case "full":
		xproto.CopyArea(a.c, xproto.Drawable(a.pix[i%3]), xproto.Drawable(a.win), a.gc, int16((i*8)%64), 0, 0, 0, uint16(a.w), uint16(a.h))
	}
	xproto.GetInputFocus(a.c).Reply() // keep the server in step
}

func run(mode string, target desktop.Options, newAnim func() (painter, error), quality, frameMS int, d time.Duration) error {
	an, err := newAnim()
	if err != nil {
		return err
	}
	defer an.close()
	var frames, bytes atomic.Int64
	var first atomic.Int64
	start := time.Now()
	agent, viewer := session.Pipe(64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts := desktop.Options{
		Display: target.Display, XAuthority: target.XAuthority, WaylandDisplay: target.WaylandDisplay,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnFrame: func(tiles, n int) {
			frames.Add(1)
			bytes.Add(int64(n))
			first.CompareAndSwap(0, int64(time.Since(start)))
		},
	}
	info := session.Info{Protocol: 2, Rights: session.RightAdmin}
	go func() { done <- desktop.Serve(ctx, agent, info, opts) }()
	// The viewer: ask for its settings, then just drain (the browser decodes
	// on another machine; this measures the agent).
	comp := []byte{0, 5, 0, 10, 1, byte(quality), 4, 0, byte(frameMS >> 8), byte(frameMS)}
	viewer.Write(ctx, session.Frame{Binary: true, Data: comp})
	go func() {
		for {
			if _, err := viewer.Read(ctx); err != nil {
				return
			}
		}
	}()
	// Let the first full frame go out before measuring (opening a GNOME
	// session and its PipeWire stream takes seconds on a loaded machine).
	for end := time.Now().Add(30 * time.Second); first.Load() == 0 && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	f0, b0 := frames.Load(), bytes.Load()
	cpu0 := cpuSeconds()
	kids0 := childCPU()
	t0 := time.Now()
	stopAnim := make(chan struct{})
	animDone := make(chan struct{})
	var paintCPU atomic.Int64
	go func() {
		defer close(animDone)
		// On its own thread, so that thread's CPU clock is the painter's.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c0 := threadCPU()
		defer func() { paintCPU.Store(int64(threadCPU() - c0)) }()
		if mode == "static" {
			<-stopAnim
			return
		}
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for i := 1; ; i++ {
			select {
			case <-stopAnim:
				return
			case <-tk.C:
				an.tick(mode, i)
			}
		}
	}()
	time.Sleep(d)
	el := time.Since(t0).Seconds()
	cpu := cpuSeconds() - cpu0
	for pid, c := range childCPU() {
		cpu += c - kids0[pid]
	}
	nf, nb := frames.Load()-f0, bytes.Load()-b0
	close(stopAnim)
	<-animDone
	paint := time.Duration(paintCPU.Load()).Seconds()
	cpu -= paint
	rss := rssMB()
	cancel()
	viewer.Close()
	if err := <-done; err != nil {
		return err
	}
	per := 0.0
	if nf > 0 {
		per = float64(nb) / float64(nf)
	}
	fmt.Printf("%-8s %10.1f %12.0f %10.3f %10.1f %10.0f %10.3f\n", mode, float64(nf)/el, per, cpu/el, rss, float64(first.Load())/1e6, paint/el)
	return nil
}

// cpuSeconds is this process's user+system CPU time. The animator's share
// (a CopyArea request per tick) is negligible; Xvfb is another process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// childCPU is the user+system CPU seconds of each live child process (the
// GNOME path's gst-launch-1.0), by pid.
func childCPU() map[int]float64 {
	out := map[int]float64{}
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != self {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[pid] = (ut + st) / 100 // USER_HZ
	}
	return out
}

func rssMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}
