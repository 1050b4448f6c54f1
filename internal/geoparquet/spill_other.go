//go:build !unix

package geoparquet

import (
	"errors"
	"os"
)

// mapSpill fails where there is no mmap: rows are read one by one.
func mapSpill(*os.File, int64) ([]byte, func() error, error) {
	return nil, nil, errors.ErrUnsupported
}
