//go:build unix

// Package cputime measures the CPU time a process has used. It imports
// nothing of this module, so every package's tests can use it.
package cputime

import (
	"syscall"
	"time"
)

// Used is the CPU time the process has used, user and system, all
// threads together: on a shared machine it measures the work where wall
// time measures the neighbours too.
func Used() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
