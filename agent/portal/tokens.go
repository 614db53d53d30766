package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/meshgo/meshagent/internal/atomicfile"
)

// Tokens keeps the portal's restore tokens in the agent's state, one file
// per user (portal-UID.json) in Dir, owner-only (0600 in a 0700 dir): a
// token stands for the user's grant of remote control, so another local
// user must not be able to read or replace it. A token is keyed by what
// was asked for (input or view only), because the portal keeps a grant of
// each kind apart.
type Tokens struct {
	Dir string
}

type tokenFile struct {
	Tokens map[string]string `json:"tokens"`
}

func (t Tokens) path(uid int) string {
	return filepath.Join(t.Dir, "portal-"+strconv.Itoa(uid)+".json")
}

// Load returns the stored token for uid and kind, "" when none.
func (t Tokens) Load(uid int, kind string) (string, error) {
	if t.Dir == "" {
		return "", nil
	}
	f, err := t.read(uid)
	if err != nil {
		return "", err
	}
	return f.Tokens[kind], nil
}

func (t Tokens) read(uid int) (tokenFile, error) {
	var f tokenFile
	b, err := os.ReadFile(t.path(uid))
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("portal tokens: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return tokenFile{}, fmt.Errorf("portal tokens %s: %w", t.path(uid), err)
	}
	return f, nil
}

// Save stores token for uid and kind ("" removes it), replacing the file
// atomically.
func (t Tokens) Save(uid int, kind, token string) error {
	if t.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(t.Dir, 0o700); err != nil {
		return fmt.Errorf("portal tokens: %w", err)
	}
	f, err := t.read(uid)
	if err != nil {
		// An unreadable or corrupt file is replaced: the worst case is one
		// more dialog for the user.
		f = tokenFile{}
	}
	if f.Tokens == nil {
		f.Tokens = map[string]string{}
	}
	if token == "" {
		delete(f.Tokens, kind)
	} else {
		f.Tokens[kind] = token
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(t.path(uid), b, 0o600); err != nil {
		return fmt.Errorf("portal tokens: %w", err)
	}
	return nil
}
