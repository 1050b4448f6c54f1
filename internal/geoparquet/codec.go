package geoparquet

import (
	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go/compress/snappy"
)

// fastSnappy is parquet-go's SNAPPY codec with the faster of the
// encoder's levels: the blocks are Snappy's format either way.
type fastSnappy struct{ snappy.Codec }

func (fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}
