package geojson

import (
	"bytes"
	"io"

	"github.com/sdsops/sdsops/internal/geoparquet"
	"github.com/sdsops/sdsops/internal/wkt"
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

// setGeometry makes geometry k of the GeoParquet row the one whose WKB
// is j.wkb from start on (without GeoParquet, nothing).
func (j *job) setGeometry(k, start int, g wkt.Geometry) {
	if j.geoms == nil {
		return
	}
	j.geoms[k] = geoparquet.Geometry{WKB: j.wkb[start:len(j.wkb):len(j.wkb)], Type: g.Type, Bound: g.Bound, Empty: !g.HasBound}
}

// parquetRow appends the entity's GeoParquet row to j.pq: its values and
// its geometries, the primary one as appendFeature made it and the
// further geography columns converted the same way (the same refusals).
func (m *mapping) parquetRow(j *job, cv *wkt.Converter) {
	for k, col := range m.pqGeoms {
		if k == 0 || col < 0 {
			continue
		}
		v := j.vals[col]
		if !v.Present || len(bytes.TrimSpace(v.Raw)) == 0 {
			continue
		}
		start := len(j.wkb)
		var (
			g   wkt.Geometry
			err error
		)
		if j.scratch, j.wkb, g, err = cv.Convert(v.Raw, j.scratch[:0], j.wkb); err == nil {
			j.setGeometry(k, start, g)
		}
	}
	j.pq = m.pq.AppendRow(j.pq, j.vals, j.geoms)
}
