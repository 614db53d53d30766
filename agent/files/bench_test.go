package files

import (
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 50 << 20

// BenchmarkUploadWebSocket measures a web-UI style upload (64 KiB chunks,
// 9 in flight, uploaddone, fsync and rename) over a loopback WebSocket.
func BenchmarkUploadWebSocket(b *testing.B) {
	data := randomData(b, benchSize)
	dir := b.TempDir()
	c := startFiles(b, wsTransport, adminInfo())
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := uploadWebUI(c, dir, "bench.bin", data); r.M["action"] != "uploaddone" {
			b.Fatalf("upload: %s", r.Raw)
		}
	}
}

// BenchmarkDownloadWebSocket measures downloads over a loopback WebSocket
// with the default window (8 blocks, what meshctrl and the web UI get) and
// a larger client-requested one.
func BenchmarkDownloadWebSocket(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "bench.bin")
	if err := os.WriteFile(p, randomData(b, benchSize), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		ack  int
	}{{"window8", 0}, {"window1", 1}, {"window32", 32}} {
		b.Run(bc.name, func(b *testing.B) {
			c := startFiles(b, wsTransport, adminInfo())
			b.SetBytes(benchSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n := downloadWindow(c, p, bc.ack); n != benchSize {
					b.Fatalf("got %d bytes", n)
				}
			}
		})
	}
}

// downloadWindow is a meshctrl-style download that may ask for a window.
func downloadWindow(c *client, path string, ack int) int {
	c.cmd(false, map[string]any{"action": "download", "sub": "start", "id": path, "path": path})
	c.nextJSON()
	start := map[string]any{"action": "download", "sub": "startack", "id": path}
	if ack > 0 {
		start["ack"] = ack
	}
	c.cmd(false, start)
	n := 0
	for {
		f := c.next()
		n += len(f.Data) - 4
		if f.Data[3]&1 != 0 {
			return n
		}
		c.cmd(false, clientAck(path))
	}
}
