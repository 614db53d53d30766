// Package scripts embeds the agent's default JavaScript core, the script
// the agent runs when the server sends none of its own (it answers the
// server's core-hash check with the zero hash, control.md 5.3).
package scripts

import _ "embed"

// DefaultCore is the source of defaultcore.js; the API it uses is
// documented in README.md beside it.
//
//go:embed defaultcore.js
var DefaultCore []byte
