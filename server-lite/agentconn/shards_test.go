package agentconn

import (
	"fmt"
	"testing"
)

func TestConnShards(t *testing.T) {
	cs := newConnShards()
	a1, a2, b := &conn{nodeID: "node//a"}, &conn{nodeID: "node//a"}, &conn{nodeID: "node//b"}
	for _, st := range []struct {
		op      string
		c       *conn
		wantOld *conn // put: the replaced one
		wantOK  bool  // remove: removed
	}{
		{"put", a1, nil, false},
		{"put", b, nil, false},
		{"put", a2, a1, false},     // a reconnect replaces the live one
		{"remove", a1, nil, false}, // the replaced one's end leaves the new one alone
		{"remove", a2, nil, true},
		{"remove", a2, nil, false},
	} {
		switch st.op {
		case "put":
			if old := cs.put(st.c); old != st.wantOld {
				t.Fatalf("put %p: replaced %p, want %p", st.c, old, st.wantOld)
			}
		case "remove":
			if ok := cs.remove(st.c); ok != st.wantOK {
				t.Fatalf("remove %p: %v, want %v", st.c, ok, st.wantOK)
			}
		}
	}
	if cs.get("node//a") != nil || cs.get("node//b") != b {
		t.Fatalf("get: a %p, b %p", cs.get("node//a"), cs.get("node//b"))
	}
	for i := range 1000 {
		cs.put(&conn{nodeID: fmt.Sprintf("node//%d", i)})
	}
	if n := len(cs.all()); n != 1001 {
		t.Fatalf("all: %d connections, want 1001", n)
	}
}
