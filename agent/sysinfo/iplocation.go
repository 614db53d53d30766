package sysinfo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// DefaultIPLocationURL is the public-IP location service meshcore.js asks
// (ipinfo.io's JSON), used only when the server asks (`iplocation`, sent
// when its domain has iplocation enabled). A .msh ipLocationUrl replaces it.
const DefaultIPLocationURL = "http://ipinfo.io/json"

// maxIPLocation bounds the answer read from the service.
const maxIPLocation = 64 << 10

// IPLocation asks the location service at rawURL ("" for the default) for
// this host's public IP and location, and returns its answer as
// MeshCentral stores it ({ip, loc, city, region, country, org, postal,
// ...}: string fields only, clipped).
func IPLocation(ctx context.Context, rawURL string) (map[string]any, error) {
	if rawURL == "" {
		rawURL = DefaultIPLocationURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("iplocation: %q is not an http(s) URL", rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("iplocation: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("iplocation: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("iplocation: %s answered %s", u.Host, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIPLocation))
	if err != nil {
		return nil, fmt.Errorf("iplocation: %w", err)
	}
	return ParseIPLocation(body)
}

// ParseIPLocation reads a location service's JSON answer; it must name
// the public IP and a "lat,long" location (what MeshCentral requires).
// Non-string fields are dropped, strings clipped.
func ParseIPLocation(body []byte) (map[string]any, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("iplocation: answer is not a JSON object: %w", err)
	}
	out := map[string]any{}
	for k, v := range raw {
		if s, ok := v.(string); ok && len(k) <= 64 && len(out) < 32 {
			out[k] = clip(s)
		}
	}
	ip, _ := out["ip"].(string)
	loc, _ := out["loc"].(string)
	if ip == "" || loc == "" {
		return nil, errors.New("iplocation: the answer has no ip and loc")
	}
	return out, nil
}
