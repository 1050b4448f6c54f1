//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time the process has used, user and system, all
// threads together: on a shared machine it measures the work where wall
// time measures the neighbours too.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
