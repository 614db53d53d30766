package app

import (
	"net/http"
	"strings"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// lockDownloads is MeshCentral's lockAgentDownload (webserver.js
// handleMeshAgentRequest, getMshFromRequest): agent binaries, install
// scripts and .msh files only for a signed-in browser session (401
// otherwise), and a group's .msh — inside a download or alone — only for
// a user with the "edit group" right (1) on that group. Without it anyone
// who learns a group id can enrol a machine into it.
func (a *App) lockDownloads(next http.Handler, groupParam func(r *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.API.SessionUser(r)
		if !ok {
			http.Error(w, "Sign in to download agents (lockAgentDownload)", http.StatusUnauthorized)
			return
		}
		if g := groupParam(r); g != "" {
			if !strings.HasPrefix(g, "mesh//") {
				g = "mesh//" + g
			}
			if !accounts.EffectiveRights(u, g, "").Has(1) {
				http.Error(w, "No right to this device group's agent", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// downloadGroup is the group a /meshagents request embeds: meshid, or id
// with meshinstall.
func downloadGroup(r *http.Request) string {
	q := r.URL.Query()
	if g := q.Get("meshid"); g != "" {
		return g
	}
	if q.Get("meshinstall") != "" {
		return q.Get("id")
	}
	return ""
}

// settingsGroup is the group of a /meshsettings request.
func settingsGroup(r *http.Request) string { return r.URL.Query().Get("id") }
