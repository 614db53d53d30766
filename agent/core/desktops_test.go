package core

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/proto/session"
)

// barUI records the privacy bar's life.
type barUI struct {
	mu      sync.Mutex
	texts   []string
	closed  bool
	onClick func()
}

func (u *barUI) Ask(context.Context, consent.Prompt) (consent.Answer, error) {
	return consent.Denied, nil
}
func (u *barUI) Notify(context.Context, string, string) error { return nil }
func (u *barUI) ShowBar(text string, click func()) (consent.Bar, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.texts, u.closed, u.onClick = append(u.texts, text), false, click
	return u, nil
}
func (u *barUI) SetText(text string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.texts = append(u.texts, text)
	return nil
}
func (u *barUI) Close() error { u.mu.Lock(); u.closed = true; u.mu.Unlock(); return nil }

// Every desktop viewer is told who is connected (metadata, as meshcore.js
// sends it), the privacy bar names them all, follows joins and leaves,
// and its Disconnect ends every desktop session.
func TestDesktopsMetadataAndBar(t *testing.T) {
	ui := &barUI{}
	a := &Agent{log: slog.New(slog.DiscardHandler), cfg: Config{ConsentUI: ui}}
	ctx := context.Background()
	type viewer struct {
		peer  session.Channel
		ended chan struct{}
		leave func()
	}
	join := func(user, real string, bar bool) *viewer {
		mine, peer := session.Pipe(16)
		v := &viewer{peer: peer, ended: make(chan struct{})}
		info := session.Info{Protocol: session.ProtoDesktop, UserID: "user//" + user}
		if bar {
			info.Consent = session.ConsentToolbar
		}
		var once sync.Once
		v.leave = a.joinDesktop(ctx, mine, info, TunnelRequest{Username: user, RealName: real}, func() { once.Do(func() { close(v.ended) }) })
		return v
	}
	metadata := func(v *viewer) map[string]int {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		f, err := v.peer.Read(rctx)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Type  string         `json:"type"`
			Users map[string]int `json:"users"`
		}
		if json.Unmarshal(f.Data, &m) != nil || m.Type != "metadata" {
			t.Fatalf("not metadata: %s", f.Data)
		}
		return m.Users
	}
	ann := join("ann", "Ann A", true)
	if u := metadata(ann); len(u) != 1 || u["user//ann"] != 1 {
		t.Fatalf("metadata %v", u)
	}
	bob := join("bob", "", false)
	if u := metadata(ann); len(u) != 2 || u["user//bob"] != 1 {
		t.Fatalf("ann's metadata after bob joined %v", u)
	}
	if u := metadata(bob); len(u) != 2 {
		t.Fatalf("bob's metadata %v", u)
	}
	ui.mu.Lock()
	texts := append([]string(nil), ui.texts...)
	ui.mu.Unlock()
	if len(texts) != 2 || texts[0] != "Sharing desktop with: Ann A" || texts[1] != "Sharing desktop with: Ann A, bob" {
		t.Fatalf("bar texts %q", texts)
	}
	ui.onClick() // the local user's Disconnect
	for _, v := range []*viewer{ann, bob} {
		select {
		case <-v.ended:
		case <-time.After(5 * time.Second):
			t.Fatal("Disconnect did not end every desktop session")
		}
	}
	ann.leave()
	metadata(bob)
	bob.leave()
	ui.mu.Lock()
	defer ui.mu.Unlock()
	if !ui.closed {
		t.Error("the bar stayed after the last viewer left")
	}
}
