// Package cli is server-lite's own admin command line, over the same
// control.ashx API meshctrl uses, for what meshctrl lacks or does
// awkwardly: pushing a script (core) to one device or all, showing which
// core each device runs, writing a group's .msh, following events, plus
// listing devices and running commands.
//
// Output is plain and scriptable: one record per line, tab-separated, no
// headers or decoration; --json prints JSON instead. Errors go to stderr
// and set a non-zero exit status.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// opts are the connection options shared by every subcommand.
type opts struct {
	url, user, pass, tlsHash string
	token                    string // second factor's code
	json                     bool
	timeout                  time.Duration
	stdout, stderr           io.Writer
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error
	flags            func(fs *flag.FlagSet)
}

var commands []command

func init() {
	commands = []command{
		{name: "devices", args: "[--group NAME]", help: "list devices: id, name, group, online, core, agent version", run: runDevices,
			flags: func(fs *flag.FlagSet) { fs.String("group", "", "only this device group (name)") }},
		{name: "groups", help: "list device groups: id, name", run: runGroups},
		{name: "run", args: "(--id NODE | --all) [--reply] COMMAND...", help: "run a shell command on one device or all", run: runRun,
			flags: func(fs *flag.FlagSet) {
				fs.String("id", "", "device id (with or without node//)")
				fs.Bool("all", false, "every online device you may run commands on")
				fs.Bool("reply", false, "wait for and print each device's output")
				fs.Bool("powershell", false, "Windows: run in PowerShell")
			}},
		{name: "push-script", args: "(--id NODE | --all) FILE.js", help: "install FILE.js as the agent core on one device or all online devices", run: runPush,
			flags: func(fs *flag.FlagSet) {
				fs.String("id", "", "device id (with or without node//)")
				fs.Bool("all", false, "every online device you have full rights on")
			}},
		{name: "cores", help: "which core each device runs: id, name, online, core name, core hash, pinned hash", run: runCores},
		{name: "msh", args: "(--group NAME | --id GROUPID) [-o FILE]", help: "write a device group's meshagent.msh", run: runMsh,
			flags: func(fs *flag.FlagSet) {
				fs.String("group", "", "device group name")
				fs.String("id", "", "device group id (with or without mesh//)")
				fs.String("o", "", "output file (default: stdout)")
			}},
		{name: "events", args: "[--id NODE] [--limit N] [--follow]", help: "list events, oldest first; --follow keeps printing new ones", run: runEvents,
			flags: func(fs *flag.FlagSet) {
				fs.String("id", "", "only events of this device")
				fs.Int("limit", 100, "how many past events")
				fs.Bool("follow", false, "keep printing live events until interrupted")
			}},
	}
	commands = append(commands, sessionCommands()...) // sessions.go
	commands = append(commands, updateCommands()...)  // updates.go
	commands = append(commands, notifyCommands()...)  // notify.go
	commands = append(commands, accountCommands()...) // accounts.go
}

// Main runs `server-lite <subcommand> args...` and returns the exit status.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: server-lite <command> [options]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.help)
	}
	fmt.Fprintln(w, `
common options (also from the environment):
  --url URL        server, e.g. wss://127.0.0.1:4443   ($SERVERLITE_URL)
  --user NAME      login user (default admin)           ($SERVERLITE_USER)
  --pass PASSWORD  login password                       ($SERVERLITE_PASS)
  --pass-file F    read the password from file F
  --token CODE     login code: a messaged one, or your authenticator app's ($SERVERLITE_TOKEN)
  --tlshash HEX    pin the server certificate's SHA-384 ($SERVERLITE_TLSHASH)
  --json           JSON output
Run "server-lite <command> -h" for a command's options.`)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "server-lite: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	o := &opts{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("server-lite "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", env("SERVERLITE_URL", "wss://127.0.0.1:4443"), "server URL")
	fs.StringVar(&o.user, "user", env("SERVERLITE_USER", "admin"), "login user")
	fs.StringVar(&o.pass, "pass", "", "login password (prefer $SERVERLITE_PASS or --pass-file)")
	passFile := fs.String("pass-file", "", "file holding the login password")
	fs.StringVar(&o.token, "token", env("SERVERLITE_TOKEN", ""), "login code: one sent to your messaging handle (a login without a code sends one), or your authenticator app's")
	fs.StringVar(&o.tlsHash, "tlshash", env("SERVERLITE_TLSHASH", ""), "expected SHA-384 (hex) of the server certificate")
	fs.BoolVar(&o.json, "json", false, "JSON output")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "give up after this long")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: server-lite %s %s\n%s\n\noptions:\n", cmd.name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if o.pass == "" {
		o.pass = os.Getenv("SERVERLITE_PASS")
	}
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			fmt.Fprintf(stderr, "server-lite %s: %v\n", cmd.name, err)
			return exitError
		}
		o.pass = strings.TrimRight(string(b), "\r\n")
	}
	if err := cmd.run(ctx, o, fs, fs.Args()); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "server-lite %s: %v\n", cmd.name, err)
			fs.Usage()
			return exitUsage
		}
		fmt.Fprintf(stderr, "server-lite %s: %v\n", cmd.name, err)
		return exitError
	}
	return exitOK
}

type usageError string

func (e usageError) Error() string { return string(e) }

func flagStr(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }
func flagBool(fs *flag.FlagSet, name string) bool  { return fs.Lookup(name).Value.String() == "true" }

// connect dials with the command's timeout applied.
func connect(ctx context.Context, o *opts) (*client, context.Context, context.CancelFunc, error) {
	if o.pass == "" {
		return nil, nil, nil, usageError("no password: use --pass-file, $SERVERLITE_PASS or --pass")
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	c, err := dial(cctx, o)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return c, cctx, cancel, nil
}

func (o *opts) printJSON(v any) error {
	enc := json.NewEncoder(o.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// line prints one tab-separated record; tabs and newlines inside fields
// become spaces so every record stays on one line.
func (o *opts) line(fields ...any) {
	parts := make([]string, len(fields))
	for i, f := range fields {
		s := fmt.Sprint(f)
		if f == nil {
			s = ""
		}
		parts[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
	}
	fmt.Fprintln(o.stdout, strings.Join(parts, "\t"))
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func resultErr(m map[string]any) error {
	if r, ok := m["result"].(string); ok && r != "ok" && r != "OK" {
		return errors.New(r)
	}
	return nil
}

// device is a flattened device from the nodes reply.
type device struct {
	ID, Name, GroupID, GroupName, Core string
	Version                            string // agentVersion
	Online                             bool
	raw                                map[string]any
}

func listDevices(ctx context.Context, c *client, group string) ([]device, error) {
	mr, err := c.call(ctx, map[string]any{"action": "meshes"})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if ms, ok := mr["meshes"].([]any); ok {
		for _, m := range ms {
			if g, ok := m.(map[string]any); ok {
				names[str(g, "_id")] = str(g, "name")
			}
		}
	}
	req := map[string]any{"action": "nodes"}
	if group != "" {
		req["meshname"] = group
	}
	nr, err := c.call(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := resultErr(nr); err != nil {
		return nil, err
	}
	var out []device
	nodes, _ := nr["nodes"].(map[string]any)
	for gid, l := range nodes {
		arr, _ := l.([]any)
		for _, x := range arr {
			d, ok := x.(map[string]any)
			if !ok {
				continue
			}
			agent, _ := d["agent"].(map[string]any)
			conn, _ := d["conn"].(float64)
			out = append(out, device{ID: str(d, "_id"), Name: str(d, "name"), GroupID: gid, GroupName: names[gid],
				Core: str(agent, "core"), Version: agentVersion(agent), Online: int(conn)&1 != 0, raw: d})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out, nil
}

func runDevices(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	ds, err := listDevices(ctx, c, flagStr(fs, "group"))
	if err != nil {
		return err
	}
	if o.json {
		out := make([]map[string]any, 0, len(ds))
		for _, d := range ds {
			d.raw["meshid"], d.raw["groupname"] = d.GroupID, d.GroupName
			out = append(out, d.raw)
		}
		return o.printJSON(out)
	}
	for _, d := range ds {
		o.line(d.ID, d.Name, d.GroupName, onlineWord(d.Online), d.Core, d.Version)
	}
	return nil
}

func onlineWord(b bool) string {
	if b {
		return "online"
	}
	return "offline"
}

func runGroups(ctx context.Context, o *opts, _ *flag.FlagSet, _ []string) error {
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	mr, err := c.call(ctx, map[string]any{"action": "meshes"})
	if err != nil {
		return err
	}
	ms, _ := mr["meshes"].([]any)
	if o.json {
		return o.printJSON(ms)
	}
	for _, m := range ms {
		if g, ok := m.(map[string]any); ok {
			o.line(str(g, "_id"), str(g, "name"))
		}
	}
	return nil
}

// targets resolves --id / --all to device ids.
func targets(ctx context.Context, c *client, fs *flag.FlagSet) ([]device, error) {
	id, all := flagStr(fs, "id"), flagBool(fs, "all")
	if (id == "") == !all {
		return nil, usageError("give exactly one of --id or --all")
	}
	ds, err := listDevices(ctx, c, "")
	if err != nil {
		return nil, err
	}
	if all {
		var on []device
		for _, d := range ds {
			if d.Online {
				on = append(on, d)
			}
		}
		return on, nil
	}
	want := handshake.NodeIDPrefix + id[strings.LastIndexByte(id, '/')+1:]
	for _, d := range ds {
		if d.ID == want {
			return []device{d}, nil
		}
	}
	return nil, fmt.Errorf("no device %s visible to you", want)
}

func runRun(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 {
		return usageError("no command given")
	}
	cmdline := strings.Join(args, " ")
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	ts, err := targets(ctx, c, fs)
	if err != nil {
		return err
	}
	reply, typ := flagBool(fs, "reply"), 0
	if flagBool(fs, "powershell") {
		typ = 2
	}
	type result struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Result string `json:"result,omitempty"`
		Error  string `json:"error,omitempty"`
	}
	var results []result
	failed := 0
	for _, d := range ts {
		m, err := c.call(ctx, map[string]any{"action": "runcommands", "nodeids": []string{d.ID}, "type": typ, "cmds": cmdline, "runAsUser": 0, "reply": reply})
		r := result{ID: d.ID, Name: d.Name}
		switch {
		case err != nil:
			r.Error = err.Error()
		case m["action"] == "msg":
			r.Result = str(m, "result")
		case resultErr(m) != nil:
			r.Error = str(m, "result")
		default:
			r.Result = str(m, "result")
		}
		if r.Error != "" {
			failed++
		}
		results = append(results, r)
		if !o.json {
			switch {
			case r.Error != "":
				fmt.Fprintf(o.stderr, "%s\t%s\terror: %s\n", d.ID, d.Name, r.Error)
			case reply && len(ts) == 1:
				fmt.Fprint(o.stdout, r.Result)
			default:
				o.line(d.ID, d.Name, r.Result)
			}
		}
	}
	if o.json {
		if err := o.printJSON(results); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d device(s) failed", failed, len(ts))
	}
	return nil
}

func runPush(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usageError("give one script file")
	}
	script, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	ts, err := targets(ctx, c, fs)
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return errors.New("no online device")
	}
	ids := make([]string, len(ts))
	for i, d := range ts {
		ids[i] = d.ID
	}
	m, err := c.call(ctx, map[string]any{"action": "pushscript", "nodeids": ids, "script": string(script)})
	if err != nil {
		return err
	}
	if err := resultErr(m); err != nil {
		return err
	}
	res, _ := m["results"].(map[string]any)
	if o.json {
		return o.printJSON(res)
	}
	failed := 0
	for _, d := range ts {
		r, _ := res[d.ID].(string)
		if r != "ok" {
			failed++
		}
		o.line(d.ID, d.Name, r)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d device(s) failed", failed, len(ts))
	}
	return nil
}

func runCores(ctx context.Context, o *opts, _ *flag.FlagSet, _ []string) error {
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	m, err := c.call(ctx, map[string]any{"action": "devicecores"})
	if err != nil {
		return err
	}
	if err := resultErr(m); err != nil {
		return err
	}
	ds, _ := m["devices"].([]any)
	if o.json {
		return o.printJSON(ds)
	}
	for _, x := range ds {
		d, _ := x.(map[string]any)
		on, _ := d["online"].(bool)
		o.line(str(d, "_id"), str(d, "name"), onlineWord(on), str(d, "core"), str(d, "coreHash"), str(d, "pinnedCoreHash"))
	}
	return nil
}

func runMsh(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	id, name := flagStr(fs, "id"), flagStr(fs, "group")
	if (id == "") == (name == "") {
		return usageError("give exactly one of --group or --id")
	}
	if name != "" {
		c, cctx, cancel, err := connect(ctx, o)
		if err != nil {
			return err
		}
		mr, err := c.call(cctx, map[string]any{"action": "meshes"})
		c.close()
		cancel()
		if err != nil {
			return err
		}
		ms, _ := mr["meshes"].([]any)
		for _, x := range ms {
			if g, ok := x.(map[string]any); ok && str(g, "name") == name {
				if id != "" {
					return fmt.Errorf("several groups are named %q: use --id", name)
				}
				id = str(g, "_id")
			}
		}
		if id == "" {
			return fmt.Errorf("no device group named %q visible to you", name)
		}
	}
	id = id[strings.LastIndexByte(id, '/')+1:]
	hc := &http.Client{Timeout: o.timeout, Transport: &http.Transport{TLSClientConfig: tlsConfig(o.tlsHash)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpsURL(o.url)+"/meshsettings?id="+id, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("get .msh: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get .msh: HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("get .msh: %w", err)
	}
	if out := flagStr(fs, "o"); out != "" {
		if err := os.WriteFile(out, body, 0o600); err != nil {
			return err
		}
		abs, _ := filepath.Abs(out)
		fmt.Fprintln(o.stderr, "wrote", abs)
		return nil
	}
	_, err = o.stdout.Write(body)
	return err
}

func runEvents(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	c, cctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	req := map[string]any{"action": "events"}
	if id := flagStr(fs, "id"); id != "" {
		req["nodeid"] = id
	}
	if l := fs.Lookup("limit").Value.(flag.Getter).Get().(int); l > 0 {
		req["limit"] = l
	}
	m, err := c.call(cctx, req)
	if err != nil {
		return err
	}
	if err := resultErr(m); err != nil {
		return err
	}
	evs, _ := m["events"].([]any)
	for i := len(evs) - 1; i >= 0; i-- { // the server sends newest first
		ev, _ := evs[i].(map[string]any)
		o.printEvent(ev)
	}
	if !flagBool(fs, "follow") {
		return nil
	}
	cancel() // no overall timeout while following
	for {
		select {
		case ev := <-c.events:
			o.printEvent(ev)
		case err := <-c.readErr:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

func (o *opts) printEvent(ev map[string]any) {
	if o.json {
		b, _ := json.Marshal(ev) // one object per line, for streaming
		fmt.Fprintln(o.stdout, string(b))
		return
	}
	o.line(str(ev, "time"), str(ev, "action"), str(ev, "userid"), firstNonEmpty(str(ev, "nodeid"), str(ev, "meshid")), str(ev, "remoteaddr"), str(ev, "msg"))
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}
