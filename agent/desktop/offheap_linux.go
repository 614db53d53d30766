package desktop

import "golang.org/x/sys/unix"

// pixBuf is a large, long-lived pixel buffer kept outside the Go heap
// (anonymous mmap), like the X path's MIT-SHM segment. A Wayland screen
// holds two or three full-screen buffers (8 MB each at 1920x1080); on the
// heap they would count against the agent's memory limit, and the
// collector would then run over and over on a static screen. Falls back
// to the heap when mmap fails.
type pixBuf struct {
	b      []byte
	mapped bool
}

// grow returns a buffer of at least size bytes, replacing a smaller one.
func (p *pixBuf) grow(size int) []byte {
	if cap(p.b) >= size {
		return p.b[:size]
	}
	p.free()
	if b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
		p.b, p.mapped = b, true
	} else {
		p.b, p.mapped = make([]byte, size), false
	}
	return p.b
}

// free releases the buffer; slices of it must no longer be used.
func (p *pixBuf) free() {
	if p.mapped {
		unix.Munmap(p.b[:cap(p.b)])
	}
	p.b, p.mapped = nil, false
}
