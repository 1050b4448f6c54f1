//go:build linux

package localaws

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in a process group of its own, so that it and anything it
// spawns can be signalled together, and has the kernel kill it if the thread that started
// it dies, so a killed test binary leaves no servers behind.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
