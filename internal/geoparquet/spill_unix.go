//go:build unix

package geoparquet

import (
	"errors"
	"math"
	"os"
	"syscall"
)

// mapSpill maps the first size bytes of the spill file read-only.
func mapSpill(f *os.File, size int64) ([]byte, func() error, error) {
	if size <= 0 || size > math.MaxInt {
		return nil, nil, errors.New("geoparquet: spill not mappable")
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
