package geojson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/paulmach/orb"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/geoparquet"
	"github.com/sdsops/sdsops/internal/wkt"
)

// Output describes one file written.
type Output struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Stats is what a conversion tells the manifest.
type Stats struct {
	DataSetName string `json:"dataSetName"`
	EntityType  string `json:"entityType"`
	XMLBytes    int64  `json:"xmlBytes"` // of the export read
	GeoJSON     Output `json:"geojson"`
	Schema      Output `json:"schema"`
	// GeoParquet is set when asked for (WithGeoParquet).
	GeoParquet *ParquetOutput `json:"geoparquet,omitempty"`
	// Features always equals the export's entity count.
	Features int64 `json:"features"`
	// Geometries counts features by GeoJSON geometry type ("Point", ...).
	Geometries map[string]int64 `json:"geometries"`
	// Empty counts geometries without positions (WKT EMPTY), also counted
	// by type.
	Empty int64 `json:"emptyGeometries"`
	// Invalid counts entities whose geography or Latitude/Longitude could
	// not become a geometry; their geometry is null.
	Invalid int64 `json:"invalidGeometries"`
	// Missing counts entities with no geography and no Latitude/Longitude;
	// their geometry is null.
	Missing int64 `json:"missingGeometries"`
}

// SchemaDoc is the schema document written beside the GeoJSON.
type SchemaDoc struct {
	DataSource string      `json:"dataSource"`
	EntityType string      `json:"entityType"`
	Key        string      `json:"key,omitempty"`
	Geometry   GeometryDoc `json:"geometry"`
	Columns    []ColumnDoc `json:"columns"`
	// AthenaCreateTable declares the GeoParquet's columns to Athena. Its
	// LOCATION is a placeholder: Athena reads every file of a folder, so the
	// .parquet files go to a folder of their own.
	AthenaCreateTable string `json:"athenaCreateTable"`
}

// GeometryDoc names the columns the geometry comes from.
type GeometryDoc struct {
	Column    string `json:"column,omitempty"`    // the first geography column
	Latitude  string `json:"latitude,omitempty"`  // the fallback Point's columns
	Longitude string `json:"longitude,omitempty"` //
}

// ColumnDoc is one column: its SDS type in the export (xs:) and in the
// SDS query API (Edm.), and where it went in the GeoJSON: "id",
// "geometry" or "property".
type ColumnDoc struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	EDM     string `json:"edm"`
	GeoJSON string `json:"geojson"`
}

// Convert reads an export of the named data source ("" for any) and
// writes its features, as one FeatureCollection, to features and its
// schema document to schema. It fails, with the outputs incomplete and to
// be discarded, if the export is not a complete DataSet.
func Convert(ctx context.Context, export io.Reader, dataSetName string, features, schema io.Writer, opts ...Option) (Stats, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	rd := dataset.NewReader(export, dataSetName)
	s, err := rd.Schema()
	if err != nil {
		return Stats{}, fmt.Errorf("reading export: %w", err)
	}
	m := newMapping(s)
	st := Stats{DataSetName: s.DataSetName, EntityType: s.EntityType, Geometries: map[string]int64{}}

	sw := newDigestWriter(schema)
	doc, err := json.MarshalIndent(m.doc(), "", "  ")
	if err != nil {
		return st, err
	}
	if _, err := sw.Write(append(doc, '\n')); err != nil {
		return st, fmt.Errorf("writing schema document: %w", err)
	}
	st.Schema = sw.output()

	if o.parquet != nil {
		pq, err := geoparquet.NewWriter(s, m.geo, o.parquetDir)
		if err != nil {
			return st, err
		}
		defer pq.Close()
		m.pq, m.pqGeoms = pq, pq.GeometryColumns()
	}

	fw := newDigestWriter(features)
	if err := convertFeatures(ctx, rd, m, fw, &st); err != nil {
		return st, err
	}
	st.GeoJSON = fw.output()
	st.XMLBytes = rd.Offset()
	if m.pq != nil {
		pw := newDigestWriter(o.parquet)
		pst, err := m.pq.Finish(pw)
		if err != nil {
			return st, fmt.Errorf("writing GeoParquet: %w", err)
		}
		st.GeoParquet = &ParquetOutput{Output: pw.output(), Rows: pst.Rows, RowGroups: pst.RowGroups}
	}
	return st, nil
}

// mapping is where each column of a schema goes.
type mapping struct {
	schema   *dataset.Schema
	key      int // -1 without one
	geo      int // the first geography column, -1 without one
	lat, lon int // -1 without them
	props    []int
	names    [][]byte // each column's name as a JSON object key, with ':'
	pq       *geoparquet.Writer
	pqGeoms  []int // pq.GeometryColumns()
}

func newMapping(s *dataset.Schema) *mapping {
	m := &mapping{schema: s, key: s.Index(s.Key), geo: -1, lat: -1, lon: -1}
	if s.Key == "" {
		m.key = -1
	}
	for i, c := range s.Columns {
		m.names = append(m.names, append(appendString(nil, []byte(c.Name)), ':'))
		switch {
		case c.Type == dataset.Geography && m.geo < 0:
			m.geo = i
		case c.Type == dataset.Double && strings.EqualFold(c.Name, "Latitude"):
			m.lat = i
		case c.Type == dataset.Double && strings.EqualFold(c.Name, "Longitude"):
			m.lon = i
		}
		if i != m.key && i != m.geo {
			m.props = append(m.props, i)
		}
	}
	if m.lat < 0 || m.lon < 0 {
		m.lat, m.lon = -1, -1
	}
	return m
}

func (m *mapping) doc() SchemaDoc {
	d := SchemaDoc{DataSource: m.schema.DataSetName, EntityType: m.schema.EntityType, Key: m.schema.Key}
	d.AthenaCreateTable = geoparquet.AthenaTable(m.schema, m.geo, m.schema.DataSetName, "s3://YOUR-BUCKET/athena/"+m.schema.DataSetName+"/")
	if m.geo >= 0 {
		d.Geometry.Column = m.schema.Columns[m.geo].Name
	}
	if m.lat >= 0 {
		d.Geometry.Latitude = m.schema.Columns[m.lat].Name
		d.Geometry.Longitude = m.schema.Columns[m.lon].Name
	}
	for i, c := range m.schema.Columns {
		to := "property"
		switch i {
		case m.key:
			to = "id"
		case m.geo:
			to = "geometry"
		}
		d.Columns = append(d.Columns, ColumnDoc{Name: c.Name, Type: c.Type.String(), EDM: c.Type.EDM(), GeoJSON: to})
	}
	return d
}

// appendFeature appends the entity of j as a GeoJSON Feature; with
// GeoParquet, its geometry's WKB is appended to j.wkb and set in
// j.geoms[0].
func (m *mapping) appendFeature(b []byte, j *job, cv *wkt.Converter) []byte {
	rec := j.vals
	clear(j.geoms)
	b = append(b, `{"type":"Feature"`...)
	if m.key >= 0 {
		if v := rec[m.key]; v.Present {
			b = append(b, `,"id":`...)
			if v.Type == dataset.Long {
				b = appendLong(b, v)
			} else {
				b = appendString(b, v.Raw)
			}
		}
	}
	b = append(b, `,"geometry":`...)
	b, invalidWKT := m.appendGeometry(b, j, cv)
	b = append(b, `,"properties":{`...)
	n := 0
	if invalidWKT {
		b = append(b, m.names[m.geo]...)
		b = appendString(b, rec[m.geo].Raw)
		n++
	}
	for _, i := range m.props {
		v := rec[i]
		if !v.Present {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, m.names[i]...)
		b = appendValue(b, v)
	}
	return append(b, "}}"...)
}

// appendGeometry appends the entity's geometry or null. invalidWKT
// reports that the geography column's text is to be kept as a property.
func (m *mapping) appendGeometry(b []byte, j *job, cv *wkt.Converter) (_ []byte, invalidWKT bool) {
	rec, st := j.vals, &j.t
	if m.geo >= 0 {
		if v := rec[m.geo]; v.Present && len(bytes.TrimSpace(v.Raw)) > 0 {
			start := len(j.wkb)
			var (
				g   wkt.Geometry
				err error
			)
			b, j.wkb, g, err = cv.Convert(v.Raw, b, j.wkb)
			if err != nil {
				st.invalid++
				return append(b, "null"...), true
			}
			st.geometries[g.Type]++
			if g.Empty {
				st.empty++
			}
			j.setGeometry(0, start, g)
			return b, false
		}
	}
	if m.lat >= 0 {
		lat, lon := rec[m.lat], rec[m.lon]
		if lat.Present && lon.Present {
			y, yerr := lat.Double()
			x, xerr := lon.Double()
			if xerr != nil || yerr != nil || !wkt.ValidPosition(x, y) {
				st.invalid++
				return append(b, "null"...), false
			}
			st.geometries["Point"]++
			start := len(j.wkb)
			j.wkb = wkt.AppendPointWKB(j.wkb, x, y)
			p := orb.Point{x, y}
			j.setGeometry(0, start, wkt.Geometry{Type: "Point", Bound: orb.Bound{Min: p, Max: p}, HasBound: true})
			b = append(b, `{"type":"Point","coordinates":`...)
			return append(wkt.AppendPosition(b, x, y), '}'), false
		}
	}
	st.missing++
	return append(b, "null"...), false
}

// digestWriter counts and hashes what it passes on.
type digestWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func newDigestWriter(w io.Writer) *digestWriter { return &digestWriter{w: w, h: sha256.New()} }

func (d *digestWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

func (d *digestWriter) output() Output {
	return Output{Bytes: d.n, SHA256: hex.EncodeToString(d.h.Sum(nil))}
}
