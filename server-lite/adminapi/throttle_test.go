package adminapi

import (
	"testing"
	"time"
)

func TestLoginThrottle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name   string
		lim    LoginLimits
		steps  []string // "f ip acct" fail, "s ip acct" success, "r ip acct" must be refused, "+d" advance d
		reason string
	}{
		{"address limit", LoginLimits{AddrFailures: 2, AccountFailures: -1},
			[]string{"f a x", "f a y", "r a z", "s b z"}, ""},
		{"account limit across addresses", LoginLimits{AddrFailures: -1, AccountFailures: 2},
			[]string{"f a X", "f b x", "r c x", "s c y"}, ""},
		{"window slides", LoginLimits{AddrFailures: 2, AccountFailures: -1, Window: time.Minute},
			[]string{"f a x", "+40s", "f a x", "r a x", "+30s", "s a x", "f a x", "r a x"}, ""},
		{"success does not count", LoginLimits{AddrFailures: 2},
			[]string{"s a x", "s a x", "s a x", "f a x", "s a x"}, ""},
		{"disabled", LoginLimits{AddrFailures: -1, AccountFailures: -1},
			[]string{"f a x", "f a x", "f a x", "f a x", "s a x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newLoginThrottle(tc.lim)
			clock := now
			th.now = func() time.Time { return clock }
			for i, st := range tc.steps {
				if st[0] == '+' {
					d, _ := time.ParseDuration(st[1:])
					clock = clock.Add(d)
					continue
				}
				var op, ip, acct string
				op, ip, acct = st[:1], st[2:3], st[4:]
				a, why := th.begin(ip, acct)
				if op == "r" {
					if a != nil {
						t.Fatalf("step %d %q admitted", i, st)
					}
					continue
				}
				if a == nil {
					t.Fatalf("step %d %q refused (%s)", i, st, why)
				}
				a.done(op == "s")
			}
		})
	}
	// Attempts in flight count: with a limit of 3, a fourth parallel
	// attempt is refused before any of the first three is decided.
	th := newLoginThrottle(LoginLimits{AddrFailures: 3, AccountFailures: -1})
	var as []*attempt
	for range 3 {
		a, _ := th.begin("ip", "u")
		as = append(as, a)
	}
	if a, why := th.begin("ip", "u"); a != nil || why != throttledAddr {
		t.Errorf("fourth parallel attempt: %v %q", a, why)
	}
	for _, a := range as {
		a.done(true)
	}
	if a, _ := th.begin("ip", "u"); a == nil {
		t.Error("refused after three successes")
	}
}
