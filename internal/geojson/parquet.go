package geojson

import (
	"encoding/binary"
	"io"
	"math"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"

	"github.com/sdsops/sdsops/internal/geoparquet"
)

// Option changes what Convert writes.
type Option func(*options)

type options struct {
	parquet    io.Writer
	parquetDir string
}

// WithGeoParquet has Convert also write the entities as GeoParquet to w,
// from the same read of the export, once the GeoJSON is complete. Rows
// wait in a temporary file in dir ("" for the system's) meanwhile, about
// as large as the export.
func WithGeoParquet(w io.Writer, dir string) Option {
	return func(o *options) { o.parquet, o.parquetDir = w, dir }
}

// ParquetOutput describes the GeoParquet file written.
type ParquetOutput struct {
	Output
	Rows      int64 `json:"rows"`
	RowGroups int   `json:"rowGroups"`
}

// parquetGeometry is the GeoParquet form of geometry g (nil: POINT
// EMPTY), appended to buf.
func parquetGeometry(buf []byte, g orb.Geometry) (geoparquet.Geometry, error) {
	if g == nil {
		// WKB has no empty point; the convention GEOS and GDAL follow is NaN, NaN.
		buf = append(buf, 1)
		buf = binary.LittleEndian.AppendUint32(buf, 1)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(math.NaN()))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(math.NaN()))
		return geoparquet.Geometry{WKB: buf, Type: "Point", Empty: true}, nil
	}
	data, err := wkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		return geoparquet.Geometry{}, err
	}
	b, ok := bound(g)
	return geoparquet.Geometry{WKB: append(buf, data...), Type: g.GeoJSONType(), Bound: b, Empty: !ok}, nil
}

// bound is g's bounding box; ok is false when g has no positions. orb's
// own Bound counts empty members of a collection as a box.
func bound(g orb.Geometry) (b orb.Bound, ok bool) {
	var walk func(orb.Geometry)
	walk = func(g orb.Geometry) {
		switch g := g.(type) {
		case orb.Collection:
			for _, m := range g {
				walk(m)
			}
		case orb.MultiPolygon:
			for _, p := range g {
				walk(p)
			}
		case orb.Polygon:
			for _, r := range g {
				walk(r)
			}
		case orb.MultiLineString:
			for _, l := range g {
				walk(l)
			}
		default: // a point or a run of them; orb's empty box has Min > Max
			if gb := g.Bound(); gb.Min[0] <= gb.Max[0] {
				if ok {
					b = b.Union(gb)
				} else {
					b, ok = gb, true
				}
			}
		}
	}
	walk(g)
	return b, ok
}

// parquetRow appends the entity's GeoParquet row to j.pq: its values and
// its geometries, the primary one (prim) as the GeoJSON has it and the
// further geography columns parsed and checked the same way.
func (m *mapping) parquetRow(j *job, prim orb.Geometry, hasPrim bool) {
	for i := range j.geoms {
		j.geoms[i] = geoparquet.Geometry{}
	}
	j.wkb = j.wkb[:0]
	put := func(k int, g orb.Geometry) {
		start := len(j.wkb)
		pg, err := parquetGeometry(j.wkb, g)
		if err != nil {
			return
		}
		j.wkb = pg.WKB
		pg.WKB = j.wkb[start:len(j.wkb):len(j.wkb)]
		j.geoms[k] = pg
	}
	if hasPrim {
		put(0, prim)
	}
	for k, col := range m.pqGeoms {
		if k == 0 || col < 0 {
			continue
		}
		v := j.vals[col]
		if !v.Present || len(strings.TrimSpace(string(v.Raw))) == 0 {
			continue
		}
		g, err := parseWKT(string(v.Raw))
		if err != nil {
			continue
		}
		// The same geometries as GeoJSON carries: refuse what it refuses.
		if g != nil {
			var err error
			if j.scratch, err = appendGeometry(j.scratch[:0], g); err != nil {
				continue
			}
		}
		put(k, g)
	}
	j.pq = m.pq.AppendRow(j.pq[:0], j.vals, j.geoms)
}
