// Package waylandtest starts a real headless sway for tests (Linux only)
// and offers a small client that paints a known picture and records the
// input it gets.
package waylandtest
