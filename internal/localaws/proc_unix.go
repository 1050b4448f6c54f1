//go:build unix && !linux

package localaws

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in a process group of its own, so that it and anything it
// spawns can be signalled together.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
