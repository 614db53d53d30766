package session

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// readMessage returns every message whole, whatever its size and however
// the reader splits it, and a recycled buffer never changes a frame that
// was not recycled.
func TestReadMessageSizes(t *testing.T) {
	for _, n := range []int{0, 1, 100, scratchSize/2 - 1, scratchSize / 2, scratchSize - 1, scratchSize, scratchSize + 1, 3 * scratchSize, 1 << 20} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		got, err := readMessage(bytes.NewReader(msg))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
		got2, err := readMessage(iotest.OneByteReader(bytes.NewReader(msg)))
		if err != nil || !bytes.Equal(got2, msg) {
			t.Fatalf("one byte at a time, %d bytes: got %d bytes, %v", n, len(got2), err)
		}
		kept := bytes.Clone(got)
		Recycle(got2)
		// Reuse whatever was recycled; the kept frame must not change.
		other := bytes.Repeat([]byte{0xAA}, scratchSize)
		if _, err := readMessage(bytes.NewReader(other)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, kept) {
			t.Fatalf("%d bytes: a frame that was not recycled changed", n)
		}
	}
}

// A read error is returned, not a partial message.
func TestReadMessageError(t *testing.T) {
	if _, err := readMessage(iotest.ErrReader(iotest.ErrTimeout)); err == nil {
		t.Fatal("want the reader's error")
	}
}

// Recycle ignores buffers that did not come from the pool.
func TestRecycleForeign(t *testing.T) {
	Recycle(nil)
	Recycle(make([]byte, 10))
	Recycle(make([]byte, 10, scratchSize+1))
}

// Reading a full chunk the caller recycles allocates no buffer once the
// pool is warm, the upload path's steady state: only the one-byte end probe
// and the pooled slice header (a few bytes per 64 KiB).
func TestReadMessageRecycledAllocs(t *testing.T) {
	msg := make([]byte, scratchSize)
	r := bytes.NewReader(msg)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(msg)
		b, err := readMessage(r)
		if err != nil || len(b) != scratchSize {
			t.Fatal(len(b), err)
		}
		Recycle(b)
	})
	if allocs > 2 {
		t.Errorf("%.1f allocations per recycled 64 KiB read, want at most 2", allocs)
	}
}

// A message of exactly one pooled buffer is returned in it, not grown.
func TestReadMessageExactChunkNotGrown(t *testing.T) {
	msg := make([]byte, scratchSize)
	for _, r := range []io.Reader{bytes.NewReader(msg), iotest.HalfReader(bytes.NewReader(msg)), iotest.DataErrReader(bytes.NewReader(msg))} {
		b, err := readMessage(r)
		if err != nil || len(b) != scratchSize || cap(b) != scratchSize {
			t.Fatalf("len %d cap %d err %v, want one pooled buffer", len(b), cap(b), err)
		}
		Recycle(b)
	}
}
