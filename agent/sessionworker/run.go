package sessionworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// ReqRun runs a command in the worker: as the worker's user, in its
// session, on its desktop. It is how the service runs runcommands'
// runAsUser on Windows, where a process started from session 0 with only
// the user's token would inherit the service's window station.
const ReqRun = "run"

// MaxRunOutput bounds each of a run's stdout and stderr.
const MaxRunOutput = 4 << 20

// RunRequest is a command for ReqRun.
type RunRequest struct {
	File    string        `json:"file"`
	Args    []string      `json:"args,omitempty"`
	Stdin   string        `json:"stdin,omitempty"`
	Dir     string        `json:"dir,omitempty"`
	Timeout time.Duration `json:"timeout"`
}

// RunResult is what a ReqRun command did.
type RunResult struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Code      int    `json:"code"`
	TimedOut  bool   `json:"timedOut,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Run runs r in the worker.
func (c *Client) Run(ctx context.Context, r RunRequest) (RunResult, error) {
	var res RunResult
	err := c.Call(ctx, ReqRun, r, &res)
	return res, err
}

type capped struct {
	bytes.Buffer
	trunc bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := MaxRunOutput - c.Len(); len(p) > room {
		c.trunc = true
		c.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// runCommand is the worker's ReqRun handler.
func runCommand(ctx context.Context, body []byte) (any, error) {
	var r RunRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if r.File == "" {
		return nil, errors.New("run: no command")
	}
	if r.Timeout <= 0 || r.Timeout > time.Hour {
		r.Timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.File, r.Args...)
	cmd.Dir = r.Dir
	if r.Stdin != "" {
		cmd.Stdin = bytes.NewReader([]byte(r.Stdin))
	}
	var out, errb capped
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = time.Second
	hideWindow(cmd)
	err := cmd.Run()
	res := RunResult{Stdout: out.String(), Stderr: errb.String(), Truncated: out.trunc || errb.trunc}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.Code, res.TimedOut = -1, true
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("run %s: %w", r.File, err)
	}
	return res, nil
}
