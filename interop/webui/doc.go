// Package webui drives MeshCentral's own web UI in headless Chromium
// (Debian's chromium through npm playwright-core) against our agent
// binary: the desktop viewer's canvas against a known Xvfb screen, and the
// files tab after the WebRTC switch-over. The tests live in *_test.go;
// this package only holds the playwright-core installer they use.
package webui
