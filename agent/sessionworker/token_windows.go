package sessionworker

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// IsSystem reports whether this process runs as LocalSystem, i.e. as the
// installed service in session 0, where desktops, clipboards and message
// boxes of users are out of reach and a session worker is needed.
func IsSystem() bool {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return false
	}
	return u.User.Sid.IsWellKnown(windows.WinLocalSystemSid)
}

// ConsoleSession is the session attached to the physical console
// (NoConsole while it is switching).
func ConsoleSession() uint32 { return windows.WTSGetActiveConsoleSessionId() }

// OwnSession is the session this process runs in.
func OwnSession() (uint32, error) {
	var id uint32
	if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id); err != nil {
		return 0, fmt.Errorf("ProcessIdToSessionId: %w", err)
	}
	return id, nil
}

// TokenFor returns a primary token for a worker at t: the session user's
// own token (WTSQueryUserToken, which only LocalSystem may call), or a
// duplicate of this process's token with its session id set to
// t.Session (SetTokenInformation(TokenSessionId) needs SeTcbPrivilege,
// which LocalSystem holds). The caller closes it.
func TokenFor(t Target) (windows.Token, error) {
	if t.AsUser {
		var tok windows.Token
		if err := windows.WTSQueryUserToken(t.Session, &tok); err != nil {
			return 0, fmt.Errorf("WTSQueryUserToken(%d): %w", t.Session, err)
		}
		return tok, nil
	}
	tok, err := DuplicateOwnToken()
	if err != nil {
		return 0, err
	}
	id := t.Session
	if err := windows.SetTokenInformation(tok, windows.TokenSessionId, (*byte)(unsafe.Pointer(&id)), uint32(unsafe.Sizeof(id))); err != nil {
		tok.Close()
		return 0, fmt.Errorf("SetTokenInformation(TokenSessionId=%d): %w", id, err)
	}
	return tok, nil
}

// DuplicateOwnToken returns a primary token copied from this process's.
func DuplicateOwnToken() (windows.Token, error) {
	var own windows.Token
	if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_DUPLICATE|windows.TOKEN_QUERY|windows.TOKEN_ASSIGN_PRIMARY|windows.TOKEN_ADJUST_DEFAULT|windows.TOKEN_ADJUST_SESSIONID, &own); err != nil {
		return 0, fmt.Errorf("OpenProcessToken: %w", err)
	}
	defer own.Close()
	var tok windows.Token
	if err := windows.DuplicateTokenEx(own, windows.MAXIMUM_ALLOWED, nil, windows.SecurityImpersonation, windows.TokenPrimary, &tok); err != nil {
		return 0, fmt.Errorf("DuplicateTokenEx: %w", err)
	}
	return tok, nil
}

// tokenSIDs returns the SIDs a worker started with tok is admitted to its
// pipe by: the token's user and, when it has one, its logon session SID
// (the group Windows gives every process of one interactive logon).
func tokenSIDs(tok windows.Token) ([]*windows.SID, error) {
	u, err := tok.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("token user: %w", err)
	}
	out := []*windows.SID{u.User.Sid}
	if g, err := tok.GetTokenGroups(); err == nil {
		for _, ga := range g.AllGroups() {
			if ga.Attributes&windows.SE_GROUP_LOGON_ID == windows.SE_GROUP_LOGON_ID {
				out = append(out, ga.Sid)
			}
		}
	}
	return out, nil
}
