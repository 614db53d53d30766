package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/portfwd"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
)

// SessionHandler serves one relay session once its protocol is chosen. The
// handler owns the channel and must close it before returning. Handlers
// check the rights in info again themselves (defence in depth). A handler
// that must act after a WebRTC switch-over watches session.Switched(ch).
type SessionHandler func(ctx context.Context, ch session.Channel, info session.Info) error

// Session declares how the agent serves one relay protocol: its handler
// and the handler's own WebRTC upgrade policy, so the core decides nothing
// per protocol itself.
type Session struct {
	Serve SessionHandler
	// WebRTC says whether the client may move the session onto a WebRTC
	// data channel and how; the zero value keeps it on the relay.
	WebRTC session.UpgradePolicy
}

// TunnelRequest is the server's {"action":"msg","type":"tunnel"} message
// (control.md §6.8, sessions.md §1.2). Everything in it comes from the user
// side and was only partly checked by the server.
type TunnelRequest struct {
	Value          string          `json:"value"`
	ServerTLSHash  string          `json:"servertlshash"`
	Rights         *uint32         `json:"rights"`
	Consent        uint32          `json:"consent"`
	UserID         string          `json:"userid"`
	Username       string          `json:"username"`
	RealName       string          `json:"realname"`
	RemoteAddr     string          `json:"remoteaddr"`
	SessionID      string          `json:"sessionid"`
	DesktopViewOne bool            `json:"desktopviewonly"`
	SOptions       json.RawMessage `json:"soptions"`
	GuestName      string          `json:"guestname"`
	// PrivacyBarText is the privacy bar's template ({0} real names, {1}
	// user names); empty means consent.DefaultPrivacyBar.
	PrivacyBarText string `json:"privacybartext"`
	// TCPPort or UDPPort make the tunnel a port forward to TCPAddr or
	// UDPAddr (127.0.0.1 when empty). MeshCentral sends the port as the
	// URL's text or as a number.
	TCPPort any    `json:"tcpport"`
	TCPAddr string `json:"tcpaddr"`
	UDPPort any    `json:"udpport"`
	UDPAddr string `json:"udpaddr"`
}

// forwardTarget returns where a port-forwarding tunnel goes, or nil for
// a tunnel that negotiates a protocol.
func (r TunnelRequest) forwardTarget() (*portfwd.Target, error) {
	var t portfwd.Target
	var err error
	switch {
	case r.TCPPort != nil:
		t, err = portfwd.ParseTarget("tcp", r.TCPAddr, r.TCPPort)
	case r.UDPPort != nil:
		t, err = portfwd.ParseTarget("udp", r.UDPAddr, r.UDPPort)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tunnel request: %w", err)
	}
	return &t, nil
}

// RightsPortForward are the rights that allow a port forward: remote
// control or relay, the bits MeshCentral's meshrelay.ashx checks before it
// asks the agent for one.
const RightsPortForward = session.RightRemoteControl | session.RightRelay

// tunnelOptions are the soptions the core itself reads; the consent
// fields are package consent's.
type tunnelOptions struct {
	Usages []int `json:"usages"`
}

// Relay timing limits.
const (
	relayDialTimeout  = 20 * time.Second
	relayPairTimeout  = 30 * time.Second // the relay itself drops an unpaired end after 15 s
	relayChooseTimout = 60 * time.Second // from "c" to the protocol number
)

// OpenTunnel starts a relay session for a server tunnel request. It checks
// and resolves the request synchronously and serves the session on its own
// goroutine, so one session never blocks or breaks another or the control
// channel.
func (a *Agent) OpenTunnel(msg []byte) error {
	var req TunnelRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return fmt.Errorf("tunnel request: %w", err)
	}
	fwd, err := req.forwardTarget()
	if err != nil {
		return err
	}
	// meshrelay.ashx sends port-forwarding requests without rights, after
	// it checked RightsPortForward itself; every other request carries the
	// user's rights and is checked here.
	if req.Rights == nil && fwd == nil {
		return errors.New("tunnel request without rights")
	}
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c == nil {
		return errors.New("tunnel request: not connected")
	}
	target, err := resolveRelayURL(c.url, req.Value)
	if err != nil {
		return err
	}
	ctx := a.runCtx
	go func() {
		err := a.runTunnel(ctx, c, target, req, fwd)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("relay session ended", "user", req.UserID, "err", err)
		}
	}()
	return nil
}

// resolveRelayURL turns the request's value into the relay URL. Only
// "*/path" (relative to the control channel) and absolute wss:// URLs on
// the control channel's own host and port are accepted: the value comes
// from the user's side and must not send the agent anywhere else
// (sessions.md §1.4, stricter than the reference).
func resolveRelayURL(control, value string) (string, error) {
	cu, err := url.Parse(control)
	if err != nil {
		return "", fmt.Errorf("control URL: %w", err)
	}
	var target string
	switch {
	case strings.HasPrefix(value, "*/"):
		target = "wss://" + cu.Host + "/" + value[2:]
	case strings.HasPrefix(value, "wss://"):
		vu, err := url.Parse(value)
		if err != nil {
			return "", fmt.Errorf("relay URL: %w", err)
		}
		if !strings.EqualFold(vu.Host, cu.Host) {
			return "", fmt.Errorf("relay URL host %q is not the control server %q", vu.Host, cu.Host)
		}
		target = value
	default:
		return "", fmt.Errorf("relay URL %q: only */ or wss:// on the control server are accepted", value)
	}
	// Cookies use @ and $ as base64 digits; escape them as the reference does.
	target = strings.NewReplacer("$", "%24", "@", "%40").Replace(target)
	tu, err := url.Parse(target)
	// meshrelay.ashx for sessions; devicefile.ashx for the web UI's file
	// downloads, which MeshCentral serves as a protocol-10 tunnel
	// (sessions.md §3.9).
	if err != nil || tu.Host != cu.Host || !(strings.HasSuffix(tu.Path, "/meshrelay.ashx") || strings.HasSuffix(tu.Path, "/devicefile.ashx")) {
		return "", fmt.Errorf("relay URL %q does not name the control server's meshrelay.ashx or devicefile.ashx", value)
	}
	return target, nil
}

// relayTLS pins the relay's certificate to the control channel's: the same
// certificate, the same public key, or the servertlshash the server sent.
// The check runs inside the TLS handshake, so the rauth cookie in the URL
// is never sent to a server that fails it.
func relayTLS(controlHash [handshake.HashLen]byte, controlKey any, serverTLSHash string) *tls.Config {
	want := strings.ToLower(strings.ReplaceAll(serverTLSHash, ":", ""))
	return &tls.Config{
		InsecureSkipVerify: true,
		ClientSessionCache: sessionCache,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("relay presented no certificate")
			}
			leaf := cs.PeerCertificates[0]
			h := handshake.CertHash(leaf.Raw)
			if h == controlHash || samePublicKey(leaf, controlKey) {
				return nil
			}
			if want != "" && want == hex.EncodeToString(h[:]) {
				return nil
			}
			return fmt.Errorf("relay certificate %X… is not the control channel's", h[:6])
		},
	}
}

func samePublicKey(c *x509.Certificate, key any) bool {
	k, ok := c.PublicKey.(interface{ Equal(any) bool })
	return ok && key != nil && k.Equal(key)
}

// runTunnel connects the relay, waits for pairing, reads the protocol
// choice, checks rights and consent, and hands the session to its handler.
func (a *Agent) runTunnel(ctx context.Context, c *controlConn, target string, req TunnelRequest, fwd *portfwd.Target) error {
	var so tunnelOptions
	if len(req.SOptions) > 0 {
		json.Unmarshal(req.SOptions, &so) // optional; bad options mean no options
	}
	var rights uint32
	if req.Rights != nil {
		rights = *req.Rights
	}
	info := session.Info{
		Rights: rights, Consent: req.Consent, UserID: req.UserID, Username: req.Username,
		RealName: req.RealName, RemoteIP: req.RemoteAddr, SessionID: req.SessionID, ViewOnly: req.DesktopViewOne,
	}
	d := websocket.Dialer{
		HandshakeTimeout: relayDialTimeout,
		TLSClientConfig:  relayTLS(c.certHash, c.certKey, req.ServerTLSHash),
		ReadBufferSize:   64 << 10,
		WriteBufferSize:  64 << 10,
	}
	dctx, cancel := context.WithTimeout(ctx, relayDialTimeout)
	ws, _, err := d.DialContext(dctx, target, nil)
	cancel()
	if err != nil {
		return fmt.Errorf("connect relay: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	var ch session.Channel = session.WebSocket(ws)
	defer func() { ch.Close() }()

	if err := waitPaired(ctx, ch); err != nil {
		return err
	}
	if fwd != nil {
		return a.forward(ctx, ch, info, req, *fwd)
	}
	proto, options, err := a.negotiate(ctx, ch, so)
	if err != nil {
		return err
	}
	info.Protocol, info.Options = proto, options
	if len(options) > 0 {
		var o struct {
			Consent uint32 `json:"consent"`
		}
		if json.Unmarshal(options, &o) == nil {
			info.Consent |= o.Consent
		}
	}
	handler := a.cfg.Sessions[proto]
	if handler.Serve == nil {
		sendRelayConsole(ctx, ch, fmt.Sprintf("Unsupported protocol %d", proto), 0)
		return fmt.Errorf("unsupported relay protocol %d", proto)
	}
	if why := refuse(info); why != "" {
		a.consoleToServer(info.SessionID, "Error: "+why)
		sendRelayConsole(ctx, ch, why, 2)
		return fmt.Errorf("session refused: %s", why)
	}
	if err := a.askConsent(ctx, ch, info, req, consent.ParseOptions(req.SOptions)); err != nil {
		return err
	}
	if handler.WebRTC.Allow && a.cfg.UpgradeSession != nil {
		// The handler lets the browser move its session onto a WebRTC
		// data channel (sessions.md §5); the wrapper does the switch-over.
		ch = a.cfg.UpgradeSession(ch, handler.WebRTC)
	}
	a.log.Info("relay session started", "protocol", proto, "user", info.UserID, "from", info.RemoteIP)
	kind := sessionKind(proto)
	a.audit(info, fmt.Sprintf("Started %s session", kind))
	a.emit(Event{Kind: EventSessionStarted, Name: kind})
	ctx, end := context.WithCancel(ctx)
	defer end()
	served := ch
	id := a.sessions.open(a, sessionOf(info, req.GuestName), kind, func() { end(); served.Close() })
	if info.Protocol == session.ProtoDesktop {
		defer a.joinDesktop(ctx, served, info, req, func() { end(); served.Close() })()
	}
	defer func() {
		a.sessions.close(a, id)
		a.audit(info, fmt.Sprintf("Ended %s session", kind))
		a.emit(Event{Kind: EventSessionEnded, Name: kind})
	}()
	return handler.Serve(ctx, ch, info)
}

// forward serves a port-forwarding tunnel (tcpport/udpport): no protocol
// negotiation, binary frames both ways. A request that carries rights came
// through control.ashx, which only checked remote control or view-only,
// so the agent checks RightsPortForward as meshrelay.ashx does.
func (a *Agent) forward(ctx context.Context, ch session.Channel, info session.Info, req TunnelRequest, t portfwd.Target) error {
	if req.Rights != nil && info.Rights&RightsPortForward == 0 {
		why := "No rights for port forwarding."
		a.consoleToServer(info.SessionID, "Error: "+why)
		sendRelayConsole(ctx, ch, why, 2)
		return fmt.Errorf("session refused: %s", why)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.log.Info("port forwarding started", "network", t.Network, "target", t.Addr(), "user", info.UserID, "from", info.RemoteIP)
	a.audit(info, fmt.Sprintf("Started %s forwarding to %s", t.Network, t.Addr()))
	a.emit(Event{Kind: EventSessionStarted, Name: t.Network})
	id := a.sessions.open(a, OpenSession{Kind: t.Network, UserID: info.UserID, Username: info.Username,
		GuestName: req.GuestName, RemoteAddr: info.RemoteIP, Target: t.Addr()}, t.Network,
		func() { cancel(); ch.Close() })
	defer func() {
		a.sessions.close(a, id)
		a.audit(info, fmt.Sprintf("Ended %s forwarding to %s", t.Network, t.Addr()))
		a.emit(Event{Kind: EventSessionEnded, Name: t.Network})
	}()
	f := a.cfg.Forwarder
	if f == nil {
		f = &portfwd.Forwarder{Logger: a.log}
	}
	err := f.Serve(ctx, ch, t)
	// clean: a side closed (the error, if any, is logged by OpenTunnel).
	a.log.Info("port forwarding ended", "network", t.Network, "target", t.Addr(), "user", info.UserID, "clean", err == nil)
	return err
}

// sessionKind names a protocol as MeshCentral's "sessions" messages do.
func sessionKind(proto int) string {
	switch proto {
	case session.ProtoDesktop:
		return "kvm"
	case session.ProtoFiles, session.ProtoFileTransfer:
		return "files"
	case session.ProtoTerminal, session.ProtoPowerShell, session.ProtoUserShell, session.ProtoUserPS:
		return "terminal"
	}
	return "tcp"
}

// audit records a user action in the device's event log on the server
// ({"action":"log"}, control.md §6.6), as the reference core does.
func (a *Agent) audit(info session.Info, msg string) {
	a.ServerLog(info, 0, nil, msg)
}

// ServerLog records a user's action in the device's event log on the
// server as meshcore.js's MeshServerLogEx does: msgid (when not 0) and
// args let MeshCentral's web UI show it translated, msg is the English
// text; the session's user, session id and address say who did it.
func (a *Agent) ServerLog(info session.Info, msgid int, args []any, msg string) {
	a.serverLog(info, "", msgid, args, msg)
}

// serverLog is ServerLog with the guest's name (a guest-sharing link's
// viewer) where there is one.
func (a *Agent) serverLog(info session.Info, guest string, msgid int, args []any, msg string) {
	m := map[string]any{"action": "log", "msg": msg}
	if msgid != 0 {
		m["msgid"] = msgid
		if args == nil {
			args = []any{}
		}
		m["msgArgs"] = args
	}
	for k, v := range map[string]string{"userid": info.UserID, "username": info.Username, "sessionid": info.SessionID,
		"remoteaddr": info.RemoteIP, "guestname": guest} {
		if v != "" {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	a.SendJSON(b)
}

// waitPaired reads until the relay's "c" (or "cr" when recording); anything
// before it is ignored, as the reference does (sessions.md §1.6).
func waitPaired(ctx context.Context, ch session.Channel) error {
	ctx, cancel := context.WithTimeout(ctx, relayPairTimeout)
	defer cancel()
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the relay to pair: %w", err)
		}
		if !f.Binary && (string(f.Data) == "c" || string(f.Data) == "cr") {
			return nil
		}
	}
}

// negotiate reads the client's options and protocol number (sessions.md
// §1.7), answering control messages that may come first.
func (a *Agent) negotiate(ctx context.Context, ch session.Channel, so tunnelOptions) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, relayChooseTimout)
	defer cancel()
	var options []byte
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return 0, nil, fmt.Errorf("waiting for the protocol: %w", err)
		}
		if f.Binary {
			continue
		}
		s := strings.TrimSpace(string(f.Data))
		if len(s) > 3 && s[0] == '{' {
			var m struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(f.Data, &m) != nil {
				continue
			}
			switch m.Type {
			case "options":
				options = append([]byte(nil), f.Data...)
			case "ping":
				ch.Write(ctx, session.Frame{Data: session.ControlJSON("pong")})
			case "rtt":
				ch.Write(ctx, f)
			case "close":
				return 0, nil, errors.New("client closed before choosing a protocol")
			}
			continue
		}
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 {
			return 0, nil, fmt.Errorf("bad protocol selection %q", s)
		}
		if len(so.Usages) > 0 && !slices.Contains(so.Usages, p) {
			continue // not allowed for this tunnel: keep waiting, as the reference
		}
		return p, options, nil
	}
}

// refuse returns why a session may not start, or "" when it may. Rights
// follow sessions.md §1.10; consent is askConsent's.
func refuse(info session.Info) string {
	var allowed bool
	switch info.Protocol {
	case session.ProtoTerminal, session.ProtoPowerShell, session.ProtoUserShell, session.ProtoUserPS:
		allowed = session.AllowTerminal(info.Rights)
	case session.ProtoDesktop:
		allowed = session.AllowDesktopView(info.Rights)
	case session.ProtoFiles:
		allowed = session.AllowFiles(info.Rights)
	case session.ProtoFileTransfer:
		allowed = true // the server checked the remote-control right (sessions.md §1.10)
	default:
		allowed = info.Rights&session.RightRemoteControl != 0
	}
	if !allowed {
		return "No rights for this session."
	}
	return ""
}

func sendRelayConsole(ctx context.Context, ch session.Channel, msg string, msgid int) {
	b, _ := json.Marshal(map[string]any{"ctrlChannel": session.CtrlChannel, "type": "console", "msg": msg, "msgid": msgid})
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ch.Write(wctx, session.Frame{Data: b})
}

// consoleToServer writes a console line to the user's session, as the
// reference does for refused tunnels.
func (a *Agent) consoleToServer(sessionID, text string) {
	m := map[string]any{"action": "msg", "type": "console", "value": text}
	if sessionID != "" {
		m["sessionid"] = sessionID
	}
	b, _ := json.Marshal(m)
	a.SendJSON(b)
}
