package script

import (
	"fmt"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// psInfo is the `psinfo` reply's value for the device page's Process
// Details dialog (ui:2797; meshcore.js mc:1274 lists the fields): what
// the OS tells about one process. Fields it cannot read are left out.
func psInfo(pid int32) (map[string]any, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("invalid pid %d", pid)
	}
	p, err := process.NewProcess(pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	out := map[string]any{}
	if s, err := p.Name(); err == nil {
		out["processName"] = s
	}
	if s, err := p.Cmdline(); err == nil && s != "" {
		out["cmd"] = s
	} else if s, err := p.Exe(); err == nil {
		out["cmd"] = s
	}
	if s, err := p.Username(); err == nil {
		// Windows names come as DOMAIN\user; the dialog shows both.
		if d, u, ok := strings.Cut(s, `\`); ok {
			out["processDomain"], out["processUser"] = d, u
		} else {
			out["processUser"] = s
		}
	}
	if ms, err := p.CreateTime(); err == nil {
		out["startTime"] = time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if m, err := p.MemoryInfo(); err == nil {
		out["workingSet"] = float64(m.RSS)
		out["virtualMemorySize"] = float64(m.VMS)
	}
	if t, err := p.Times(); err == nil {
		out["userProcessorTime"] = t.User
		out["privilegedProcessorTime"] = t.System
		out["totalProcessorTime"] = t.User + t.System
	}
	if n, err := p.NumFDs(); err == nil {
		out["handleCount"] = n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("process %d: nothing readable", pid)
	}
	return out, nil
}
