//go:build !linux

package sysinfo

// gateways is not available without platform routing APIs; the UI then
// shows addresses without a gateway.
func gateways() (v4, v6 map[string]string) { return map[string]string{}, map[string]string{} }

func ifTypeSpeed(_ string, loop bool) (string, int64) {
	if loop {
		return "loopback", 0
	}
	return "ethernet", 0
}
