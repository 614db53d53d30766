package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// codeInput is where msg-verify reads the code; tests replace it.
var codeInput io.Reader = os.Stdin

// notifyEventBits are the subscription bits (server-lite/notify): 128 and
// 256 are MeshCentral's messaging connect/disconnect bits.
var notifyEventBits = map[string]uint32{"connect": 128, "disconnect": 256, "errors": 1 << 16, "crash": 1 << 17}

func notifyCommands() []command {
	return []command{
		{name: "msg-verify", args: "--service telegram|ntfy|email|webhook HANDLE", help: "register your messaging handle: sends a 6-digit code to it and asks for it (stdin)", run: runMsgVerify,
			flags: func(fs *flag.FlagSet) {
				fs.String("service", "", "telegram (chat id or @channel), ntfy (topic), email (address), webhook (label)")
			}},
		{name: "msg-remove", help: "remove your messaging handle", run: runSimple("removeMessaging")},
		{name: "msg-user", args: "--to USER TEXT...", help: "send a message to a user's verified handle (user management right)", run: runMsgUser,
			flags: func(fs *flag.FlagSet) { fs.String("to", "", "the user's name or id") }},
		{name: "notify", args: "(--group NAME | --id NODE) [--events connect,disconnect,errors,crash|none] [--offline MINUTES]", help: "subscribe to a group's or a device's events", run: runNotify,
			flags: func(fs *flag.FlagSet) {
				fs.String("group", "", "device group name")
				fs.String("id", "", "device id (with or without node//)")
				fs.String("events", "connect,disconnect", "events to be told of, comma-separated; none removes the subscription")
				fs.Int("offline", 0, "also notify when a device stays offline longer than this many minutes")
			}},
		{name: "notify-mute", args: "--id NODE [--off]", help: "mute (or --off: unmute) one device's notices", run: runMute,
			flags: func(fs *flag.FlagSet) {
				fs.String("id", "", "device id (with or without node//)")
				fs.Bool("off", false, "unmute")
			}},
		{name: "notify-list", help: "your messaging handle, subscriptions and muted devices", run: runNotifyList},
	}
}

func runSimple(action string) func(ctx context.Context, o *opts, _ *flag.FlagSet, _ []string) error {
	return func(ctx context.Context, o *opts, _ *flag.FlagSet, _ []string) error {
		c, ctx, cancel, err := connect(ctx, o)
		if err != nil {
			return err
		}
		defer cancel()
		defer c.close()
		r, err := c.call(ctx, map[string]any{"action": action})
		if err != nil {
			return err
		}
		return resultErr(r)
	}
}

func runMsgVerify(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	svc := flagStr(fs, "service")
	if svc == "" || len(args) != 1 {
		return usageError("give --service and one HANDLE")
	}
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	r, err := c.call(ctx, map[string]any{"action": "verifyMessaging", "service": svc, "handle": args[0]})
	if err != nil {
		return err
	}
	if err := resultErr(r); err != nil {
		return err
	}
	cookie := str(r, "cookie")
	if cookie == "" {
		return errors.New("no verification cookie in the answer")
	}
	in := bufio.NewScanner(codeInput)
	for {
		fmt.Fprint(o.stderr, "Code sent; enter the 6-digit code: ")
		if !in.Scan() {
			return errors.New("no code given")
		}
		r, err := c.call(ctx, map[string]any{"action": "confirmMessaging", "cookie": cookie, "code": strings.TrimSpace(in.Text())})
		if err != nil {
			return err
		}
		if str(r, "action") == "confirmMessaging" && str(r, "result") == "ok" {
			o.line("verified", str(r, "msghandle"))
			return nil
		}
		fmt.Fprintf(o.stderr, "%s\n", firstNonEmpty(str(r, "result"), "code refused"))
		if strings.Contains(str(r, "result"), "expired") {
			return errors.New("verification failed")
		}
	}
}

func runMsgUser(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	user := flagStr(fs, "to")
	if user == "" || len(args) == 0 {
		return usageError("give --to and the message")
	}
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	r, err := c.call(ctx, map[string]any{"action": "msguser", "userid": user, "msg": strings.Join(args, " ")})
	if err != nil {
		return err
	}
	if err := resultErr(r); err != nil {
		return err
	}
	o.line("queued")
	return nil
}

func runNotify(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	group, id := flagStr(fs, "group"), flagStr(fs, "id")
	if (group == "") == (id == "") {
		return usageError("give --group or --id")
	}
	var bits uint32
	if ev := flagStr(fs, "events"); ev != "none" {
		for _, e := range strings.Split(ev, ",") {
			b, ok := notifyEventBits[strings.TrimSpace(e)]
			if !ok {
				return usageError(fmt.Sprintf("unknown event %q (connect, disconnect, errors, crash, none)", e))
			}
			bits |= b
		}
	}
	var offline int
	fmt.Sscan(fs.Lookup("offline").Value.String(), &offline)
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	req := map[string]any{"notify": bits, "offline": offline}
	if id != "" {
		req["action"], req["nodeid"] = "changeusernotify", nodeID(id)
	} else {
		gid, err := groupID(ctx, c, group)
		if err != nil {
			return err
		}
		req["action"], req["meshid"] = "changemeshnotify", gid
	}
	r, err := c.call(ctx, req)
	if err != nil {
		return err
	}
	return resultErr(r)
}

// groupID finds a group's id by name.
func groupID(ctx context.Context, c *client, name string) (string, error) {
	mr, err := c.call(ctx, map[string]any{"action": "meshes"})
	if err != nil {
		return "", err
	}
	ms, _ := mr["meshes"].([]any)
	for _, m := range ms {
		if g, ok := m.(map[string]any); ok && str(g, "name") == name {
			return str(g, "_id"), nil
		}
	}
	return "", fmt.Errorf("no device group %q", name)
}

func nodeID(id string) string {
	if strings.HasPrefix(id, "node/") {
		return id
	}
	return "node//" + id
}

func runMute(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	id := flagStr(fs, "id")
	if id == "" {
		return usageError("give --id")
	}
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	r, err := c.call(ctx, map[string]any{"action": "mutenotify", "nodeid": nodeID(id), "mute": !flagBool(fs, "off")})
	if err != nil {
		return err
	}
	return resultErr(r)
}

func runNotifyList(ctx context.Context, o *opts, _ *flag.FlagSet, _ []string) error {
	c, ctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	r, err := c.call(ctx, map[string]any{"action": "notifysettings"})
	if err != nil {
		return err
	}
	if err := resultErr(r); err != nil {
		return err
	}
	if o.json {
		delete(r, "responseid")
		return o.printJSON(r)
	}
	o.line("handle", firstNonEmpty(str(r, "msghandle"), "-"))
	subs, _ := r["subs"].(map[string]any)
	keys := make([]string, 0, len(subs))
	for k := range subs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, _ := subs[k].(map[string]any)
		bits, _ := s["notify"].(float64)
		var names []string
		for _, n := range []string{"connect", "disconnect", "errors", "crash"} {
			if uint32(bits)&notifyEventBits[n] != 0 {
				names = append(names, n)
			}
		}
		off, _ := s["offline"].(float64)
		o.line("sub", k, strings.Join(names, ","), fmt.Sprintf("offline>%gm", off))
	}
	muted, _ := r["muted"].([]any)
	for _, m := range muted {
		o.line("muted", m)
	}
	return nil
}
