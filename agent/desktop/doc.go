// Package desktop serves MeshCentral remote desktop sessions (relay
// protocol 2, the KVM protocol of sessions.md §4) over a session.Channel.
//
// A pass every frame interval grabs the selected display, compares it with
// the previous frame on a 32-pixel tile grid, merges changed tiles into
// rectangles, JPEG-encodes them on up to four cores and sends each as one
// PICTURE (JUMBO when large) message. Viewer input is injected from the
// reader goroutine so typing stays responsive while frames encode.
//
// Platforms:
//
//   - Linux/X11: one persistent X connection per session. MIT-SHM capture
//     (GetImage over the socket when SHM is refused), DAMAGE to skip passes
//     while nothing is drawn (a static screen costs an atomic load per
//     interval), XFIXES for the cursor shape, RandR 1.5 monitors, XTEST
//     input with spare-keycode remapping for characters the keymap lacks.
//     The display is found from Options, DISPLAY/XAUTHORITY, running X
//     servers' ":N -auth FILE" arguments, then users' session processes, and
//     looked for again every two seconds while none is found, so a desktop
//     that appears after the agent started still works.
//   - Linux/Wayland, wlroots compositors (sway and others): agent/wayland
//     over the compositor's socket (root may connect to any user's). One
//     copy_with_damage screencopy request stays outstanding, so a static
//     screen costs nothing and each frame's damage box bounds the copy;
//     input through the virtual pointer and a virtual keyboard with a
//     generated XKB keymap (one keycode per viewer VK with US shifted
//     levels, spare one-level keycodes for UNICODE). Found from
//     Options.WaylandDisplay, WAYLAND_DISPLAY, then /run/user/*/wayland-N
//     (newest first); tried after X, or first when only a Wayland display
//     was named. First output only; the compositor's software cursor is
//     part of the picture. Clipboard through wlr data-control.
//   - Linux/Wayland, GNOME (Mutter): agent/mutter. The session is found
//     from the gnome-shell/mutter process (its DBUS_SESSION_BUS_ADDRESS and
//     XDG_RUNTIME_DIR; console user first), the bus joined as that user, a
//     RemoteDesktop session with a ScreenCast RecordMonitor of the primary
//     monitor started; frames come from the PipeWire stream through a
//     gst-launch-1.0 child run as the user, each compared with the last for
//     the changed box (Mutter sends frames only on change, so a static
//     screen costs nothing); input through RemoteDesktop's Notify* calls
//     (keys as keysyms). Tried after wlroots compositors, and before X
//     servers found by scanning when the agent has no DISPLAY.
//   - KDE and the xdg-desktop-portal route: not served.
//
// Sessions lists graphical sessions (logind, else processes) for a root
// service deciding whether to announce the desktop.
//   - Windows: GDI capture through kbinani/screenshot, SendInput,
//     SetCursorPos and standard-cursor detection. Cross-compiled only; a
//     service in session 0 must run this in the user's session to see the
//     desktop (not done here).
//   - macOS: CoreGraphics through purego (no cgo needed): display list,
//     CGDisplayCreateImageForRect capture, CGEvent mouse, keyboard and
//     unicode input. Cross-compiled only, never run here; needs the Screen
//     Recording and Accessibility permissions.
//
// Around the session (issue 15): X11UI draws the consent prompt, the
// session notification and the privacy bar as native X11 windows on the
// console user's display (package consent's UI seam; MacUI uses osascript
// on macOS); LockScreen serves the toolbar's lock and auto-lock; the
// remote input lock holds the physical devices with XI2 grabs; the
// toolbar's Ctrl+Alt+Del is sent as the chord.
//
// JPEG: builds with cgo on Linux use libjpeg-turbo through a small binding,
// linked statically from libturbojpeg.a (tag desktop_turbo_shared links the
// shared library, desktop_stdjpeg forces image/jpeg); everything else uses
// image/jpeg.
//
// WebP: a viewer that asks for WebP (COMPRESSION image type 4, MeshCentral's
// default) gets lossless WebP for flat rectangles (UI, text; tilechoice.go
// says when and why) from libwebp.so.7, loaded at run time with purego in
// builds that link libc (cgo on Linux, macOS); everything else, and every
// tile when libwebp is missing or fails, stays JPEG. The browser sniffs
// the format, whatever the viewer's data: URL says. MESHGO_LIBWEBP names
// another library, or "off".
package desktop
