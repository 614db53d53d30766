package desktop

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/kvm"
)

// compressionCmd is the browser's COMPRESSION: image type, quality,
// scaling and frame timer (agent-desktop-0.0.2.js SendCompressionLevel).
func compressionCmd(imageType, quality byte, scaling, frameMS uint16) []byte {
	return []byte{0, kvm.Compression, 0, 10, imageType, quality, byte(scaling >> 8), byte(scaling), byte(frameMS >> 8), byte(frameMS)}
}

// flatScene paints a UI-like screen of flat areas: lossless WebP territory.
func flatScene(t *testing.T, x *xvfb) {
	c := x.conn(t)
	setRoot(t, c, 0x3366cc)
	fillRect(t, c, 200, 150, 400, 300, 0xe03c28)
	fillRect(t, c, 0, 0, 64, 48, 0xf0dc32)
}

func checkFlatScene(v *viewer) bool {
	return v.near(900, 200, 0x3366cc) && v.near(400, 300, 0xe03c28) && v.near(30, 20, 0xf0dc32) && v.near(1279, 799, 0x3366cc)
}

// TestServeWebPWhenAsked: a viewer asking for WebP (type 4, the web UI's
// default) gets lossless WebP tiles for flat content when libwebp loads
// (cgo builds with libwebp7), JPEG only otherwise; either way the canvas
// shows the screen. A viewer asking for JPEG gets JPEG only.
func TestServeWebPWhenAsked(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	flatScene(t, x)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		imageType byte
		wantWebP  bool
	}{
		{"webp", 4, webpVersion() != ""},
		{"jpeg", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := serve(t, ctx, x, fullRights).v
			v.until(ctx, "screen size", func() bool { return v.canvas != nil })
			v.send(ctx, compressionCmd(tc.imageType, 40, 1024, 50))
			if tc.wantWebP {
				// The change of type resets the tiler: a full frame in the new format follows.
				v.until(ctx, "WebP tiles showing the screen", func() bool { return v.webpTiles > 0 && checkFlatScene(v) })
			} else {
				v.until(ctx, "the screen", func() bool { return checkFlatScene(v) })
			}
			tiles, bytes := v.tiles, v.bytes
			v.send(ctx, kvm.Encode(kvm.Refresh))
			v.until(ctx, "a full frame after REFRESH", func() bool { return v.tiles-tiles >= 4 && checkFlatScene(v) })
			t.Logf("type %d: a refresh took %d tiles, %d bytes", tc.imageType, v.tiles-tiles, v.bytes-bytes)
			if got := v.webpTiles > 0; got != tc.wantWebP {
				t.Errorf("type %d: %d of %d tiles WebP (libwebp %q), want WebP: %v", tc.imageType, v.webpTiles, v.tiles, webpVersion(), tc.wantWebP)
			}
			t.Logf("type %d: %d of %d tiles WebP, %d bytes, libwebp %q", tc.imageType, v.webpTiles, v.tiles, v.bytes, webpVersion())
		})
	}
}

// TestFirstFrameOnce: a viewer that answers SCREEN with its settings, as
// MeshCentral's does, gets the first full frame once, in the type it asked
// for; before, a JPEG frame at the default quality went out first and the
// same screen again once COMPRESSION arrived. The tiles' pixels over the
// first frame and one second after it add up to one screen.
func TestFirstFrameOnce(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	flatScene(t, x)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		imageType byte
	}{{"webp", 4}, {"jpeg", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			v := serve(t, ctx, x, fullRights).v
			v.until(ctx, "screen size", func() bool { return v.canvas != nil })
			v.send(ctx, compressionCmd(tc.imageType, 40, 1024, 50))
			v.until(ctx, "the screen", func() bool { return checkFlatScene(v) })
			// Anything sent again would follow within a frame interval
			// (50 ms); read on for a second.
			quiet, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			for {
				if _, err := v.next(quiet); err != nil {
					break
				}
			}
			frames := float64(v.area) / float64(v.w*v.h)
			t.Logf("type %d: %d tiles, %d bytes, %.2f screens of pixels, %d WebP", tc.imageType, v.tiles, v.bytes, frames, v.webpTiles)
			if v.area != v.w*v.h {
				t.Errorf("type %d: tiles cover %.2f screens in the first frame and the second after it, want exactly 1", tc.imageType, frames)
			}
			if wantWebP := tc.imageType == 4 && webpVersion() != ""; (v.webpTiles > 0) != wantWebP {
				t.Errorf("type %d: %d of %d tiles WebP (libwebp %q)", tc.imageType, v.webpTiles, v.tiles, webpVersion())
			}
		})
	}
}

type failingEncoder struct{}

func (failingEncoder) encode(dst []byte, _ frame, _ int) ([]byte, error) {
	return dst, errors.New("broken libwebp")
}
func (failingEncoder) close() {}

// TestServeWebPFallsBack: a libwebp that cannot be made into an encoder,
// or whose encoder fails, turns WebP off for the session: every tile is
// JPEG and the screen is right.
func TestServeWebPFallsBack(t *testing.T) {
	x := startXvfb(t, 1280, 800)
	flatScene(t, x)
	ctx := context.Background()
	old := newLosslessEncoder
	t.Cleanup(func() { newLosslessEncoder = old })
	for _, tc := range []struct {
		name string
		mk   func() (jpegEncoder, error)
	}{
		{"missing", func() (jpegEncoder, error) { return nil, errors.New("libwebp not loaded") }},
		{"broken", func() (jpegEncoder, error) { return failingEncoder{}, nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newLosslessEncoder = tc.mk
			v := serve(t, ctx, x, fullRights).v
			v.until(ctx, "screen size", func() bool { return v.canvas != nil })
			v.send(ctx, compressionCmd(4, 40, 1024, 50))
			v.until(ctx, "the screen", func() bool { return checkFlatScene(v) })
			tiles := v.tiles
			v.send(ctx, kvm.Encode(kvm.Refresh))
			v.until(ctx, "a full frame after REFRESH", func() bool { return v.tiles-tiles >= 4 && checkFlatScene(v) })
			if v.webpTiles != 0 {
				t.Errorf("%d WebP tiles from a failing libwebp", v.webpTiles)
			}
		})
	}
}
