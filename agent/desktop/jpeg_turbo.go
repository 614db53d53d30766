//go:build cgo && linux && !desktop_stdjpeg

package desktop

// libjpeg-turbo through its TurboJPEG API: ~10x faster than image/jpeg for a
// full frame, which is what makes full-screen updates cheap. The static
// archive (Debian: libturbojpeg0-dev ships libturbojpeg.a) is linked so the
// agent binary needs no libturbojpeg at run time; build with the tag
// desktop_turbo_shared to link the shared library instead.

/*
#include <stdlib.h>
#include <turbojpeg.h>

static int mg_compress(tjhandle h, unsigned char *src, int w, int pitch, int hgt,
	unsigned char **out, unsigned long *size, int quality) {
	return tjCompress2(h, src, w, pitch, hgt, TJPF_BGRX, out, size, TJSAMP_420, quality,
		TJFLAG_FASTDCT | TJFLAG_NOREALLOC);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

const jpegImpl = "libjpeg-turbo"

type turboEncoder struct {
	h     C.tjhandle
	out   *C.uchar
	outSz C.ulong // capacity of out, from tjBufSize
}

func newJPEGEncoder() (jpegEncoder, error) {
	h := C.tjInitCompress()
	if h == nil {
		return nil, errors.New("tjInitCompress failed")
	}
	return &turboEncoder{h: h}, nil
}

func (e *turboEncoder) encode(dst []byte, f frame, quality int) ([]byte, error) {
	if f.w <= 0 || f.h <= 0 || len(f.pix) < (f.h-1)*f.stride+f.w*4 {
		return dst, fmt.Errorf("turbojpeg: bad frame %dx%d stride %d len %d", f.w, f.h, f.stride, len(f.pix))
	}
	need := C.tjBufSize(C.int(f.w), C.int(f.h), C.TJSAMP_420)
	if need > e.outSz {
		if e.out != nil {
			C.tjFree(e.out)
		}
		e.out = C.tjAlloc(C.int(need))
		if e.out == nil {
			e.outSz = 0
			return dst, errors.New("turbojpeg: out of memory")
		}
		e.outSz = need
	}
	size := e.outSz
	out := e.out
	if C.mg_compress(e.h, (*C.uchar)(unsafe.Pointer(&f.pix[0])), C.int(f.w), C.int(f.stride), C.int(f.h),
		&out, &size, C.int(quality)) != 0 {
		return dst, fmt.Errorf("turbojpeg: %s", C.GoString(C.tjGetErrorStr2(e.h)))
	}
	return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(out)), int(size))...), nil
}

func (e *turboEncoder) close() {
	if e.out != nil {
		C.tjFree(e.out)
		e.out = nil
	}
	if e.h != nil {
		C.tjDestroy(e.h)
		e.h = nil
	}
}
