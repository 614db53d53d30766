package install

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// systemdUnit renders the systemd unit. Choices, and why:
//   - Restart=on-failure, not always: a crash, a kill by the memory cap or
//     a non-zero exit comes back; an agent that exits cleanly because it was
//     told to (uninstall from the server) stays down.
//   - network-online.target: the agent's first act is to dial the server.
//   - MemoryMax: see DefaultMemoryMax.
//   - TimeoutStopSec: the agent stops in well under a second on SIGTERM;
//     a hung stop should not delay a reboot by systemd's default 90 s.
//   - SyslogIdentifier: journal lines are tagged with the service name even
//     though the binary is always called meshagent.
//   - stdout/stderr go to the journal (systemd's default), which is where
//     the agent's platform log goes on Linux.
func systemdUnit(p *Plan, memoryMax string, noNewPrivileges bool, restart time.Duration) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# %s service, installed by \"meshagent install\"; remove with \"%s -fulluninstall\".", p.ServiceName, p.Binary)
	w("[Unit]")
	w("Description=%s", systemdEscape(p.DisplayName))
	w("Documentation=man:systemd.service(5)")
	w("Wants=network-online.target")
	w("After=network-online.target")
	w("")
	w("[Service]")
	w("Type=simple")
	args := make([]string, len(p.Exec))
	for i, a := range p.Exec {
		args[i] = systemdQuote(a)
	}
	w("ExecStart=%s", strings.Join(args, " "))
	w("WorkingDirectory=%s", systemdEscape(p.InstallDir)) // taken literally: no quoting
	w("Restart=on-failure")
	w("RestartSec=%d", max(1, int(restart.Round(time.Second)/time.Second)))
	w("TimeoutStopSec=15")
	w("MemoryMax=%s", memoryMax)
	if noNewPrivileges {
		w("NoNewPrivileges=yes")
	}
	w("SyslogIdentifier=%s", p.ServiceName)
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return b.String()
}

// systemdEscape escapes systemd's specifier character in free text.
func systemdEscape(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// systemdQuote quotes one ExecStart word: specifiers (%) and variable
// expansion ($) are escaped, and words with blanks, quotes or backslashes
// are double-quoted with C-style escapes, as systemd.service(5) describes.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + s + `"`
}

// launchdPlist renders the launchd daemon definition. KeepAlive with
// SuccessfulExit=false is launchd's restart-on-failure (a clean exit stays
// down, like Restart=on-failure); ThrottleInterval spaces restarts.
// There is no StandardErrorPath: the agent logs to the unified log and its
// own rotating file, and launchd would grow such a file without bound.
func launchdPlist(p *Plan, restart time.Duration) string {
	var b strings.Builder
	w := func(s string) { b.WriteString(s + "\n") }
	w(`<?xml version="1.0" encoding="UTF-8"?>`)
	w(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`)
	w(`<plist version="1.0">`)
	w(`<dict>`)
	w(`	<key>Label</key>`)
	w(`	<string>` + xmlText(p.ServiceName) + `</string>`)
	w(`	<key>ProgramArguments</key>`)
	w(`	<array>`)
	for _, a := range p.Exec {
		w(`		<string>` + xmlText(a) + `</string>`)
	}
	w(`	</array>`)
	w(`	<key>WorkingDirectory</key>`)
	w(`	<string>` + xmlText(p.InstallDir) + `</string>`)
	w(`	<key>RunAtLoad</key>`)
	w(`	<true/>`)
	w(`	<key>KeepAlive</key>`)
	w(`	<dict>`)
	w(`		<key>SuccessfulExit</key>`)
	w(`		<false/>`)
	w(`	</dict>`)
	w(`	<key>ThrottleInterval</key>`)
	w(fmt.Sprintf(`	<integer>%d</integer>`, max(1, int(restart.Round(time.Second)/time.Second))))
	w(`	<key>ExitTimeOut</key>`)
	w(`	<integer>15</integer>`)
	w(`</dict>`)
	w(`</plist>`)
	return b.String()
}

func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
