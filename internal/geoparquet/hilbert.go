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
	keys := make([]uint64, len(w.refs))
	idx := make([]int, len(w.refs))
	for i, r := range w.refs {
		idx[i] = i
		keys[i] = math.MaxUint64
		if r.geo {
			keys[i] = hilbert(side, scale(r.x, minX, maxX), scale(r.y, minY, maxY))
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case keys[a] < keys[b]:
			return -1
		case keys[a] > keys[b]:
			return 1
		}
		return 0
	})
	return idx
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
