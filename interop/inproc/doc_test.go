// Package inproc holds the tests that need both roles' Go packages in one
// process: server-lite's relay and session clients against the agent's own
// session handlers and WebRTC answerer. They live here, beside the interop
// tests, so that no package under agent/ imports server-lite and server-lite
// imports nothing of the agent's.
package inproc

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/meshgo/meshagent/proto/webrtc"
)

func testLogger() *slog.Logger {
	if os.Getenv("WEBRTC_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig restricts ICE to 127.0.0.1: tests never send a packet off the
// machine.
func testConfig() webrtc.Config {
	return webrtc.Config{LoopbackOnly: true, Logger: testLogger(), Timeout: 10 * time.Second}
}

func head(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}
