package core

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/meshgo/meshagent/proto/handshake"
)

// Files the agent keeps in its data directory besides its identity.
const (
	stateFile = "meshagent.state" // trusted TLS hashes (JSON)
	coreFile  = "meshagent.core"  // the last core pushed with command 10
	TagFile   = "meshagent.tag"   // optional agent tag (control.md §5.5)
)

// state is the agent's small persistent memory: which TLS certificate each
// server proved itself with (the skip path) and the pushed core.
type state struct {
	dir string
	mu  sync.Mutex
	// Trusted maps a server URL to the hex SHA-384 of the TLS certificate
	// whose server signature last verified (C agent: ServerTlsCertHash).
	Trusted map[string]string `json:"trusted"`
}

func loadState(dir string) (*state, error) {
	s := &state{dir: dir, Trusted: map[string]string{}}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read agent state: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		// Only a cache: losing it costs one full handshake, nothing more.
		return &state{dir: dir, Trusted: map[string]string{}}, nil
	}
	if s.Trusted == nil {
		s.Trusted = map[string]string{}
	}
	return s, nil
}

func (s *state) trusted(url string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := hex.DecodeString(s.Trusted[url])
	if err != nil || len(b) != handshake.HashLen {
		return nil
	}
	return b
}

func (s *state) setTrusted(url string, h []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Trusted[url] = hex.EncodeToString(h)
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode agent state: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.dir, stateFile), data, 0o600)
}

// core returns the stored core payload and its hash.
func (s *state) core() (payload []byte, hash [handshake.HashLen]byte, ok bool) {
	payload, err := os.ReadFile(filepath.Join(s.dir, coreFile))
	if err != nil || len(payload) < 4 {
		return nil, hash, false
	}
	return payload, sha512.Sum384(payload), true
}

func (s *state) setCore(payload []byte) error {
	return writeFileAtomic(filepath.Join(s.dir, coreFile), payload, 0o600)
}

func (s *state) clearCore() error {
	err := os.Remove(filepath.Join(s.dir, coreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *state) tag() []byte {
	b, err := os.ReadFile(filepath.Join(s.dir, TagFile))
	if err != nil {
		return nil
	}
	if len(b) > 4096 {
		b = b[:4096]
	}
	return bytes.TrimRight(b, "\x00")
}
