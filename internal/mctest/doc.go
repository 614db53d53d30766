// Package mctest is the interop test harness: it installs and runs the real
// MeshCentral 1.1.55 server and the real C MeshAgent on loopback so that tests
// in other packages can check our agent and server-lite against them.
//
// Everything stays on 127.0.0.1: the server is configured without scanners,
// self-update, backups, push notifications or outside timestamp servers, and
// only loopback peers are allowed.
//
// Typical use in a test package:
//
//	func TestMain(m *testing.M) { os.Exit(mctest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		srv := mctest.Shared(t)
//		meshID := srv.AddDeviceGroup(t, "g")
//		agent := mctest.StartCAgent(t, srv.MSH(t, meshID))
//		srv.WaitDevice(t, mctest.OnlineIn(meshID), time.Minute)
//		_ = agent
//	}
package mctest
