//go:build (linux && cgo) || darwin

package desktop

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libwebp is loaded at run time with purego (dlopen), never linked: an
// agent on a machine without libwebp simply keeps sending JPEG, and the
// binary grows by no encoder. Only builds that already link libc load it
// (cgo on Linux, every macOS build): purego in a CGO_ENABLED=0 Linux build
// would turn the static binary into a dynamically linked one.
//
// The advanced API is used (WebPConfig, WebPPicture, WebPEncode) because
// the simple one (WebPEncodeBGRA) has no speed setting and no BGRX import:
// it runs method 4, several times too slow for a frame timer, and would
// read the X padding byte as alpha. The structs are declared here from
// libwebp's encode.h; their layout has only grown at the end since 0.5
// and libwebp checks the ABI major version we pass.

// webpABI is WEBP_ENCODER_ABI_VERSION of libwebp 1.2 (0x020f). libwebp
// accepts any version with the same major byte (1.0 through 1.6 do), so
// the newest fields we do not know about are set by its own init.
const webpABI = 0x020f

// webpConfig mirrors struct WebPConfig; rest leaves room for fields newer
// libwebp versions append (qmin, qmax, ...), which WebPConfigInitInternal
// fills in.
type webpConfig struct {
	lossless                                       int32
	quality                                        float32
	method, imageHint, targetSize                  int32
	targetPSNR                                     float32
	segments, snsStrength                          int32
	filterStrength, filterSharpness, filterType    int32
	autofilter, alphaCompression, alphaFiltering   int32
	alphaQuality, pass, showCompressed, preprocess int32
	partitions, partitionLimit, emulateJPEGSize    int32
	threadLevel, lowMemory, nearLossless, exact    int32
	useDeltaPalette, useSharpYUV                   int32
	rest                                           [32]int32
}

// webpPicture mirrors struct WebPPicture on 64-bit platforms (256 bytes;
// webp_dl_test.go checks the offsets used). Pointers libwebp allocates are
// kept as uintptr: they are C memory.
type webpPicture struct {
	useARGB, colorspace int32
	width, height       int32
	y, u, v             uintptr
	yStride, uvStride   int32
	a                   uintptr
	aStride             int32
	pad1                [2]uint32
	argb                uintptr
	argbStride          int32
	pad2                [3]uint32
	writer              uintptr
	customPtr           uintptr
	extraInfoType       int32
	extraInfo           uintptr
	stats               uintptr
	errorCode           int32
	progressHook        uintptr
	userData            uintptr
	pad3                [3]uint32
	pad4, pad5          uintptr
	pad6                [8]uint32
	memory, memoryARGB  uintptr
	pad7                [2]uintptr
}

// webpMemoryWriter mirrors struct WebPMemoryWriter; mem is malloc'd by
// libwebp and reused from tile to tile.
type webpMemoryWriter struct {
	mem           *byte
	size, maxSize uintptr
	pad           [2]uint32
}

type webpLib struct {
	version     int
	configInit  func(cfg unsafe.Pointer, preset int32, quality float32, abi int32) int32
	pictureInit func(pic unsafe.Pointer, abi int32) int32
	importBGRX  func(pic unsafe.Pointer, bgrx unsafe.Pointer, stride int32) int32
	encode      func(cfg, pic unsafe.Pointer) int32
	pictureFree func(pic unsafe.Pointer)
	writerClear func(w unsafe.Pointer)
	memoryWrite uintptr // WebPMemoryWrite, the writer callback libwebp calls itself
}

// webpEnv names a libwebp to load instead of the usual names, or "off"
// to never use WebP; for diagnosis and for the fallback tests.
const webpEnv = "MESHGO_LIBWEBP"

var (
	webpOnce sync.Once
	webpL    *webpLib
	webpErr  error
)

func webpCandidates() []string {
	if p := os.Getenv(webpEnv); p != "" {
		return []string{p}
	}
	if runtime.GOOS == "darwin" {
		return []string{"libwebp.7.dylib", "/opt/homebrew/lib/libwebp.7.dylib", "/usr/local/lib/libwebp.7.dylib"}
	}
	return []string{"libwebp.so.7", "libwebp.so"}
}

// loadWebP opens libwebp once per process. Every failure (no library, a
// library without the symbols, an ABI it refuses) is an error, never a
// panic: the caller then sends JPEG.
func loadWebP() (*webpLib, error) {
	webpOnce.Do(func() { webpL, webpErr = openWebP(webpCandidates()) })
	return webpL, webpErr
}

func openWebP(names []string) (*webpLib, error) {
	if len(names) == 1 && names[0] == "off" {
		return nil, fmt.Errorf("libwebp: disabled by %s=off", webpEnv)
	}
	var h uintptr
	var errs []error
	for _, n := range names {
		var err error
		if h, err = purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if h == 0 {
		return nil, fmt.Errorf("libwebp not loaded: %w", errors.Join(errs...))
	}
	l := &webpLib{}
	sym := func(name string) (uintptr, error) {
		p, err := purego.Dlsym(h, name)
		if err != nil || p == 0 {
			return 0, fmt.Errorf("libwebp: no %s: %w", name, err)
		}
		return p, nil
	}
	var ver func() int32
	for _, f := range []struct {
		name string
		fn   any
	}{
		{"WebPGetEncoderVersion", &ver},
		{"WebPConfigInitInternal", &l.configInit},
		{"WebPPictureInitInternal", &l.pictureInit},
		{"WebPPictureImportBGRX", &l.importBGRX},
		{"WebPEncode", &l.encode},
		{"WebPPictureFree", &l.pictureFree},
		{"WebPMemoryWriterClear", &l.writerClear},
	} {
		p, err := sym(f.name)
		if err != nil {
			purego.Dlclose(h)
			return nil, err
		}
		purego.RegisterFunc(f.fn, p)
	}
	p, err := sym("WebPMemoryWrite")
	if err != nil {
		purego.Dlclose(h)
		return nil, err
	}
	l.memoryWrite = p
	l.version = int(ver())
	if l.version>>16 < 1 {
		purego.Dlclose(h)
		return nil, fmt.Errorf("libwebp %s is older than 1.0", webpVersionString(l.version))
	}
	var cfg webpConfig
	if l.configInit(unsafe.Pointer(&cfg), 0, 75, webpABI) == 0 {
		purego.Dlclose(h)
		return nil, fmt.Errorf("libwebp %s refuses encoder ABI %#x", webpVersionString(l.version), webpABI)
	}
	return l, nil
}

func webpVersionString(v int) string { return fmt.Sprintf("%d.%d.%d", v>>16, v>>8&0xff, v&0xff) }

// webpState is what one encoder hands libwebp: pinned for the encoder's
// life, because the picture holds the writer's address.
type webpState struct {
	cfg webpConfig
	pic webpPicture
	wr  webpMemoryWriter
}

// webpEncoder encodes tiles as lossy (VP8) or lossless (VP8L) WebP.
type webpEncoder struct {
	lib      *webpLib
	lossless bool
	method   int32 // libwebp's method: 0 fastest … 6 smallest
	effort   int   // lossless only: the quality field, 0 fastest … 100 smallest
	st       *webpState
	pin      runtime.Pinner
}

// newWebPEncoder returns a WebP encoder, or an error when libwebp cannot
// be used on this machine.
func newWebPEncoder(lossless bool) (jpegEncoder, error) {
	l, err := loadWebP()
	if err != nil {
		return nil, err
	}
	e := &webpEncoder{lib: l, lossless: lossless, method: webpLossyMethod, st: &webpState{}}
	if lossless {
		e.method, e.effort = webpLosslessMethod, webpLosslessEffort
	}
	e.pin.Pin(e.st)
	return e, nil
}

// webpSpeed is the method (0 fastest … 6 best) for lossy tiles and the
// effort for lossless ones: a frame timer of 20-100 ms leaves no room for
// more (measured in BenchmarkTileFormats).
const (
	webpLossyMethod    = 0
	webpLosslessMethod = 1
	webpLosslessEffort = 0
)

func (e *webpEncoder) encode(dst []byte, f frame, quality int) ([]byte, error) {
	if f.w <= 0 || f.h <= 0 || f.w > 16383 || f.h > 16383 || len(f.pix) < (f.h-1)*f.stride+f.w*4 {
		return dst, fmt.Errorf("webp: bad frame %dx%d stride %d len %d", f.w, f.h, f.stride, len(f.pix))
	}
	st := e.st
	q := float32(min(max(quality, 0), 100))
	if e.lossless {
		q = float32(e.effort)
	}
	if e.lib.configInit(unsafe.Pointer(&st.cfg), 0, q, webpABI) == 0 {
		return dst, errors.New("webp: config init failed")
	}
	if e.lossless {
		st.cfg.lossless = 1
		st.cfg.method = e.method
	} else {
		st.cfg.method = e.method
		st.cfg.segments = 1 // segment analysis costs more than it saves on screen tiles
		st.cfg.pass = 1
	}
	if e.lib.pictureInit(unsafe.Pointer(&st.pic), webpABI) == 0 {
		return dst, errors.New("webp: picture init failed")
	}
	defer e.lib.pictureFree(unsafe.Pointer(&st.pic))
	st.pic.width, st.pic.height = int32(f.w), int32(f.h)
	if e.lossless {
		st.pic.useARGB = 1
	}
	st.pic.writer = e.lib.memoryWrite
	st.pic.customPtr = uintptr(unsafe.Pointer(&st.wr))
	st.wr.size = 0 // keep mem and maxSize: the buffer is reused
	if e.lib.importBGRX(unsafe.Pointer(&st.pic), unsafe.Pointer(&f.pix[0]), int32(f.stride)) == 0 {
		return dst, fmt.Errorf("webp: import failed (error %d)", st.pic.errorCode)
	}
	if e.lib.encode(unsafe.Pointer(&st.cfg), unsafe.Pointer(&st.pic)) == 0 {
		return dst, fmt.Errorf("webp: encode failed (error %d)", st.pic.errorCode)
	}
	if st.wr.mem == nil || st.wr.size == 0 || st.wr.size > math.MaxInt32 {
		return dst, errors.New("webp: encoder wrote nothing")
	}
	return append(dst, unsafe.Slice(st.wr.mem, int(st.wr.size))...), nil
}

func (e *webpEncoder) close() {
	if e.st == nil {
		return
	}
	e.lib.writerClear(unsafe.Pointer(&e.st.wr))
	e.pin.Unpin()
	e.st = nil
}

// webpVersion is the loaded libwebp's version, or "" when none can be used.
func webpVersion() string {
	l, err := loadWebP()
	if err != nil {
		return ""
	}
	return webpVersionString(l.version)
}
