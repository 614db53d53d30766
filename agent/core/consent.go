package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/proto/session"
)

// noDialogText is MeshCentral's own reason (message-box.js) when no
// prompt can be shown; the viewer shows "Denied" for every msgid 2.
const noDialogText = "This system cannot display a user dialog box when a user is not logged in"

// who names the requesting user as meshcore.js does (realname or
// username, with " - guest" for a sharing link's guest).
func who(req TunnelRequest) consent.Who {
	real, user := req.RealName, req.Username
	if real == "" {
		real = user
	}
	if req.GuestName != "" {
		real += " - " + req.GuestName
		user += " - " + req.GuestName
	}
	return consent.Who{RealName: real, Username: user}
}

// LogEvent logs a translated event for a session (msgid and its English
// text with the remote address), for session handlers that act on the
// user's behalf (e.g. the desktop's lock).
func (a *Agent) LogEvent(info session.Info, msgID int) {
	a.serverLog(info, "", msgID, nil, fmt.Sprintf("%s (%s)", consent.LogText[msgID], info.RemoteIP))
}

// askConsent runs the consent policy (package consent) for a negotiated
// session before its handler starts. It returns an error when the session
// must not start, after telling the viewer and the event log why.
func (a *Agent) askConsent(ctx context.Context, ch session.Channel, info session.Info, req TunnelRequest, so consent.Options) error {
	k := consent.KindOf(info.Protocol)
	if k == consent.Other {
		return nil
	}
	bits := consent.BitsOf(k)
	w := who(req)
	ui := a.cfg.ConsentUI
	if id, ok := info.TSID(); ok {
		ctx = consent.WithTSID(ctx, id) // prompt the session the viewer chose
	}
	prompted := false
	if info.Consent&bits.Prompt != 0 && !so.AutoAccept(k, a.presence()) {
		sendRelayConsole(ctx, ch, consent.Waiting, 1)
		ans, err := consent.Denied, error(consent.ErrNoUI)
		if ui != nil {
			ans, err = ui.Ask(ctx, so.PromptFor(k, w))
		}
		if err == nil && ans == consent.TimedOut && so.AutoAcceptOnTimeout {
			ans = consent.Accepted
		}
		if err != nil || ans != consent.Accepted {
			reason := ans.String()
			if err != nil {
				reason = noDialogText
				if !errors.Is(err, consent.ErrNoUI) {
					reason = err.Error()
				}
			}
			id := consent.RejectedID(k)
			a.serverLog(info, req.GuestName, id, nil, fmt.Sprintf("%s (%s)", consent.LogText[id], info.RemoteIP))
			sendRelayConsole(ctx, ch, reason, 2)
			a.log.Info("session refused by the local user", "protocol", info.Protocol, "user", info.UserID, "answer", reason)
			return fmt.Errorf("session refused: consent %s", reason)
		}
		id := consent.AcceptedID(k)
		a.serverLog(info, req.GuestName, id, nil, fmt.Sprintf("%s (%s)", consent.LogText[id], info.RemoteIP))
		clearConsole(ctx, ch)
		prompted = true
	}
	notify := info.Consent&bits.Notify != 0
	if notify && ui != nil {
		title, msg := so.NotificationFor(k, w)
		go func() {
			if err := ui.Notify(context.WithoutCancel(ctx), title, msg); err != nil {
				a.log.Info("session notification not shown", "err", err)
			}
		}()
	}
	if id := consent.StartedID(k, notify); id != 0 && !prompted {
		a.serverLog(info, req.GuestName, id, nil, fmt.Sprintf("%s (%s)", consent.LogText[id], info.RemoteIP))
	}
	return nil
}

func (a *Agent) presence() consent.Presence {
	if a.cfg.Presence != nil {
		return a.cfg.Presence
	}
	return consent.System{}
}

// clearConsole removes the viewer's console message (msg null, msgid 0),
// as meshcore.js does once the user accepted.
func clearConsole(ctx context.Context, ch session.Channel) {
	b, _ := json.Marshal(map[string]any{"ctrlChannel": session.CtrlChannel, "type": "console", "msg": nil, "msgid": 0})
	ch.Write(ctx, session.Frame{Data: b})
}

// desktops tracks the open desktop sessions for what they share: the
// privacy bar naming every viewer, and the viewer metadata (who else is
// connected) sent to each of them.
type desktops struct {
	mu      sync.Mutex
	next    int
	open    map[int]*desktopViewer
	bar     consent.Bar
	barText string // the privacy bar template of the session that showed it
}

type desktopViewer struct {
	info  session.Info
	guest string
	who   consent.Who
	ch    session.Channel
	bar   bool // this session asked for the privacy bar (0x40)
	end   func()
}

// join records a desktop session, updates everyone's metadata and the
// privacy bar, and returns the function to call when it ends.
func (a *Agent) joinDesktop(ctx context.Context, ch session.Channel, info session.Info, req TunnelRequest, end func()) func() {
	d := &a.desktops
	d.mu.Lock()
	if d.open == nil {
		d.open = map[int]*desktopViewer{}
	}
	d.next++
	id := d.next
	v := &desktopViewer{info: info, guest: req.GuestName, who: who(req), ch: ch, end: end,
		bar: info.Consent&session.ConsentToolbar != 0}
	d.open[id] = v
	if v.bar {
		d.barText = req.PrivacyBarText
	}
	d.mu.Unlock()
	a.desktopChanged(ctx, v)
	return func() {
		d.mu.Lock()
		delete(d.open, id)
		d.mu.Unlock()
		a.desktopChanged(context.WithoutCancel(ctx), nil)
	}
}

// desktopChanged sends the viewer metadata to every desktop session and
// shows, updates or removes the privacy bar. joined is the session that
// just started (nil when one ended): its bar outcome is logged for it.
func (a *Agent) desktopChanged(ctx context.Context, joined *desktopViewer) {
	d := &a.desktops
	d.mu.Lock()
	users := map[string]int{}
	var chans []session.Channel
	var real, names []string
	wantBar := false
	ids := make([]int, 0, len(d.open))
	for id := range d.open {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		v := d.open[id]
		uid := v.info.UserID
		if v.guest != "" {
			uid += "/guest:" + v.guest
		}
		users[uid]++
		chans = append(chans, v.ch)
		real = append(real, v.who.RealName)
		names = append(names, v.who.Username)
		wantBar = wantBar || v.bar
	}
	sort.Strings(real)
	sort.Strings(names)
	ui := a.cfg.ConsentUI
	var barErr error
	switch {
	case wantBar && ui != nil:
		text := consent.PrivacyBarText(d.barText, real, names)
		if d.bar != nil {
			barErr = d.bar.SetText(text)
		} else {
			d.bar, barErr = ui.ShowBar(text, a.barDisconnect)
		}
	case wantBar:
		barErr = consent.ErrNoUI
	case d.bar != nil:
		d.bar.Close()
		d.bar = nil
	}
	d.mu.Unlock()
	if joined != nil && joined.bar {
		id := consent.MsgBarShown
		if barErr != nil {
			id = consent.MsgBarFailed
			a.log.Info("privacy bar not shown", "err", barErr)
		}
		a.serverLog(joined.info, joined.guest, id, nil, fmt.Sprintf("%s (%s)", consent.LogText[id], joined.info.RemoteIP))
	}
	b, _ := json.Marshal(map[string]any{"ctrlChannel": session.CtrlChannel, "type": "metadata", "users": users})
	for _, ch := range chans {
		ch.Write(ctx, session.Frame{Data: b})
	}
}

// barDisconnect runs when the local user clicks the privacy bar's
// disconnect button: every desktop session ends, as meshcore.js does.
func (a *Agent) barDisconnect() {
	d := &a.desktops
	d.mu.Lock()
	var ends []*desktopViewer
	for _, v := range d.open {
		ends = append(ends, v)
	}
	d.mu.Unlock()
	for _, v := range ends {
		if v.bar {
			a.serverLog(v.info, v.guest, consent.MsgBarClosedByUser, nil,
				fmt.Sprintf("%s (%s)", consent.LogText[consent.MsgBarClosedByUser], v.info.RemoteIP))
		}
		v.end()
	}
}
