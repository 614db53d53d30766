// Package portal is a client of xdg-desktop-portal's RemoteDesktop and
// ScreenCast interfaces (org.freedesktop.portal.*) on a user's session
// bus: the route to Wayland desktops whose compositor has no API of its
// own that a root agent can use without asking (KDE Plasma and others;
// GNOME and wlroots compositors have their own routes). The portal asks
// the user to grant each new session in a dialog; with persist_mode 2 it
// hands back a restore token that lets a later session start without the
// dialog, so the agent keeps that token (Tokens) per user. The frames come
// as a PipeWire stream reached through OpenPipeWireRemote's fd.
//
// Persistence needs RemoteDesktop version 2 (xdg-desktop-portal 1.17 and
// later) for a session with input; version 1 (Debian 12's 1.16) refuses
// persist_mode on any remote desktop session, so there every session with
// input needs the user. A ScreenCast-only (view-only) session can persist
// from ScreenCast version 4.
package portal
