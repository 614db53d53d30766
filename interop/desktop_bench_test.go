//go:build linux

package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // tile formats the viewer may get
	_ "image/png"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/xvfbtest"
	"github.com/meshgo/meshagent/proto/session"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
	_ "golang.org/x/image/webp"
)

// Desktop benchmark geometry and pacing: the screen, the changing region of
// scenario (b), how often the test's X client changes the screen, and the
// web viewer's defaults (default.handlebars › desktopsettings: quality 40,
// framerate 50 ms, agentencoding 4, scaling 1024).
const (
	deskW, deskH       = 1920, 1080
	regionX, regionY   = 850, 440 // not on the 32-pixel grid, like real content
	regionW, regionH   = 200, 200
	changesPerSecond   = 30 // at a 50 ms timer; the 20 ms scenes change as fast as that timer can show (fastChanges)
	fastFrameMS        = 20 // the fastest frame timer the C agent accepts
	fastChanges        = 1000 / fastFrameMS
	viewerQuality      = 40
	viewerFrameMS      = 50
	viewerImageType    = 4 // the browser asks for WebP; the C agent answers JPEG, ours lossless WebP for flat areas
	viewerScaling      = 1024
	deskSettle         = 1500 * time.Millisecond
	deskWindow         = 10 * time.Second
	noisePixmaps       = 4
	noiseMargin        = 64
	firstFrameTimeout  = 30 * time.Second
	desktopCapsTimeout = 90 * time.Second
)

// startDeskXvfb starts the X server both agents capture: started before
// either agent, as `Xvfb :N -screen 0 WxHx24 -auth FILE -nolisten tcp`, the
// command line the C agent's display discovery recognises. It counts as up
// once its socket exists (no probing client: without -noreset Xvfb resets
// when its last client leaves).
func startDeskXvfb(tb testing.TB) *xvfbtest.Display {
	tb.Helper()
	return xvfbtest.Start(tb, xvfbtest.Options{Width: deskW, Height: deskH, AuthName: "xauth",
		First: 240, Spread: 100, Limit: 500})
}

// screenPainter is the test's own X client. It keeps its connection open
// for the whole run (Xvfb resets when its last client leaves). Every image
// it shows is uploaded once into pixmaps in the X server; each change is a
// single CopyArea, so the painter and Xvfb cost little CPU next to the
// agents, and only the agents' process trees are measured.
type screenPainter struct {
	c      *xgb.Conn
	win    xproto.Window
	gc     xproto.Gcontext
	static xproto.Pixmap
	noise  []xproto.Pixmap
	text   xproto.Pixmap // scenario (d): a page of text, scrolled through
	want   *image.RGBA   // what the static screen shows, for the decode check
	rng    *mrand.Rand
	mu     sync.Mutex
	drawn  int // changes drawn so far
}

func newScreenPainter(tb testing.TB, display string) *screenPainter {
	tb.Helper()
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		tb.Fatalf("X client: %v", err)
	}
	tb.Cleanup(c.Close)
	scr := xproto.Setup(c).DefaultScreen(c)
	p := &screenPainter{c: c, rng: mrand.New(mrand.NewPCG(7, 11))}
	wid, _ := c.NewId()
	p.win = xproto.Window(wid)
	xproto.CreateWindow(c, scr.RootDepth, p.win, scr.Root, 0, 0, deskW, deskH, 0,
		xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel|xproto.CwOverrideRedirect, []uint32{0x101010, 1})
	xproto.MapWindow(c, p.win)
	gid, _ := c.NewId()
	p.gc = xproto.Gcontext(gid)
	xproto.CreateGC(c, p.gc, xproto.Drawable(p.win), 0, nil)

	p.want = staticPicture()
	p.static = p.upload(tb, scr, deskW, deskH, func(x, y int) (byte, byte, byte) {
		o := p.want.PixOffset(x, y)
		return p.want.Pix[o], p.want.Pix[o+1], p.want.Pix[o+2]
	})
	// Noise: a few screens of random pixels with a margin, so a copy from
	// pixmap i%4 at a random offset changes every pixel on every change.
	src := mrand.NewChaCha8([32]byte{42})
	for k := 0; k < noisePixmaps; k++ {
		var buf [3]byte
		p.noise = append(p.noise, p.upload(tb, scr, deskW+noiseMargin, deskH+noiseMargin, func(x, y int) (byte, byte, byte) {
			src.Read(buf[:])
			return buf[0], buf[1], buf[2]
		}))
	}
	txt := textPage(tb)
	p.text = p.upload(tb, scr, txt.Rect.Dx(), txt.Rect.Dy(), func(x, y int) (byte, byte, byte) {
		o := txt.PixOffset(x, y)
		return txt.Pix[o], txt.Pix[o+1], txt.Pix[o+2]
	})
	p.showStatic()
	return p
}

// Scenario (d): a textWxtextH document window whose text scrolls by one
// line per change, the kind of screen lossless WebP pays on.
const (
	textW, textH = 1000, 600
	textLine     = 22
	textLines    = 40 // lines scrolled through before the page repeats
)

// textPage is the document: anti-aliased Go Regular text on white, a grey
// gutter with line numbers, textH plus textLines lines tall.
func textPage(tb testing.TB) *image.RGBA {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, textW, textH+textLines*textLine))
	draw.Draw(img, img.Rect, image.White, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 0, 56, img.Rect.Dy()), &image.Uniform{color.RGBA{0xe8, 0xe8, 0xec, 0xff}}, image.Point{}, draw.Src)
	ft, err := opentype.Parse(goregular.TTF)
	if err != nil {
		tb.Fatal(err)
	}
	face, err := opentype.NewFace(ft, &opentype.FaceOptions{Size: 13, DPI: 96, Hinting: font.HintingFull})
	if err != nil {
		tb.Fatal(err)
	}
	words := strings.Fields("the agent sends tiles of the screen to the viewer as JPEG or WebP and the relay carries them quality frame timer bytes per frame session desktop")
	rng := mrand.New(mrand.NewPCG(3, 5))
	d := &font.Drawer{Dst: img, Face: face}
	for i := 0; (i+1)*textLine < img.Rect.Dy(); i++ {
		y := (i+1)*textLine - 6
		d.Src, d.Dot = image.NewUniform(color.RGBA{0x70, 0x70, 0x78, 0xff}), fixed.P(8, y)
		d.DrawString(strconv.Itoa(i%textLines + 1))
		var line []string
		for n := 8 + rng.IntN(10); n > 0; n-- {
			line = append(line, words[rng.IntN(len(words))])
		}
		d.Src, d.Dot = image.NewUniform(color.RGBA{0x20, 0x20, 0x24, 0xff}), fixed.P(68, y)
		d.DrawString(strings.Join(line, " "))
	}
	return img
}

// upload creates a w×h pixmap from px, sent in strips under the core
// protocol's request size limit.
func (p *screenPainter) upload(tb testing.TB, scr *xproto.ScreenInfo, w, h int, px func(x, y int) (r, g, b byte)) xproto.Pixmap {
	tb.Helper()
	id, _ := p.c.NewId()
	pm := xproto.Pixmap(id)
	xproto.CreatePixmap(p.c, scr.RootDepth, pm, xproto.Drawable(p.win), uint16(w), uint16(h))
	const rows = 16
	strip := make([]byte, w*4*rows)
	for y0 := 0; y0 < h; y0 += rows {
		n := min(rows, h-y0)
		for y := 0; y < n; y++ {
			for x := 0; x < w; x++ {
				r, g, b := px(x, y0+y)
				o := (y*w + x) * 4
				strip[o], strip[o+1], strip[o+2], strip[o+3] = b, g, r, 0 // BGRX, 24-bit depth
			}
		}
		xproto.PutImage(p.c, xproto.ImageFormatZPixmap, xproto.Drawable(pm), p.gc, uint16(w), uint16(n), 0, int16(y0), 0, scr.RootDepth, strip[:w*4*n])
	}
	if _, err := xproto.GetInputFocus(p.c).Reply(); err != nil {
		tb.Fatalf("X upload: %v", err)
	}
	return pm
}

func (p *screenPainter) sync() { xproto.GetInputFocus(p.c).Reply() }

func (p *screenPainter) showStatic() {
	p.mu.Lock()
	defer p.mu.Unlock()
	xproto.CopyArea(p.c, xproto.Drawable(p.static), xproto.Drawable(p.win), p.gc, 0, 0, 0, 0, deskW, deskH)
	p.sync()
}

// change draws change number i of a scenario: "region" puts fresh noise in
// the 200×200 region, "full" over the whole screen.
func (p *screenPainter) change(mode string, i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pm := xproto.Drawable(p.noise[i%len(p.noise)])
	switch mode {
	case "region":
		sx, sy := int16(p.rng.IntN(deskW-regionW)), int16(p.rng.IntN(deskH-regionH))
		xproto.CopyArea(p.c, pm, xproto.Drawable(p.win), p.gc, sx, sy, regionX, regionY, regionW, regionH)
	case "full":
		sx, sy := int16(p.rng.IntN(noiseMargin)), int16(p.rng.IntN(noiseMargin))
		xproto.CopyArea(p.c, pm, xproto.Drawable(p.win), p.gc, sx, sy, 0, 0, deskW, deskH)
	case "text":
		xproto.CopyArea(p.c, xproto.Drawable(p.text), xproto.Drawable(p.win), p.gc, 0, int16(i%textLines*textLine), regionX-400, regionY-200, textW, textH)
	}
	p.sync()
	p.drawn++
}

// deskPainter draws the benchmark's screens: the X painter on Xvfb, the
// Wayland one through a test client (desktop_bench_wayland_test.go).
type deskPainter interface {
	showStatic()
	animate(mode string, perSecond int) (stop func())
	changes() int
	wantImage() *image.RGBA
}

func (p *screenPainter) wantImage() *image.RGBA { return p.want }

func (p *screenPainter) changes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drawn
}

func (p *screenPainter) animate(mode string, perSecond int) (stop func()) {
	return animate(mode, perSecond, p.change, p.showStatic)
}

// animate calls change perSecond times a second until the returned stop is
// called; stop puts the static screen back with showStatic. Both painters
// (X and Wayland) animate through it.
func animate(mode string, perSecond int, change func(mode string, i int), showStatic func()) (stop func()) {
	if mode == "static" {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tk.Stop()
		for i := 0; ; i++ {
			change(mode, i)
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() { close(done); <-finished; showStatic() }
}

// staticPicture is the benchmark's static screen for both painters: a
// desktop-like picture (gradient background, a top bar, a light window
// with text-like strokes, a coloured panel) that JPEG keeps recognisable.
func staticPicture() *image.RGBA {
	want := image.NewRGBA(image.Rect(0, 0, deskW, deskH))
	for y := 0; y < deskH; y++ {
		for x := 0; x < deskW; x++ {
			o := want.PixOffset(x, y)
			r, g, b := byte(40+x*120/deskW), byte(60+y*100/deskH), byte(140)
			switch {
			case y < 32:
				r, g, b = 30, 30, 36
			case x > 200 && x < 1100 && y > 120 && y < 900:
				r, g, b = 236, 236, 232
				if (y-140)%22 < 12 && ((x-220)/9+(y-140)/22)%7 != 0 && x > 220 && x < 1080 && y > 140 && y < 880 {
					if (x/3+y)%4 != 0 {
						r, g, b = 32, 32, 32
					}
				}
			case x > 1250 && x < 1800 && y > 300 && y < 800:
				r, g, b = byte(200-(y-300)/4), byte(90+(x-1250)/5), 60
			}
			want.Pix[o], want.Pix[o+1], want.Pix[o+2], want.Pix[o+3] = r, g, b, 255
		}
	}
	return want
}

// tileArrival is one PICTURE (or JUMBO-wrapped PICTURE) message as the
// viewer received it.
type tileArrival struct {
	at    time.Time
	x, y  int
	bytes int // whole message, header included
	webp  bool
}

// deskViewer plays the web viewer's part of a protocol 2 session: it
// answers SCREEN exactly as agent-desktop-0.0.2.js does (COMPRESSION with
// the page's settings, PAUSE 0, INPUT_LOCK query, key-ups, INIT_TOUCH, each
// a message of its own), answers relay pings, and records every tile.
type deskViewer struct {
	ch       session.Channel
	mu       sync.Mutex
	screenW  int
	screenH  int
	frameMS  int // the frame timer this viewer asks for
	tiles    []tileArrival
	canvas   *image.RGBA // the first full frame, composed from decoded tiles
	covered  []bool
	left     int // pixels of the screen not yet covered by a tile
	firstB   int // bytes of the tiles until the screen was covered
	full     chan struct{}
	checkErr error
	readErr  error
	done     chan struct{}
}

func newDeskViewer(ch session.Channel, frameMS int) *deskViewer {
	v := &deskViewer{ch: ch, frameMS: frameMS, full: make(chan struct{}), done: make(chan struct{})}
	go v.read()
	return v
}

func (v *deskViewer) send(b ...byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v.ch.Write(ctx, session.Frame{Binary: true, Data: b})
}

// onScreen is agent-desktop › ProcessScreenMsg plus the SCREEN case of
// ProcessBinaryCommand, for a size the page did not have yet.
func (v *deskViewer) onScreen() {
	v.send(0, 5, 0, 10, viewerImageType, viewerQuality, viewerScaling>>8, viewerScaling&0xff, byte(v.frameMS>>8), byte(v.frameMS))
	v.send(0, 8, 0, 5, 0)  // SendUnPause
	v.send(0, 87, 0, 5, 2) // SendRemoteInputLock(2): query
	for _, kc := range []byte{16, 17, 18, 91, 92, 16} {
		v.send(0, 1, 0, 6, 1, kc) // SendKeyMsgKC(UP, kc)
	}
	v.send(0, 14, 0, 4) // INIT_TOUCH
}

func (v *deskViewer) read() {
	defer close(v.done)
	var acc []byte
	for {
		f, err := v.ch.Read(context.Background())
		if err != nil {
			v.mu.Lock()
			v.readErr = err
			v.mu.Unlock()
			return
		}
		now := time.Now()
		if !f.Binary {
			if bytes.Contains(f.Data, []byte(`"ping"`)) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				v.ch.Write(ctx, session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"pong"}`)})
				cancel()
			}
			continue
		}
		// As agent-redir-ws › xxOnMessage: a command whose declared length
		// exceeds its message is completed by the following messages.
		acc = append(acc, f.Data...)
		for len(acc) >= 4 {
			cmd := int(binary.BigEndian.Uint16(acc))
			n := int(binary.BigEndian.Uint16(acc[2:]))
			if cmd == 27 && len(acc) >= 8 {
				n = 8 + int(binary.BigEndian.Uint32(acc[4:]))
			} else if cmd == 27 {
				break
			}
			if n < 4 {
				n = 4
			}
			if len(acc) < n {
				break
			}
			v.command(now, acc[:n])
			acc = acc[n:]
		}
		if len(acc) == 0 {
			acc = nil
		} else {
			acc = slices.Clone(acc)
		}
	}
}

func (v *deskViewer) command(now time.Time, m []byte) {
	cmd := binary.BigEndian.Uint16(m)
	switch {
	case cmd == 7 && len(m) >= 8:
		w, h := int(binary.BigEndian.Uint16(m[4:])), int(binary.BigEndian.Uint16(m[6:]))
		v.mu.Lock()
		changed := w != v.screenW || h != v.screenH
		v.screenW, v.screenH = w, h
		if changed && v.canvas == nil {
			v.left = w * h
			v.covered = make([]bool, w*h)
		}
		v.mu.Unlock()
		if changed {
			v.onScreen()
		}
	case cmd == 3 && len(m) >= 8:
		v.tile(now, int(binary.BigEndian.Uint16(m[4:])), int(binary.BigEndian.Uint16(m[6:])), m[8:], len(m))
	case cmd == 27 && len(m) >= 16 && binary.BigEndian.Uint16(m[8:]) == 3:
		v.tile(now, int(binary.BigEndian.Uint16(m[12:])), int(binary.BigEndian.Uint16(m[14:])), m[16:], len(m))
	}
}

// tile records an arrival and, until the first full frame is complete,
// decodes the image into the canvas.
func (v *deskViewer) tile(now time.Time, x, y int, img []byte, n int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tiles = append(v.tiles, tileArrival{at: now, x: x, y: y, bytes: n, webp: bytes.HasPrefix(img, []byte("RIFF"))})
	if v.covered == nil || v.left == 0 || v.checkErr != nil {
		return
	}
	if v.canvas == nil {
		v.canvas = image.NewRGBA(image.Rect(0, 0, v.screenW, v.screenH))
	}
	v.firstB += n
	dec, _, err := image.Decode(bytes.NewReader(img))
	if err != nil {
		v.checkErr = fmt.Errorf("tile at %d,%d (%d bytes) does not decode: %v", x, y, len(img), err)
		close(v.full)
		return
	}
	r := dec.Bounds().Sub(dec.Bounds().Min).Add(image.Pt(x, y)).Intersect(v.canvas.Bounds())
	draw.Draw(v.canvas, r, dec, dec.Bounds().Min, draw.Src)
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		row := v.covered[yy*v.screenW:]
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			if !row[xx] {
				row[xx] = true
				v.left--
			}
		}
	}
	if v.left == 0 {
		close(v.full)
	}
}

// checkFirstFrame waits for tiles to have covered the whole screen once and
// compares that picture with what the painter shows: the screen size must
// be the Xvfb's and the 32×32 block averages must match the static image.
func (v *deskViewer) checkFirstFrame(want *image.RGBA) error {
	select {
	case <-v.full:
	case <-v.done:
		return fmt.Errorf("session ended before a full frame: %v", v.readErr)
	case <-time.After(firstFrameTimeout):
		v.mu.Lock()
		defer v.mu.Unlock()
		return fmt.Errorf("no full frame within %s (screen %dx%d, %d tiles, %d pixels uncovered)", firstFrameTimeout, v.screenW, v.screenH, len(v.tiles), v.left)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.checkErr != nil {
		return v.checkErr
	}
	if v.screenW != deskW || v.screenH != deskH {
		return fmt.Errorf("screen is %dx%d, the Xvfb is %dx%d", v.screenW, v.screenH, deskW, deskH)
	}
	bad, blocks := 0, 0
	var sum float64
	for by := 0; by+32 <= deskH; by += 32 {
		for bx := 0; bx+32 <= deskW; bx += 32 {
			var d float64
			for c := 0; c < 3; c++ {
				d += abs(blockMean(v.canvas, bx, by, c) - blockMean(want, bx, by, c))
			}
			d /= 3
			sum += d
			blocks++
			if d > 24 {
				bad++
			}
		}
	}
	if mean := sum / float64(blocks); mean > 8 || bad > blocks/100 {
		return fmt.Errorf("first frame does not show the screen: mean block error %.1f, %d of %d blocks off", mean, bad, blocks)
	}
	return nil
}

func blockMean(img *image.RGBA, x0, y0, c int) float64 {
	s := 0
	for y := y0; y < y0+32; y++ {
		o := img.PixOffset(x0, y) + c
		for x := 0; x < 32; x++ {
			s += int(img.Pix[o+4*x])
		}
	}
	return float64(s) / 1024
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// arrivals returns the tiles received in [from, to).
func (v *deskViewer) arrivals(from, to time.Time) []tileArrival {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []tileArrival
	for _, t := range v.tiles {
		if !t.at.Before(from) && t.at.Before(to) {
			out = append(out, t)
		}
	}
	return out
}

func (v *deskViewer) firstTile() (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.tiles) == 0 {
		return time.Time{}, false
	}
	return v.tiles[0].at, true
}

// countFrames groups tiles into frames. Both agents send the tiles of one
// capture pass in row-major order of their top-left corners (the C agent's
// scan in linux_tile.c, our tiler.rects), so a frame is a maximal run of
// tiles whose positions keep increasing (y, then x); a tile at or before
// the previous one's position starts the next frame. A silence longer than
// two frame-timer periods also ends a frame, in case a pass only changed
// tiles below the previous pass's. Arrival bursts alone are not reliable:
// the C agent encodes tile by tile, so one pass can arrive spread over more
// time than the frame timer.
func countFrames(ts []tileArrival, frameMS int) (frames int, starts []time.Time) {
	split := 2 * time.Duration(frameMS) * time.Millisecond
	for i, t := range ts {
		if i > 0 {
			p := ts[i-1]
			if t.y > p.y || (t.y == p.y && t.x > p.x) {
				if t.at.Sub(p.at) <= split {
					continue
				}
			}
		}
		frames++
		starts = append(starts, t.at)
	}
	return frames, starts
}

// intervals returns the median and 90th percentile of the gaps between
// frame starts: a pass every frame timer shows as a median at the timer.
func intervals(starts []time.Time) (p50, p90 time.Duration) {
	if len(starts) < 2 {
		return 0, 0
	}
	var d []time.Duration
	for i := 1; i < len(starts); i++ {
		d = append(d, starts[i].Sub(starts[i-1]))
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*9/10]
}

// procStat is what /proc/PID/stat tells about one process.
type procStat struct {
	ppid  int
	ticks int64 // utime+stime+cutime+cstime: its own CPU and that of reaped children
	rssKB int64
}

var pageKB = int64(os.Getpagesize() / 1024)

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14 → f[11].
	if len(f) < 22 {
		return procStat{}, false
	}
	num := func(k int) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	return procStat{ppid: int(num(1)), ticks: num(11) + num(12) + num(13) + num(14), rssKB: num(21) * pageKB}, true
}

// processTree returns root and all its descendants with their stats.
func processTree(root int) map[int]procStat {
	all := map[int]procStat{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok {
			all[pid] = st
		}
	}
	tree := map[int]procStat{}
	if st, ok := all[root]; ok {
		tree[root] = st
	}
	for grew := true; grew; {
		grew = false
		for pid, st := range all {
			if _, in := tree[pid]; !in {
				if _, parentIn := tree[st.ppid]; parentIn {
					tree[pid] = st
					grew = true
				}
			}
		}
	}
	return tree
}

const clockTicks = 100 // USER_HZ on Linux

// treeCPU is the CPU time in seconds used so far by root's live process
// tree, counting reaped children through their parents' cutime/cstime.
func treeCPU(root int) float64 {
	var t int64
	for _, st := range processTree(root) {
		t += st.ticks
	}
	return float64(t) / clockTicks
}

// treePeakRSS samples the summed RSS of root's process tree every 50 ms
// until stop is called, and returns the peak in kB.
func treePeakRSS(root int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64)
	go func() {
		var peak int64
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			var sum int64
			for _, st := range processTree(root) {
				sum += st.rssKB
			}
			peak = max(peak, sum)
			select {
			case <-done:
				result <- peak
				return
			case <-tk.C:
			}
		}
	}()
	return func() int64 { close(done); return <-result }
}

// deskFigures are one agent's results in one scenario.
type deskFigures struct {
	tilesPerSec  float64
	framesPerSec float64
	bytesPerFrm  float64
	cpuPerSec    float64
	peakRSSMB    float64
	firstTile    time.Duration // relay paired ("c") to first tile
	requestTile  time.Duration // tunnel request to first tile
	gapP50       time.Duration // between frame starts
	gapP90       time.Duration
	changesPerS  float64 // what the painter drew meanwhile
	webpShare    float64 // of the bytes, in WebP tiles
	firstFrameB  int     // the first full screen (the static picture)
}

// measureDesktop opens one desktop session to nodeID as the web viewer
// does, checks the first full frame, then runs the scenario for
// deskWindow after deskSettle and measures the agent's process tree.
func measureDesktop(b *testing.B, srv *mctest.Server, u *userConn, p deskPainter, name, nodeID string, pid int, mode string, frameMS, changesPerS int) deskFigures {
	var f deskFigures
	p.showStatic()
	time.Sleep(300 * time.Millisecond)
	stopRSS := treePeakRSS(pid)
	t0 := time.Now()
	// agent-redir-ws sends its options ({} plus type) before the protocol.
	ch := openRelay(b, srv, u, nodeID, 2, `{"type":"options"}`)
	opened := time.Now()
	v := newDeskViewer(ch, frameMS)
	if err := v.checkFirstFrame(p.wantImage()); err != nil {
		b.Fatalf("%s: %v", mode, err)
	}
	first, _ := v.firstTile()
	v.mu.Lock()
	f.firstFrameB = v.firstB
	v.mu.Unlock()
	f.firstTile, f.requestTile = first.Sub(opened), first.Sub(t0)

	stopAnim := p.animate(mode, changesPerS)
	time.Sleep(deskSettle)
	cpu0, w0, n0 := treeCPU(pid), time.Now(), p.changes()
	stopPerf := perfRecord(b, pid, name+"-"+mode)
	time.Sleep(deskWindow)
	cpu1, w1, n1 := treeCPU(pid), time.Now(), p.changes()
	stopPerf()
	stopAnim()
	ch.Close()
	<-v.done
	f.peakRSSMB = float64(stopRSS()) / 1024

	el := w1.Sub(w0).Seconds()
	ts := v.arrivals(w0, w1)
	frames, starts := countFrames(ts, frameMS)
	f.gapP50, f.gapP90 = intervals(starts)
	f.changesPerS = float64(n1-n0) / el
	total, webpBytes := 0, 0
	for _, t := range ts {
		total += t.bytes
		if t.webp {
			webpBytes += t.bytes
		}
	}
	if total > 0 {
		f.webpShare = float64(webpBytes) / float64(total)
	}
	f.tilesPerSec = float64(len(ts)) / el
	f.framesPerSec = float64(frames) / el
	if frames > 0 {
		f.bytesPerFrm = float64(total) / float64(frames)
	}
	f.cpuPerSec = (cpu1 - cpu0) / el
	time.Sleep(time.Second) // let the agent wind the session down
	return f
}

// perfRecord runs `perf record` on pid while the measurement window lasts
// when MESHGO_DESKBENCH_PERF names a directory (profiling costs the agent
// CPU, so figures from such a run are not for comparison). The data goes
// to DIR/NAME.data; read it with `perf report -i`.
func perfRecord(tb testing.TB, pid int, name string) (stop func()) {
	dir := os.Getenv("MESHGO_DESKBENCH_PERF")
	if dir == "" {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-e", "cpu-clock", "-F", "997", "-g", "-p", strconv.Itoa(pid), "-o", filepath.Join(dir, name+".data"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Logf("perf: %v", err)
		return func() {}
	}
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		tb.Logf("perf %s: %s", name, strings.TrimSpace(out.String()))
	}
}

// BenchmarkDesktop prints, side by side with the real C agent's KVM on the
// same Xvfb content and the same MeshCentral, with the web viewer's default
// settings (quality 40, 50 ms frame timer, sent as the browser sends them):
// tiles and frames per second, bytes per frame, agent CPU seconds per
// second and peak RSS (whole process tree: the C agent captures in a child
// process), and the time from relay pairing to the first tile, for (a) a
// static screen, (b) a 200×200 region of noise changing 30 times a second,
// (c) every pixel changing 30 times a second. Every session first checks
// that its first full frame decodes to the Xvfb's size and content.
//
//	go test ./interop -run '^$' -bench Desktop -benchtime 1x
func BenchmarkDesktop(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the C agent finds the X server only as root")
	}
	x := startDeskXvfb(b) // before either agent: the C agent looks only in its first minutes
	b.Setenv("DISPLAY", x.Name)
	b.Setenv("XAUTHORITY", x.AuthFile)
	p := newScreenPainter(b, x.Name)
	srv := mctest.Shared(b)

	ourMesh := srv.AddDeviceGroup(b, "bench-desktop-ours")
	// MESHGO_DESKBENCH_OURS_ENV="K=V,K=V" adds environment for our agent
	// only, for experiments (e.g. GOMEMLIMIT=off against its built-in
	// 16 MiB soft limit); such runs print it above the table.
	// MESHGO_DESKBENCH_OURS_LOG=FILE keeps our agent's output (e.g. with
	// GODEBUG=gctrace=1).
	extraEnv := os.Getenv("MESHGO_DESKBENCH_OURS_ENV")
	var restore []func()
	for _, kv := range strings.Split(extraEnv, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			old, had := os.LookupEnv(k)
			os.Setenv(k, v)
			restore = append(restore, func() {
				if had {
					os.Setenv(k, old)
				} else {
					os.Unsetenv(k)
				}
			})
		}
	}
	ours := startAgent(b, srv.MSH(b, ourMesh))
	for _, r := range restore {
		r()
	}
	if path := os.Getenv("MESHGO_DESKBENCH_OURS_LOG"); path != "" {
		b.Cleanup(func() { os.WriteFile(path, []byte(ours.log.String()), 0o644) })
	}
	cMesh := srv.AddDeviceGroup(b, "bench-desktop-c")
	c := mctest.StartCAgent(b, srv.MSH(b, cMesh))
	if _, ok := ours.waitLog(60*time.Second, "core started"); !ok {
		b.Fatal("our agent did not start its core")
	}
	ourID := "node//" + ours.nodeID()
	// The C agent offers the desktop (caps bit 1) only if it found the X
	// server; ours is checked by its first frame instead, and a missing
	// caps bit (the web UI then hides the Desktop tab) is reported.
	odev := srv.WaitDevice(b, func(d mctest.Device) bool { return d.ID == ourID && d.Online() && d.Agent.Core != "" }, desktopCapsTimeout)
	cdev := srv.WaitDevice(b, func(d mctest.Device) bool {
		return d.MeshID == cMesh && d.Online() && d.Agent.Caps&1 != 0 && d.Agent.Core != ""
	}, desktopCapsTimeout)
	capsNote := ""
	if odev.Agent.Caps&1 == 0 {
		capsNote = fmt.Sprintf("note: our agent reports caps %d without the desktop bit 1 (C agent: %d): the web UI shows no Desktop tab for it\n", odev.Agent.Caps, cdev.Agent.Caps)
	}
	u := dialControl(b, srv)
	// Idle cost with no session, for reference.
	time.Sleep(3 * time.Second)
	oc0, cc0, it0 := treeCPU(ours.cmd.Process.Pid), treeCPU(c.PID()), time.Now()
	time.Sleep(5 * time.Second)
	idleOurs := (treeCPU(ours.cmd.Process.Pid) - oc0) / time.Since(it0).Seconds()
	idleC := (treeCPU(c.PID()) - cc0) / time.Since(it0).Seconds()

	// (b) and (c) run at the web UI's "Fast" 50 ms timer and again at
	// 20 ms, the fastest the C agent accepts. A 20 ms timer can show 50
	// frames a second, so its scenes change the screen 50 times a second:
	// at 30 no agent could show more than 30, and "2x the C agent's
	// frames/s" would be out of reach whenever the C agent showed over 15.
	modes := []struct {
		key, mode, title string
		frameMS, changes int
	}{
		{"a", "static", "(a) static screen", viewerFrameMS, changesPerSecond},
		{"b", "region", "(b) 200x200 region changing", viewerFrameMS, changesPerSecond},
		{"c", "full", "(c) every pixel changing", viewerFrameMS, changesPerSecond},
		{"b20", "region", "(b) region, 20 ms, 50 chg/s", fastFrameMS, fastChanges},
		{"c20", "full", "(c) every pixel, 20 ms, 50/s", fastFrameMS, fastChanges},
		{"d", "text", "(d) text scrolling, 1000x600", viewerFrameMS, changesPerSecond},
	}
	for i := 0; i < b.N; i++ {
		fo := map[string]deskFigures{}
		fc := map[string]deskFigures{}
		for _, m := range modes {
			fo[m.key] = measureDesktop(b, srv, u, p, "ours", ourID, ours.cmd.Process.Pid, m.mode, m.frameMS, m.changes)
			fc[m.key] = measureDesktop(b, srv, u, p, "c", cdev.ID, c.PID(), m.mode, m.frameMS, m.changes)
		}
		if extraEnv != "" {
			fmt.Printf("\nour agent ran with extra environment %s\n", extraEnv)
		}
		fmt.Printf("\ndesktop on Xvfb %dx%d, viewer quality %d, frame timer %d ms and %d screen changes/s unless the scenario says, %s per scenario\n",
			deskW, deskH, viewerQuality, viewerFrameMS, changesPerSecond, deskWindow)
		fmt.Printf("%-30s %-26s %10s %10s %9s\n", "scenario", "figure", "ours", "C agent", "ratio")
		row := func(sc, name string, o, c float64, unit string) {
			ratio := "        -"
			if c != 0 {
				ratio = fmt.Sprintf("%8.2fx", o/c)
			}
			fmt.Printf("%-30s %-26s %10.3f %10.3f %s  %s\n", sc, name, o, c, ratio, unit)
		}
		row("no session (idle agent)", "agent CPU", idleOurs, idleC, "s/s")
		for _, m := range modes {
			o, c := fo[m.key], fc[m.key]
			row(m.title, "tiles/s", o.tilesPerSec, c.tilesPerSec, "")
			row("", "frames/s", o.framesPerSec, c.framesPerSec, "")
			row("", "bytes/frame", o.bytesPerFrm/1024, c.bytesPerFrm/1024, "KB")
			row("", "agent CPU", o.cpuPerSec, c.cpuPerSec, "s/s")
			row("", "peak RSS (process tree)", o.peakRSSMB, c.peakRSSMB, "MB")
			row("", "relay open to first tile", ms(o.firstTile), ms(c.firstTile), "ms")
			row("", "tunnel request to 1st tile", ms(o.requestTile), ms(c.requestTile), "ms")
			if m.mode == "static" {
				row("", "first full screen", float64(o.firstFrameB)/1024, float64(c.firstFrameB)/1024, "KB")
			}
			if m.mode != "static" {
				row("", "frame gap median", ms(o.gapP50), ms(c.gapP50), "ms")
				row("", "frame gap 90th pct", ms(o.gapP90), ms(c.gapP90), "ms")
				row("", "screen changes drawn/s", o.changesPerS, c.changesPerS, "")
				row("", "share of bytes in WebP", o.webpShare, c.webpShare, "")
			}
		}
		firsts := func(f map[string]deskFigures) time.Duration {
			return median([]time.Duration{f["a"].firstTile, f["b"].firstTile, f["c"].firstTile})
		}
		peak := func(f map[string]deskFigures) float64 {
			return max(f["a"].peakRSSMB, f["b"].peakRSSMB, f["c"].peakRSSMB)
		}
		goal := func(ok bool) string {
			if ok {
				return "met"
			}
			return "MISSED"
		}
		fmt.Print(capsNote)
		fmt.Printf("note: a %d ms frame timer allows at most %d frames/s to any agent (the screen changes %d times a second), a %d ms one %d (the screen changes %d times a second)\n",
			viewerFrameMS, 1000/viewerFrameMS, changesPerSecond, fastFrameMS, 1000/fastFrameMS, fastChanges)
		capFPS := float64(1000 / viewerFrameMS)
		fmt.Printf("goals at %d ms: (b) frames/s >= 95%% of %v at <= 0.7x C's bytes/frame: %s; (c) same: %s\n", viewerFrameMS, capFPS,
			goal(fo["b"].framesPerSec >= 0.95*capFPS && fo["b"].bytesPerFrm <= 0.7*fc["b"].bytesPerFrm),
			goal(fo["c"].framesPerSec >= 0.95*capFPS && fo["c"].bytesPerFrm <= 0.7*fc["c"].bytesPerFrm))
		fmt.Printf("goals at 20 ms: (b) frames/s >= 2x C at no more bytes/frame: %s; (c) same: %s\n",
			goal(fo["b20"].framesPerSec >= 2*fc["b20"].framesPerSec && fo["b20"].bytesPerFrm <= fc["b20"].bytesPerFrm),
			goal(fo["c20"].framesPerSec >= 2*fc["c20"].framesPerSec && fo["c20"].bytesPerFrm <= fc["c20"].bytesPerFrm))
		fmt.Printf("goals: (b) frames/s >= 2x C at no more bytes/frame: %s; (c) same: %s; static CPU < 0.05 s/s: %s; first tile < 200 ms: %s; less memory: %s\n",
			goal(fo["b"].framesPerSec >= 2*fc["b"].framesPerSec && fo["b"].bytesPerFrm <= fc["b"].bytesPerFrm),
			goal(fo["c"].framesPerSec >= 2*fc["c"].framesPerSec && fo["c"].bytesPerFrm <= fc["c"].bytesPerFrm),
			goal(fo["a"].cpuPerSec < 0.05),
			goal(firsts(fo) < 200*time.Millisecond),
			goal(peak(fo) < peak(fc)))
		for _, who := range []struct {
			name string
			f    map[string]deskFigures
		}{{"ours", fo}, {"c", fc}} {
			b.ReportMetric(who.f["a"].cpuPerSec, who.name+"-static-cpu-s/s")
			b.ReportMetric(who.f["b"].framesPerSec, who.name+"-region-fps")
			b.ReportMetric(who.f["b"].bytesPerFrm/1024, who.name+"-region-KB/frame")
			b.ReportMetric(who.f["c"].framesPerSec, who.name+"-full-fps")
			b.ReportMetric(who.f["c"].bytesPerFrm/1024, who.name+"-full-KB/frame")
			b.ReportMetric(who.f["b20"].framesPerSec, who.name+"-region20-fps")
			b.ReportMetric(who.f["c20"].framesPerSec, who.name+"-full20-fps")
			b.ReportMetric(ms(firsts(who.f)), who.name+"-first-tile-ms")
			b.ReportMetric(peak(who.f), who.name+"-peak-MB")
		}
	}
}
