package cli

// Account commands: one's own password, and an administrator's reset and
// (de)activation of another user. The passwords never appear on the
// command line: the new one comes from a file or the environment, a
// generated one is printed once.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// siteLocked is MeshCentral's "account locked" site right.
const siteLocked = 0x20

func accountCommands() []command {
	idFlag := func(fs *flag.FlagSet) { fs.String("id", "", "the user (name or user//name)") }
	return []command{
		{name: "passwd", args: "--new-pass-file FILE", help: "change your own password (the new one from FILE or $SERVERLITE_NEW_PASS)", run: runPasswd,
			flags: func(fs *flag.FlagSet) { fs.String("new-pass-file", "", "file holding the new password") }},
		{name: "reset-password", args: "--id USER [--remove-2fa]", help: "give another user a new random password, printed once; their sessions end", run: runResetPassword,
			flags: func(fs *flag.FlagSet) {
				idFlag(fs)
				fs.Bool("remove-2fa", false, "also remove their authenticator app")
			}},
		{name: "deactivate", args: "--id USER", help: "lock a user out: every session, cookie, login token and relay of theirs ends now", run: func(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
			return setLocked(ctx, o, flagStr(fs, "id"), true)
		}, flags: idFlag},
		{name: "activate", args: "--id USER", help: "let a deactivated user sign in again", run: func(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
			return setLocked(ctx, o, flagStr(fs, "id"), false)
		}, flags: idFlag},
	}
}

func runPasswd(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	newPass := os.Getenv("SERVERLITE_NEW_PASS")
	if f := flagStr(fs, "new-pass-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		newPass = strings.TrimRight(string(b), "\r\n")
	}
	if newPass == "" {
		return usageError("no new password: use --new-pass-file or $SERVERLITE_NEW_PASS")
	}
	c, cctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	r, err := c.call(cctx, map[string]any{"action": "changepassword", "oldpass": o.pass, "newpass": newPass})
	if err != nil {
		return err
	}
	if err := resultErr(r); err != nil {
		return err
	}
	fmt.Fprintln(o.stderr, "password changed")
	return nil
}

func userID(id string) (string, error) {
	if id == "" {
		return "", usageError("--id is required")
	}
	if !strings.HasPrefix(id, "user/") {
		id = "user//" + strings.ToLower(id)
	}
	return id, nil
}

func runResetPassword(ctx context.Context, o *opts, fs *flag.FlagSet, _ []string) error {
	id, err := userID(flagStr(fs, "id"))
	if err != nil {
		return err
	}
	c, cctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	r, err := c.call(cctx, map[string]any{"action": "changeuserpass", "userid": id, "generate": true, "removeMultiFactor": flagBool(fs, "remove-2fa")})
	if err != nil {
		return err
	}
	if err := resultErr(r); err != nil {
		return err
	}
	p := str(r, "pass")
	if p == "" {
		return errors.New("the server returned no password")
	}
	if o.json {
		return o.printJSON(map[string]string{"userid": id, "pass": p})
	}
	o.line(id, p)
	return nil
}

func setLocked(ctx context.Context, o *opts, who string, lock bool) error {
	id, err := userID(who)
	if err != nil {
		return err
	}
	c, cctx, cancel, err := connect(ctx, o)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.close()
	ur, err := c.call(cctx, map[string]any{"action": "users"})
	if err != nil {
		return err
	}
	if err := resultErr(ur); err != nil {
		return err
	}
	var site float64
	found := false
	us, _ := ur["users"].([]any)
	for _, x := range us {
		if u, ok := x.(map[string]any); ok && str(u, "_id") == id {
			site, _ = u["siteadmin"].(float64)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no user %s", id)
	}
	bits := uint32(site)
	if lock && bits == 0xFFFFFFFF {
		// The lock bit means nothing on a full administrator (as in
		// MeshCentral): their rights must be lowered first.
		return fmt.Errorf("%s is a full administrator and cannot be deactivated; lower their rights first", id)
	}
	if lock {
		bits |= siteLocked
	} else {
		bits &^= siteLocked
	}
	r, err := c.call(cctx, map[string]any{"action": "edituser", "userid": id, "siteadmin": bits})
	if err != nil {
		return err
	}
	return resultErr(r)
}
