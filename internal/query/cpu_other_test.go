//go:build !linux

package query

import "time"

func threadCPU() time.Duration { return 0 }
