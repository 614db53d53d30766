package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// startDetached starts exe with args as a detached process of its own,
// which the SCM does not stop with the service. A running .exe cannot be
// deleted on Windows, so the uninstaller runs from a copy in the temporary
// folder (left there: it cannot delete itself either). Its output goes to
// logPath. It returns how it was started.
func startDetached(exe string, args []string, service, logPath string) (string, error) {
	copyPath := filepath.Join(os.TempDir(), fmt.Sprintf("meshagent-uninstall-%d.exe", os.Getpid()))
	if err := copyFile(exe, copyPath); err != nil {
		return "", err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The copy is not beside the .msh: name the installed one.
	args = append(args, "--msh="+strings.TrimSuffix(exe, ".exe")+".msh")
	cmd := exec.Command(copyPath, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &windows.SysProcAttr{HideWindow: true, CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pid := cmd.Process.Pid
	go cmd.Wait()
	return fmt.Sprintf("detached process %d from %s, log %s", pid, copyPath, logPath), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
