// Command loadgen measures server-lite's and MeshCentral's handshake
// throughput, CPU and memory per agent. It reads /proc and is Linux-only;
// see main.go.
package main
