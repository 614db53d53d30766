package adminapi

// Size and count limits on what administrators send (issue 20, finding 1).
// Every check runs before the store is touched: nothing slow, and nothing
// of unbounded size, may run inside a bbolt write transaction, which is the
// single writer for the whole server.

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits on admin-supplied fields, in characters (runes) unless noted. They
// are also listed in server-lite/README.md.
const (
	// MaxDeviceName bounds a device name set by changedevice (MeshCentral's
	// web UI allows 64; its API checks nothing).
	MaxDeviceName = 256
	// MaxTags bounds the tags of one device; MaxTagLen one tag (MeshCentral's
	// UI limit, admin-api.md §2.6).
	MaxTags   = 64
	MaxTagLen = 63
	// MaxGroupName and MaxGroupDesc bound createmesh's fields.
	MaxGroupName = 128
	MaxGroupDesc = 1024
	// MaxTokenName bounds a login token's name.
	MaxTokenName = 100
	// MaxNodeIDs bounds the devices one request may name.
	MaxNodeIDs = 10000
)

// fieldError is a refusal that names the field and the limit, returned to
// the client as the reply's result.
type fieldError struct{ msg string }

func (e fieldError) Error() string { return e.msg }

func tooLong(field string, max int) error {
	return fieldError{fmt.Sprintf("Invalid %s: longer than %d characters", field, max)}
}

// checkLen refuses s when longer than max runes or not valid UTF-8.
func checkLen(field, s string, max int) error {
	if len(s) > 4*max || utf8.RuneCountInString(s) > max {
		return tooLong(field, max)
	}
	if !utf8.ValidString(s) {
		return fieldError{"Invalid " + field + ": not UTF-8"}
	}
	return nil
}

// parseTags accepts an array or a comma-separated string; tags are trimmed,
// empty ones dropped, de-duplicated and sorted (admin-api.md §2.6). More
// than MaxTags entries, or one longer than MaxTagLen, is refused with an
// error naming the limit. It is linear apart from the sort of at most
// MaxTags entries, and runs before any store transaction.
func parseTags(r req) ([]string, error) {
	var raw []string
	if a, ok := r["tags"].([]any); ok {
		// Count before converting, so 100 000 entries cost one comparison.
		if len(a) > MaxTags {
			return nil, fieldError{fmt.Sprintf("Invalid tags: more than %d", MaxTags)}
		}
		raw, _ = r.strs("tags")
	} else if s, ok := r.str("tags"); ok {
		if strings.Count(s, ",") >= MaxTags {
			return nil, fieldError{fmt.Sprintf("Invalid tags: more than %d", MaxTags)}
		}
		raw = strings.Split(s, ",")
	}
	seen := make(map[string]struct{}, len(raw))
	out := make([]string, 0, len(raw))
	for _, t := range raw {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if err := checkLen("tag", t, MaxTagLen); err != nil {
			return nil, err
		}
		if _, dup := seen[t]; !dup {
			seen[t] = struct{}{}
			out = append(out, t)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
