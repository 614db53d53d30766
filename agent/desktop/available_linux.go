package desktop

import "github.com/meshgo/meshagent/agent/wayland"

// waylandAvailable connects to each discovered compositor and reports
// whether one offers what openWayland needs.
func waylandAvailable() bool {
	for _, t := range discoverWayland(Options{}) {
		c, err := wayland.Dial(t.path)
		if err != nil {
			continue
		}
		_, shm := c.Find(wayland.IfShm)
		_, sc := c.Find(wayland.IfScreencopy)
		c.Close()
		if shm && sc {
			return true
		}
	}
	return gnomeAvailable()
}
