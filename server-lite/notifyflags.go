package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/meshgo/meshagent/server-lite/notify"
)

// notifyFlags are the command-line forms of the "notify" config object
// (server-lite/README.md, Notifications). Secrets are taken only from
// files on the command line, so they never show in ps or shell history.
type notifyFlags struct {
	telegramTokenFile, telegramAPI string
	ntfyURL, ntfyTokenFile         string
	smtpHost, smtpFrom, smtpUser   string
	smtpPasswordFile, smtpTLS      string
	smtpCAFile                     string
	smtpPort                       int
	webhookURL, webhookSecretFile  string
	batch                          time.Duration
	msg2factor                     bool
}

func addNotifyFlags(fs *flag.FlagSet, f *notifyFlags) {
	fs.StringVar(&f.telegramTokenFile, "telegram-token-file", "", "file (mode 0600) holding the Telegram bot token; enables Telegram")
	fs.StringVar(&f.telegramAPI, "telegram-api", "", "Telegram Bot API base URL (default https://api.telegram.org)")
	fs.StringVar(&f.ntfyURL, "ntfy-url", "", "ntfy server, e.g. https://ntfy.sh or your own; enables ntfy")
	fs.StringVar(&f.ntfyTokenFile, "ntfy-token-file", "", "file (mode 0600) holding an ntfy access token")
	fs.StringVar(&f.smtpHost, "smtp-host", "", "SMTP server for e-mail notifications; enables e-mail")
	fs.IntVar(&f.smtpPort, "smtp-port", 0, "SMTP port (default 587, 465 with --smtp-tls implicit)")
	fs.StringVar(&f.smtpFrom, "smtp-from", "", "sender address of notification e-mail")
	fs.StringVar(&f.smtpUser, "smtp-user", "", "SMTP AUTH user")
	fs.StringVar(&f.smtpPasswordFile, "smtp-password-file", "", "file (mode 0600) holding the SMTP password")
	fs.StringVar(&f.smtpTLS, "smtp-tls", "", `"starttls" (default), "implicit" or "none"`)
	fs.StringVar(&f.smtpCAFile, "smtp-ca-file", "", "PEM roots for the SMTP server's certificate")
	fs.StringVar(&f.webhookURL, "webhook-url", "", "URL that receives signed JSON notifications; enables the webhook")
	fs.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file (mode 0600) holding the webhook's HMAC-SHA256 secret")
	fs.DurationVar(&f.batch, "notify-batch", 0, "how long device notices are gathered per user (default 1m)")
	fs.BoolVar(&f.msg2factor, "msg2factor", true, "a verified messaging handle is a login second factor (false: off for this server)")
}

// applyNotifyFlag copies one given flag over the config file's value; it
// reports whether name was one of the notify flags.
func applyNotifyFlag(name string, n *notify.Settings, f *notifyFlags) bool {
	switch name {
	case "telegram-token-file":
		n.Telegram.TokenFile, n.Telegram.Token = f.telegramTokenFile, ""
	case "telegram-api":
		n.Telegram.APIURL = f.telegramAPI
	case "ntfy-url":
		n.Ntfy.URL = f.ntfyURL
	case "ntfy-token-file":
		n.Ntfy.TokenFile, n.Ntfy.Token = f.ntfyTokenFile, ""
	case "smtp-host":
		n.SMTP.Host = f.smtpHost
	case "smtp-port":
		n.SMTP.Port = f.smtpPort
	case "smtp-from":
		n.SMTP.From = f.smtpFrom
	case "smtp-user":
		n.SMTP.User = f.smtpUser
	case "smtp-password-file":
		n.SMTP.PasswordFile, n.SMTP.Password = f.smtpPasswordFile, ""
	case "smtp-tls":
		n.SMTP.TLS = f.smtpTLS
	case "smtp-ca-file":
		n.SMTP.CAFile = f.smtpCAFile
	case "webhook-url":
		n.Webhook.URL = f.webhookURL
	case "webhook-secret-file":
		n.Webhook.SecretFile, n.Webhook.Secret = f.webhookSecretFile, ""
	case "notify-batch":
		n.BatchWindow = notify.Duration(f.batch)
	case "msg2factor":
		v := f.msg2factor
		n.Msg2Factor = &v
	default:
		return false
	}
	return true
}

// notifyPaths makes the notify object's file names relative to the config
// file's directory, and refuses a config file holding a secret that others
// may read.
func notifyPaths(n *notify.Settings, path string, join func(*string)) error {
	for _, p := range []*string{&n.Telegram.TokenFile, &n.Ntfy.TokenFile, &n.SMTP.PasswordFile, &n.SMTP.CAFile, &n.Webhook.SecretFile} {
		join(p)
	}
	if n.Telegram.Token == "" && n.Ntfy.Token == "" && n.SMTP.Password == "" && n.Webhook.Secret == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("config %s holds a messaging secret but is readable by others (mode %v): chmod 600 it, or name the secret in a *File key", path, fi.Mode().Perm())
	}
	return nil
}
