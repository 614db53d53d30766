package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// The service's log file in its data directory. Rotation is by size only
// with a fixed number of numbered backups: an agent on a small device must
// never fill its disk, and the platform log (journal, Event Log, unified
// log) is the place for history; the file is for administrators who look in
// the install directory, as they do with the C agent.
const (
	LogFileName = "meshagent.log"
	LogBackups  = 3
	LogMaxSize  = 10 << 20
)

// logFileNames returns the file name and its backups' names.
func logFileNames(name string, backups int) []string {
	names := []string{name}
	for i := 1; i <= backups; i++ {
		names = append(names, name+"."+strconv.Itoa(i))
	}
	return names
}

// RotatingFile is an io.Writer appending to a file that is rotated when a
// write would take it past MaxSize: name.N-1 becomes name.N (the oldest is
// dropped), name becomes name.1, and a new name is started. It is written
// here rather than taken from a library because this is all that is needed
// (no time-based rotation, compression or background goroutine), it is
// short, and it keeps the agent free of another dependency.
type RotatingFile struct {
	path    string
	maxSize int64
	backups int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotatingFile opens (creating, owner-only) path for appending.
// maxSize <= 0 means LogMaxSize; backups < 0 means LogBackups.
func OpenRotatingFile(path string, maxSize int64, backups int) (*RotatingFile, error) {
	if maxSize <= 0 {
		maxSize = LogMaxSize
	}
	if backups < 0 {
		backups = LogBackups
	}
	r := &RotatingFile{path: path, maxSize: maxSize, backups: backups}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first if p would not fit. A single write larger
// than MaxSize is still written whole, to a fresh file.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, errors.New("log file closed")
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	r.f = nil
	if r.backups == 0 {
		os.Remove(r.path)
	} else {
		names := logFileNames(r.path, r.backups)
		for i := len(names) - 1; i > 0; i-- {
			// The oldest is overwritten by the rename (dropped).
			if err := os.Rename(names[i-1], names[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate log: %w", err)
			}
		}
	}
	return r.open()
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
