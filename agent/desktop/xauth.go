package desktop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// xauthEntry is one record of an Xauthority file.
type xauthEntry struct {
	family  uint16
	address string
	number  string
	name    string
	data    []byte
}

// Xauthority families (Xauth.h): the ones that can match a local display.
const (
	familyLocal = 256
	familyWild  = 65535
)

const cookieName = "MIT-MAGIC-COOKIE-1"

// parseXauth reads an Xauthority file: records of a big-endian u16 family
// followed by four u16-length-prefixed fields (address, display number,
// auth name, auth data). A truncated tail is ignored, like libXau does.
func parseXauth(b []byte) []xauthEntry {
	var out []xauthEntry
	r := bytes.NewReader(b)
	field := func() ([]byte, bool) {
		var n uint16
		if binary.Read(r, binary.BigEndian, &n) != nil || int(n) > r.Len() {
			return nil, false
		}
		v := make([]byte, n)
		_, err := io.ReadFull(r, v)
		return v, err == nil
	}
	for r.Len() > 0 {
		var e xauthEntry
		if binary.Read(r, binary.BigEndian, &e.family) != nil {
			break
		}
		addr, ok1 := field()
		num, ok2 := field()
		name, ok3 := field()
		data, ok4 := field()
		if !(ok1 && ok2 && ok3 && ok4) {
			break
		}
		e.address, e.number, e.name, e.data = string(addr), string(num), string(name), data
		out = append(out, e)
	}
	return out
}

// findCookie returns the MIT-MAGIC-COOKIE-1 for display number num from an
// Xauthority file. Entries for this host (or wildcards) are preferred; a
// local entry for another hostname is still accepted, because an X server
// started with -auth and a cookie written under a since-changed hostname is
// common on appliances and containers.
func findCookie(path, num string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read xauthority: %w", err)
	}
	host, _ := os.Hostname()
	var fallback []byte
	for _, e := range parseXauth(b) {
		if e.name != cookieName || len(e.data) != 16 || (e.number != "" && e.number != num) {
			continue
		}
		if e.family == familyWild || (e.family == familyLocal && e.address == host) {
			return e.data, nil
		}
		if fallback == nil && e.family == familyLocal {
			fallback = e.data
		}
	}
	if fallback != nil {
		return fallback, nil
	}
	return nil, fmt.Errorf("no %s for display :%s in %s", cookieName, num, path)
}
