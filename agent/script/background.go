package script

import (
	"strings"
	"sync"
)

// savedBackground is the desktop background the toolbar's "toggle
// background" removed, to put back on the next toggle; process-wide, as
// the C agent keeps it.
var savedBackground struct {
	sync.Mutex
	uri string
}

// gsettingsValue unquotes a gsettings string value ('file:///x.jpg').
func gsettingsValue(out string) string {
	s := strings.TrimSpace(out)
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		s = s[1 : len(s)-1]
	}
	return s
}

// backgroundRemoved reports whether a picture-uri means no picture.
func backgroundRemoved(uri string) bool { return uri == "" || uri == "file:///dev/null" }
