// Package mutter drives GNOME's compositor (Mutter) for remote desktop
// through its private D-Bus API, the one gnome-remote-desktop uses:
// org.gnome.Mutter.RemoteDesktop for input and org.gnome.Mutter.ScreenCast
// for a PipeWire video stream of a monitor. A root agent reaches a user's
// session bus by connecting with the user's uid (Dial), because a session
// bus admits only its owner; Mutter then grants the session without asking
// (it trusts its own session bus), and ends it when the connection closes.
package mutter
