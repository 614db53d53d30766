package core

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// meshPolicyGUID ends a binary that carries its .msh, as MeshCentral
// appends it to agent downloads (webserver.js, exe handler): the binary,
// the .msh text, its length as 4 bytes big-endian, then these 16 bytes.
// The C agent looks for it at start when no .msh file is beside it
// (agentcore.c checkForEmbeddedMSH) and writes it out as the .msh.
var meshPolicyGUID, _ = hex.DecodeString("B996015880544A19B7F7E9BE44914C19")

// MaxEmbeddedMSH bounds an embedded .msh; real ones are a few hundred bytes.
const MaxEmbeddedMSH = 64 << 10

// ErrNoEmbeddedMSH: the binary carries no .msh.
var ErrNoEmbeddedMSH = errors.New("no embedded .msh")

// EmbeddedMSH returns the .msh appended to a binary of the given size, or
// ErrNoEmbeddedMSH.
func EmbeddedMSH(r io.ReaderAt, size int64) ([]byte, error) {
	const tail = 4 + 16
	if size < tail {
		return nil, ErrNoEmbeddedMSH
	}
	var t [tail]byte
	if _, err := r.ReadAt(t[:], size-tail); err != nil {
		return nil, fmt.Errorf("read trailer: %w", err)
	}
	if !bytes.Equal(t[4:], meshPolicyGUID) {
		return nil, ErrNoEmbeddedMSH
	}
	n := int64(binary.BigEndian.Uint32(t[:4]))
	if n == 0 || n > MaxEmbeddedMSH || n > size-tail {
		return nil, fmt.Errorf("embedded .msh: bad length %d", n)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, size-tail-n); err != nil {
		return nil, fmt.Errorf("read embedded .msh: %w", err)
	}
	return b, nil
}

// ExtractEmbeddedMSH writes the .msh appended to the executable exe to
// mshPath when mshPath does not exist yet, as the C agent does on start.
// It reports whether it wrote one; a binary without one is not an error.
func ExtractEmbeddedMSH(exe, mshPath string) (bool, error) {
	if _, err := os.Stat(mshPath); err == nil || !errors.Is(err, os.ErrNotExist) {
		return false, nil // a settings file exists (or cannot be checked): it wins
	}
	f, err := os.Open(exe)
	if err != nil {
		return false, fmt.Errorf("open executable: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat executable: %w", err)
	}
	b, err := EmbeddedMSH(f, fi.Size())
	if errors.Is(err, ErrNoEmbeddedMSH) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := ParseMSH(b); err != nil {
		return false, fmt.Errorf("embedded .msh: %w", err)
	}
	// O_EXCL: never overwrite a settings file that appeared meanwhile.
	out, err := os.OpenFile(mshPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("write %s: %w", mshPath, err)
	}
	// Owner-only before any byte is in it: on Windows the mode above means
	// nothing and the file would inherit its directory's DACL.
	if err := restrictPath(mshPath, false); err != nil {
		out.Close()
		os.Remove(mshPath)
		return false, fmt.Errorf("write %s: %w", mshPath, err)
	}
	if _, err := out.Write(b); err != nil {
		out.Close()
		os.Remove(mshPath)
		return false, fmt.Errorf("write %s: %w", mshPath, err)
	}
	if err := out.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", mshPath, err)
	}
	return true, nil
}
