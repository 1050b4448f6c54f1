package geoparquet

import (
	"math"
	"slices"
)

// order returns the rows' indexes sorted along a Hilbert curve over the
// extent of their bounding boxes' centres; rows without a geometry come
// last, in their order.
func (w *Writer) order() []int {
	var minX, minY, maxX, maxY = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, r := range w.refs {
		if r.geo {
			minX, minY = min(minX, r.x), min(minY, r.y)
			maxX, maxY = max(maxX, r.x), max(maxY, r.y)
		}
	}
	const side = 1 << 16
	scale := func(v, lo, hi float64) uint32 {
		if hi <= lo {
			return 0
		}
		return uint32(min(side-1, math.Floor((v-lo)/(hi-lo)*side)))
	}
	// A distance along the curve takes 32 bits (side² cells), and so does
	// a row's index (Add's limit): sorting distance<<32 | index orders by
	// distance, then by index, as a stable sort would, and sorts plain
	// integers, which is several times faster.
	keys := make([]uint64, 0, len(w.refs))
	var rest []int
	for i, r := range w.refs {
		if r.geo {
			keys = append(keys, hilbert(side, scale(r.x, minX, maxX), scale(r.y, minY, maxY))<<32|uint64(i))
		} else {
			rest = append(rest, i)
		}
	}
	slices.Sort(keys)
	idx := make([]int, 0, len(w.refs))
	for _, k := range keys {
		idx = append(idx, int(k&math.MaxUint32))
	}
	return append(idx, rest...)
}

// hilbert returns the distance of cell (x, y) along the Hilbert curve
// filling a side×side grid, side a power of two.
func hilbert(side, x, y uint32) uint64 {
	var d uint64
	for s := side / 2; s > 0; s /= 2 {
		var rx, ry uint32
		if x&s != 0 {
			rx = 1
		}
		if y&s != 0 {
			ry = 1
		}
		d += uint64(s) * uint64(s) * uint64((3*rx)^ry)
		// Rotate the quadrant so the curve continues.
		if ry == 0 {
			if rx == 1 {
				x, y = side-1-x, side-1-y
			}
			x, y = y, x
		}
	}
	return d
}
