//go:build !windows

package main

// runUnderSCM is Windows-only: elsewhere kardianos/service runs the agent.
func runUnderSCM(string, *agentService) (bool, error) { return false, nil }
