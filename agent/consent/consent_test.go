package consent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

type presence struct {
	active, locked []string
	err            error
	asked          *int
}

func (p presence) Users() ([]string, []string, error) {
	if p.asked != nil {
		*p.asked++
	}
	return p.active, p.locked, p.err
}

func TestAutoAccept(t *testing.T) {
	nobody := presence{}
	alice := presence{active: []string{"alice"}}
	aliceLocked := presence{active: []string{"alice"}, locked: []string{"alice"}}
	twoOneLocked := presence{active: []string{"alice", "bob"}, locked: []string{"alice"}}
	broken := presence{err: errors.New("no utmp")}
	for _, tc := range []struct {
		name string
		so   string
		k    Kind
		p    Presence
		want bool
	}{
		{"no option", `{}`, Desktop, nobody, false},
		{"on timeout is not auto-accept", `{"consentAutoAccept":true}`, Desktop, nobody, false},
		{"if no user, nobody", `{"consentAutoAcceptIfNoUser":true}`, Terminal, nobody, true},
		{"if no user, alice", `{"consentAutoAcceptIfNoUser":true}`, Terminal, alice, false},
		{"desktop option for files", `{"consentAutoAcceptIfDesktopNoUser":true}`, Files, nobody, false},
		{"desktop option for desktop", `{"consentAutoAcceptIfDesktopNoUser":true}`, Desktop, nobody, true},
		{"files typo spelling", `{"consentAautoAcceptIfFileNoUser":true}`, Files, nobody, true},
		{"if locked, nobody", `{"consentAutoAcceptIfLocked":true}`, Desktop, nobody, false},
		{"if locked, alice unlocked", `{"consentAutoAcceptIfLocked":true}`, Desktop, alice, false},
		{"if locked, alice locked", `{"consentAutoAcceptIfTerminalLocked":true}`, Terminal, aliceLocked, true},
		{"if locked, one of two", `{"consentAutoAcceptIfLocked":true}`, Desktop, twoOneLocked, false},
		{"presence fails", `{"consentAutoAcceptIfNoUser":true}`, Desktop, broken, false},
		{"bad JSON", `{"consentAutoAcceptIfNoUser":`, Desktop, nobody, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseOptions([]byte(tc.so)).AutoAccept(tc.k, tc.p); got != tc.want {
				t.Fatalf("AutoAccept = %v, want %v", got, tc.want)
			}
		})
	}
	n := 0
	ParseOptions([]byte(`{}`)).AutoAccept(Desktop, presence{asked: &n})
	if n != 0 {
		t.Fatal("presence consulted without an auto-accept option")
	}
}

func TestTexts(t *testing.T) {
	who := Who{RealName: "Ann Admin", Username: "admin"}
	o := ParseOptions(nil)
	p := o.PromptFor(Desktop, who)
	if p.Title != "MeshCentral" || p.Message != "Ann Admin requesting remote desktop access. Grant access?" || p.Timeout != 30*time.Second || p.Allow != "Allow" || p.Deny != "Deny" {
		t.Fatalf("default prompt %+v", p)
	}
	o = ParseOptions([]byte(`{"consentTitle":"Corp","consentMsgTerminal":"{1} ({0}) wants a shell","consentTimeout":5,"notifyTitle":"N","notifyMsgFiles":"{0} is in your files"}`))
	if p := o.PromptFor(Terminal, who); p.Title != "Corp" || p.Message != "admin (Ann Admin) wants a shell" || p.Timeout != 5*time.Second {
		t.Fatalf("custom prompt %+v", p)
	}
	if ti, m := o.NotificationFor(Files, who); ti != "N" || m != "Ann Admin is in your files" {
		t.Fatalf("custom notification %q %q", ti, m)
	}
	if _, m := ParseOptions(nil).NotificationFor(Terminal, who); m != "Ann Admin started a remote terminal session." {
		t.Fatalf("terminal notification %q", m)
	}
	if got := PrivacyBarText("", []string{"Ann", "Bob"}, []string{"a", "b"}); got != "Sharing desktop with: Ann, Bob" {
		t.Fatalf("bar %q", got)
	}
	if got := PrivacyBarText("{1} watching", nil, []string{"a", "b"}); got != "a, b watching" {
		t.Fatalf("bar %q", got)
	}
}

func TestKindsAndIDs(t *testing.T) {
	for _, tc := range []struct {
		proto          int
		k              Kind
		bits           Bits
		accept, reject int
	}{
		{session.ProtoDesktop, Desktop, Bits{0x01, 0x08}, 30, 34},
		{session.ProtoTerminal, Terminal, Bits{0x02, 0x10}, 27, 28},
		{session.ProtoUserShell, Terminal, Bits{0x02, 0x10}, 27, 28},
		{session.ProtoFiles, Files, Bits{0x04, 0x20}, 40, 41},
		{session.ProtoFileTransfer, Other, Bits{}, 0, 0},
	} {
		k := KindOf(tc.proto)
		if k != tc.k || BitsOf(k) != tc.bits || AcceptedID(k) != tc.accept || RejectedID(k) != tc.reject {
			t.Errorf("proto %d: kind %v bits %+v ids %d/%d", tc.proto, k, BitsOf(k), AcceptedID(k), RejectedID(k))
		}
	}
	if StartedID(Desktop, true) != 35 || StartedID(Desktop, false) != 36 || StartedID(Files, true) != 42 || StartedID(Files, false) != 43 || StartedID(Terminal, true) != 0 {
		t.Error("started ids")
	}
}

// The viewer's chosen session travels in the context to the UI; without
// one the UI's default (the console session) applies.
func TestTSIDContext(t *testing.T) {
	if _, ok := TSIDFrom(context.Background()); ok {
		t.Error("a plain context carries a session")
	}
	for _, id := range []uint32{0, 2, 4294967295} {
		if got, ok := TSIDFrom(WithTSID(context.Background(), id)); !ok || got != id {
			t.Errorf("TSIDFrom(WithTSID(%d)) = %d, %v", id, got, ok)
		}
	}
}
