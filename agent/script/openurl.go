package script

import (
	"errors"
	"fmt"
	"net/url"
)

// checkOpenURL accepts only web addresses: the URL comes from the server
// and is opened in a user's session, where file: or custom schemes could
// start local programs.
func checkOpenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("open URL %q: only http and https addresses are opened", raw)
	}
	return nil
}

var errNoConsoleUser = errors.New("no user is logged in")
