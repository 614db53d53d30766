package update

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/meshgo/meshagent/proto/agentupdate"
)

// StateFile is the update's state in the data directory. It is the only
// thing the running agent, the new binary in trial and the watchdog share:
// each step is recorded in it (written to a temporary file and renamed)
// before the next begins.
const StateFile = "update-state.json"

// Trial is a State's State while a new binary has not yet come online.
const Trial = "trial"

// State is the record of the most recent update.
type State struct {
	ID       string `json:"id"`    // the server's rollout id
	State    string `json:"state"` // Trial or an agentupdate.State*
	Exe      string `json:"exe"`   // the binary being replaced
	Previous string `json:"previous"`
	From     Build  `json:"from"`
	To       Build  `json:"to"`
	// Deadline (unix seconds) is when the watchdog restores Previous
	// unless the new binary confirmed.
	Deadline int64 `json:"deadline"`
	Trial    int   `json:"trial"` // seconds
	// Watchdog is the watchdog's process id, written by the watchdog once
	// it found the service it will restore: the agent exits for the
	// restart only after it has seen this.
	Watchdog int    `json:"watchdog,omitempty"`
	Msg      string `json:"msg,omitempty"`
	Time     int64  `json:"time"` // of the last change
}

// Build names one binary.
type Build struct {
	Version string `json:"version"`
	SHA384  string `json:"sha384"`
}

// Last is the state as the server sees it in an info reply.
func (s *State) Last() *agentupdate.Last {
	if s == nil {
		return nil
	}
	return &agentupdate.Last{ID: s.ID, State: s.State, From: s.From.Version, To: s.To.Version, SHA384: s.To.SHA384, Msg: s.Msg, Time: s.Time}
}

// ReadState reads dir's state file; (nil, nil) when there is none.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("update state %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

// WriteState replaces dir's state file atomically.
func WriteState(dir string, s *State) error {
	s.Time = time.Now().Unix()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("update state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, StateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("update state: %w", err)
	}
	return nil
}

// FileSHA384 hashes a whole file.
func FileSHA384(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New384()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// PreviousPath is where the binary being replaced is kept during a trial.
func PreviousPath(exe string) string {
	if ext := filepath.Ext(exe); ext == ".exe" {
		return exe[:len(exe)-len(ext)] + ".previous.exe"
	}
	return exe + ".previous"
}

// tempPath is where a download of the binary with hash h is written:
// beside the binary (so the final rename stays on one file system),
// hidden, and not executable until it checked.
func tempPath(exe, h string) string {
	return filepath.Join(filepath.Dir(exe), "."+filepath.Base(exe)+".update-"+h[:16])
}
