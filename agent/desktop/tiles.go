package desktop

import "bytes"

// tileSize is the change-detection grid. 32 pixels matches the reference
// agent and keeps every rectangle on the 16-pixel grid the server's desktop
// multiplexor requires (sessions.md §4.2).
const tileSize = 32

// maxRectTiles bounds a merged rectangle so several encoders can share a
// full-screen update and no single JPEG grows without limit.
const maxRectTiles = 256

// frame is a captured image in BGRX byte order (4 bytes a pixel, the X11
// ZPixmap layout on little-endian hosts and the Windows DIB layout), the
// format every capture path produces and both JPEG encoders accept.
type frame struct {
	pix    []byte
	stride int
	w, h   int
}

// rect is a rectangle in pixels on the tile grid; w and h may run past the
// frame edge, where the encoder pads with black like the reference agent.
type rect struct{ x, y, w, h int }

// tiler finds the tiles that changed between passes by comparing each tile
// with a copy of the previous frame. A plain memory compare (SIMD memcmp)
// runs at memory bandwidth, about four times faster than hashing the same
// bytes, and only changed tiles are copied; the price is one frame of RAM.
type tiler struct {
	cols  int
	rows  int
	w, h  int
	prev  []byte // last frame, packed (stride w*4)
	valid bool
	dirty []bool
	taken []bool
}

func newTiler() *tiler { return &tiler{} }

// reset forgets the previous frame so the next diff reports every tile
// (REFRESH, new viewer settings).
func (t *tiler) reset() { t.valid = false }

// diff marks the tiles of f that differ from the previous frame, remembers
// f, and returns the number of dirty tiles.
func (t *tiler) diff(f *frame) int {
	cols, rows := (f.w+tileSize-1)/tileSize, (f.h+tileSize-1)/tileSize
	if cols != t.cols || rows != t.rows || f.w != t.w || f.h != t.h {
		t.cols, t.rows, t.w, t.h = cols, rows, f.w, f.h
		t.prev = make([]byte, f.w*f.h*4)
		t.dirty = make([]bool, cols*rows)
		t.taken = make([]bool, cols*rows)
		t.valid = false
	}
	ps := f.w * 4
	if !t.valid {
		for y := 0; y < f.h; y++ {
			copy(t.prev[y*ps:(y+1)*ps], f.pix[y*f.stride:])
		}
		for i := range t.dirty {
			t.dirty[i] = true
		}
		t.valid = true
		return len(t.dirty)
	}
	clear(t.dirty)
	return t.compare(f, 0, 0)
}

// diffAt compares a part of the screen, sub, whose top-left corner is at
// (ox, oy) in the frame the tiler holds; the rest counts as unchanged. It
// needs a valid tiler of the same frame size (see canDiffAt).
func (t *tiler) diffAt(sub *frame, ox, oy int) int {
	clear(t.dirty)
	return t.compare(sub, ox, oy)
}

// canDiffAt reports whether diffAt may be used for a w×h frame.
func (t *tiler) canDiffAt(w, h int) bool { return t.valid && t.w == w && t.h == h }

// current is the latest frame as the tiler knows it: after a diff it holds
// exactly what the screen showed, so tiles are encoded from it.
func (t *tiler) current() *frame { return &frame{pix: t.prev, stride: t.w * 4, w: t.w, h: t.h} }

// compare marks the tiles where f (placed at ox, oy) differs from the
// previous frame and copies the differing rows in.
func (t *tiler) compare(f *frame, ox, oy int) int {
	ps := t.w * 4
	cols := t.cols
	w := min(f.w, t.w-ox)
	h := min(f.h, t.h-oy)
	// Row-major, so both frames stream through the cache; a whole row is
	// compared first because most rows of a desktop do not change.
	for y := 0; y < h; y++ {
		cur := f.pix[y*f.stride : y*f.stride+w*4]
		old := t.prev[(oy+y)*ps+ox*4 : (oy+y)*ps+(ox+w)*4]
		if bytes.Equal(cur, old) {
			continue
		}
		row := ((oy + y) / tileSize) * cols
		for tx := ox / tileSize; tx*tileSize < ox+w; tx++ {
			x0 := max(tx*tileSize, ox) - ox
			x1 := min((tx+1)*tileSize, ox+w) - ox
			if !bytes.Equal(cur[x0*4:x1*4], old[x0*4:x1*4]) {
				t.dirty[row+tx] = true
			}
		}
		copy(old, cur)
	}
	n := 0
	for _, d := range t.dirty {
		if d {
			n++
		}
	}
	return n
}

// rects merges the dirty tiles into rectangles: grow right over consecutive
// dirty tiles, then down while the whole span below is dirty. Fewer, larger
// JPEGs save the ~600-byte header and tables per image and compress better.
func (t *tiler) rects(dst []rect) []rect {
	clear(t.taken)
	for ty := 0; ty < t.rows; ty++ {
		for tx := 0; tx < t.cols; tx++ {
			i := ty*t.cols + tx
			if !t.dirty[i] || t.taken[i] {
				continue
			}
			w := 1
			for tx+w < t.cols && w < maxRectTiles && t.dirty[i+w] && !t.taken[i+w] {
				w++
			}
			h := 1
		grow:
			for ty+h < t.rows && (h+1)*w <= maxRectTiles {
				row := (ty+h)*t.cols + tx
				for k := 0; k < w; k++ {
					if !t.dirty[row+k] || t.taken[row+k] {
						break grow
					}
				}
				h++
			}
			for r := 0; r < h; r++ {
				row := (ty+r)*t.cols + tx
				for k := 0; k < w; k++ {
					t.taken[row+k] = true
				}
			}
			dst = append(dst, rect{tx * tileSize, ty * tileSize, w * tileSize, h * tileSize})
		}
	}
	return dst
}

// sub returns the part of f under r, padding with black where r runs past
// the frame edge. Inside the frame it aliases f (no copy); scratch is reused
// for padded edges.
func (f *frame) sub(r rect, scratch []byte) (frame, []byte) {
	if r.x+r.w <= f.w && r.y+r.h <= f.h {
		off := r.y*f.stride + r.x*4
		return frame{pix: f.pix[off:], stride: f.stride, w: r.w, h: r.h}, scratch
	}
	need := r.w * r.h * 4
	if cap(scratch) < need {
		scratch = make([]byte, need)
	}
	scratch = scratch[:need]
	clear(scratch)
	vw := min(r.w, f.w-r.x)
	vh := min(r.h, f.h-r.y)
	for y := 0; y < vh; y++ {
		src := f.pix[(r.y+y)*f.stride+r.x*4:]
		copy(scratch[y*r.w*4:y*r.w*4+vw*4], src[:vw*4])
	}
	return frame{pix: scratch, stride: r.w * 4, w: r.w, h: r.h}, scratch
}

// scaleFrame resamples src to w×h (nearest neighbour) into dst's buffer.
// Scaling only ever shrinks, and nearest neighbour is a few ms for a 1080p
// frame, which keeps the viewer's "scaling" setting cheap to honour.
func scaleFrame(dst *frame, src *frame, w, h int) {
	need := w * h * 4
	if cap(dst.pix) < need {
		dst.pix = make([]byte, need)
	}
	dst.pix = dst.pix[:need]
	dst.w, dst.h, dst.stride = w, h, w*4
	xs := make([]int, w)
	for x := range xs {
		xs[x] = (x * src.w / w) * 4
	}
	for y := 0; y < h; y++ {
		srow := src.pix[(y*src.h/h)*src.stride:]
		drow := dst.pix[y*dst.stride : y*dst.stride+w*4]
		for x, sx := range xs {
			copy(drow[x*4:x*4+4], srow[sx:sx+4])
		}
	}
}
