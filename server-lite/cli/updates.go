package cli

// Agent self-update commands (server-lite/updates through control.ashx's
// agentupdate, agentupdates and agentupdatecancel).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
)

func updateCommands() []command {
	return []command{
		{name: "update-agents", args: "(--id NODE | --group NAME | --all) [--percent N] [--trial S] [--dir DIR] [--wait]",
			help: "update our agent on devices from the server's release builds, a stage at a time", run: runUpdateAgents,
			flags: func(fs *flag.FlagSet) {
				fs.String("id", "", "device id (with or without node//)")
				fs.String("group", "", "every device of this group (name) you have full rights on")
				fs.Bool("all", false, "every device you have full rights on")
				fs.Int("percent", 100, "devices per stage, in percent; the next stage starts when the previous one is online on the new version")
				fs.Int("trial", 0, "seconds a new binary has to come online before the agent restores the previous one (default 120)")
				fs.String("dir", "", "builds directory on the server (default: its --agents); site administrators only")
				fs.Bool("wait", false, "wait until the rollout is done or halted, printing each device's state")
			}},
		{name: "updates", help: "agent update rollouts of this server run, with each device's state", run: runUpdates},
		{name: "update-cancel", args: "ROLLOUT", help: "cancel a running agent update rollout", run: runUpdateCancel},
	}
}

type rollout struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Msg      string `json:"msg"`
	Stage    int    `json:"stage"`
	Stages   int    `json:"stages"`
	Binaries map[string]struct {
		Version string `json:"version"`
		SHA384  string `json:"sha384"`
	} `json:"binaries"`
	Devices []struct {
		NodeID string `json:"nodeid"`
		Stage  int    `json:"stage"`
		State  string `json:"state"`
		Msg    string `json:"msg"`
	} `json:"devices"`
}

func decodeRollouts(v any) ([]rollout, error) {
	b, _ := json.Marshal(v)
	var out []rollout
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("unexpected rollouts answer: %w", err)
	}
	return out, nil
}

func runUpdateAgents(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	id, group, all := flagStr(fs, "id"), flagStr(fs, "group"), flagBool(fs, "all")
	n := 0
	for _, set := range []bool{id != "", group != "", all} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usageError("give exactly one of --id, --group or --all")
	}
	percent, _ := strconv.Atoi(flagStr(fs, "percent"))
	trial, _ := strconv.Atoi(flagStr(fs, "trial"))
	outer := ctx
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	req := map[string]any{"action": "agentupdate", "percent": percent, "trial": trial}
	if d := flagStr(fs, "dir"); d != "" {
		req["dir"] = d
	}
	switch {
	case id != "":
		req["nodeids"] = []string{handshake.NodeIDPrefix + id[strings.LastIndexByte(id, '/')+1:]}
	case all:
		req["all"] = true
	default:
		mr, err := c.call(ctx, map[string]any{"action": "meshes"})
		if err != nil {
			return err
		}
		ms, _ := mr["meshes"].([]any)
		for _, m := range ms {
			if g, ok := m.(map[string]any); ok && str(g, "name") == group {
				req["meshid"] = str(g, "_id")
			}
		}
		if req["meshid"] == nil {
			return fmt.Errorf("no device group %q visible to you", group)
		}
	}
	m, err := c.call(ctx, req)
	if err != nil {
		return err
	}
	if err := resultErr(m); err != nil {
		return err
	}
	ros, err := decodeRollouts([]any{m["rollout"]})
	if err != nil || len(ros) != 1 {
		return fmt.Errorf("unexpected answer: %v", m)
	}
	ro := ros[0]
	if o.json && !flagBool(fs, "wait") {
		return o.printJSON(m["rollout"])
	}
	for p, b := range ro.Binaries {
		o.line("build", p, b.Version, b.SHA384[:16])
	}
	o.line("rollout", ro.ID, fmt.Sprintf("%d devices", len(ro.Devices)), fmt.Sprintf("%d stages", ro.Stages))
	if !flagBool(fs, "wait") {
		return nil
	}
	cancel() // --timeout bounds each request while waiting, not the rollout
	seen := map[string]string{}
	for {
		cctx, ccancel := context.WithTimeout(outer, o.timeout)
		m, err := c.call(cctx, map[string]any{"action": "agentupdates"})
		ccancel()
		if err != nil {
			return err
		}
		if err := resultErr(m); err != nil {
			return err
		}
		all, err := decodeRollouts(m["rollouts"])
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.ID != ro.ID {
				continue
			}
			for _, d := range r.Devices {
				k := d.State + "\x00" + d.Msg
				if seen[d.NodeID] != k {
					seen[d.NodeID] = k
					o.line(d.NodeID, "stage "+strconv.Itoa(d.Stage+1), d.State, d.Msg)
				}
			}
			if r.State != "running" {
				o.line("rollout", r.ID, r.State, r.Msg)
				if r.State != "done" {
					return fmt.Errorf("rollout %s %s: %s", r.ID, r.State, r.Msg)
				}
				return nil
			}
		}
		select {
		case <-outer.Done():
			return outer.Err()
		case <-time.After(time.Second):
		}
	}
}

func runUpdates(ctx context.Context, o *opts, _ *flag.FlagSet, _ []string) error {
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	m, err := c.call(ctx, map[string]any{"action": "agentupdates"})
	if err != nil {
		return err
	}
	if err := resultErr(m); err != nil {
		return err
	}
	if o.json {
		return o.printJSON(m["rollouts"])
	}
	ros, err := decodeRollouts(m["rollouts"])
	if err != nil {
		return err
	}
	for _, r := range ros {
		o.line("rollout", r.ID, r.State, fmt.Sprintf("stage %d of %d", r.Stage+1, r.Stages), r.Msg)
		for _, d := range r.Devices {
			o.line(d.NodeID, "stage "+strconv.Itoa(d.Stage+1), d.State, d.Msg)
		}
	}
	return nil
}

func runUpdateCancel(ctx context.Context, o *opts, _ *flag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageError("name the rollout")
	}
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	m, err := c.call(ctx, map[string]any{"action": "agentupdatecancel", "id": args[0]})
	if err != nil {
		return err
	}
	return resultErr(m)
}

// agentVersion is the version column of devices: our agent's version
// string (from server-lite's update query), else the C agent's build
// number from the handshake, else "-".
func agentVersion(agent map[string]any) string {
	if v := str(agent, "version"); v != "" {
		return v
	}
	if v, ok := agent["ver"].(float64); ok && v > 0 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return "-"
}
