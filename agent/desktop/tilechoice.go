package desktop

import (
	"encoding/binary"
	"time"
)

// flatness is the share (0-1024) of pixels in f equal to their left
// neighbour, sampled on every fourth row: about 1000 for window chrome,
// text on flat backgrounds and other UI, near 0 for photos, video and
// noise. It decides which rectangles are worth lossless WebP, which is
// many times smaller than JPEG on the former and several times larger on
// the latter (BenchmarkTileFormats).
func flatness(f frame) int {
	same, n := 0, 0
	for y := 0; y < f.h; y += 4 {
		row := f.pix[y*f.stride : y*f.stride+f.w*4]
		prev := binary.LittleEndian.Uint32(row) & 0xffffff
		for x := 4; x < len(row); x += 4 {
			p := binary.LittleEndian.Uint32(row[x:]) & 0xffffff
			if p == prev {
				same++
			}
			prev = p
		}
		n += f.w - 1
	}
	if n == 0 {
		return 1024
	}
	return same * 1024 / n
}

// Lossless WebP policy (BenchmarkTileFormats, BenchmarkFlatnessBands on
// libwebp 1.2.4): on rectangles scoring at least losslessFlatness it is
// 0.05-0.6x the bytes of JPEG at the viewer's quality 40, with exact
// pixels; below about 700 it is 4-9x larger, and lossy WebP at a speed a
// frame timer allows is larger than JPEG or, at the same PSNR, costs 10-25
// times its CPU. Lossless WebP costs up to about 100 ns of CPU a pixel on
// text (20-60x libjpeg-turbo), far less on plain areas, so each pass
// spends at most half its frame timer per worker on it, at the cost per
// pixel measured on this session's recent lossless tiles (starting from
// losslessStartNs); the remaining flat rectangles go as JPEG.
const (
	losslessFlatness = 768
	losslessStartNs  = 100
)

// chooseLossless marks the rectangles of this pass to send as lossless
// WebP: only when the viewer asked for WebP (type 4) and libwebp works,
// flat ones first come first served within the CPU budget.
func (s *sess) chooseLossless(f *frame, workers int) {
	n := len(s.rects)
	if cap(s.lossless) < n {
		s.lossless = make([]bool, n)
	}
	s.lossless = s.lossless[:n]
	clear(s.lossless)
	if s.imageType != imageWebP || s.webpOff.Load() {
		return
	}
	cost := max(s.losslessNs.Load(), 1) // ns per 1024 pixels
	if cost == 1 {
		cost = losslessStartNs * 1024
	}
	budget := int(int64(s.interval/2) * int64(max(workers, 1)) * 1024 / cost)
	over := false
	for i, rc := range s.rects {
		w, h := min(rc.w, f.w-rc.x), min(rc.h, f.h-rc.y)
		if w <= 0 || h <= 0 {
			continue
		}
		if w*h > budget {
			over = true
			continue
		}
		if flatness(frame{pix: f.pix[rc.y*f.stride+rc.x*4:], stride: f.stride, w: w, h: h}) >= losslessFlatness {
			s.lossless[i] = true
			budget -= w * h
		}
	}
	if over && cost > 2 {
		// A cost measured while the machine was busy would otherwise keep
		// lossless off for the rest of the session: let it age.
		s.losslessNs.Store(cost * 15 / 16)
	}
}

// newLosslessEncoder makes a worker's lossless WebP encoder; tests replace
// it with failing ones.
var newLosslessEncoder = func() (jpegEncoder, error) { return newWebPEncoder(true) }

// imageWebP is the viewer's COMPRESSION image type for WebP.
const imageWebP = 4

// encodeWebP encodes one rectangle as lossless WebP on worker w's encoder.
// A libwebp that cannot be loaded or fails turns WebP off for the session
// (logged once) and the caller sends JPEG instead.
func (s *sess) encodeWebP(w int, buf []byte, sub frame) ([]byte, bool) {
	s.webpMu.Lock()
	for len(s.webps) <= w {
		s.webps = append(s.webps, nil)
	}
	e := s.webps[w]
	if e == nil {
		var err error
		if e, err = newLosslessEncoder(); err != nil {
			s.webpMu.Unlock()
			s.disableWebP(err)
			return buf, false
		}
		s.webps[w] = e
	}
	s.webpMu.Unlock()
	n := len(buf)
	t0 := time.Now()
	out, err := e.encode(buf, sub, s.quality)
	if err != nil {
		s.disableWebP(err)
		return buf[:n], false
	}
	if px := int64(sub.w * sub.h); px > 0 {
		sample := int64(time.Since(t0)) * 1024 / px
		if old := s.losslessNs.Load(); old > 1 {
			sample = (3*old + sample) / 4
		}
		s.losslessNs.Store(max(sample, 2))
	}
	return out, true
}

func (s *sess) disableWebP(err error) {
	if s.webpOff.CompareAndSwap(false, true) {
		s.log.Info("desktop: the viewer asks for WebP; sending JPEG only", "err", err)
	}
}
