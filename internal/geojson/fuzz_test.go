package geojson

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"math"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"

	"github.com/sdsops/sdsops/internal/wkt"
)

// FuzzConvert builds a one-entity export around a fuzzed WKT text, an
// extra column of a fuzzed name, type and value, and a fuzzed key. The
// conversion either refuses the schema or yields one feature of valid
// JSON whose geometry is RFC 7946 or null, with the WKT kept when null
// and counted as invalid.
func FuzzConvert(f *testing.F) {
	f.Add("POLYGON((0 0, 0 10, 10 10, 10 0, 0 0), (2 2, 4 2, 4 4, 2 4, 2 2))", "Extra", uint8(1), "7", "k1")
	f.Add("MULTIPOINT(1 2, 3 4)", "When", uint8(4), "2016-03-01T08:00:00.0000000Z", "9007199254740993")
	f.Add("GEOMETRYCOLLECTION(POINT(1 2),LINESTRING EMPTY)", "Flag", uint8(3), "1", "")
	f.Add("POINT EMPTY", "D", uint8(2), "NaN", "x")
	f.Add("POINT(1e400 2)", "S", uint8(0), "é\x01", "x")
	f.Add("MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,5 6,6 6,5 5)))", "G2", uint8(5), "POINT(1 2)", "y")
	f.Add("POINT(1 2)", "Entrance", uint8(5), "POINT(1 2", "e")
	f.Add("POINT(1 2)", "Entrance", uint8(5), "LINESTRING(0 0, 1 1)", "f")
	f.Add(nestedCollections(wkt.MaxDepth-1), "N", uint8(0), "", "z")
	f.Add(nestedCollections(wkt.MaxDepth)+"((", "N", uint8(0), "", "z")
	types := []string{"xs:string", "xs:long", "xs:double", "xs:boolean", "xs:dateTime", "xs:anyType", "xs:int"}
	f.Fuzz(func(t *testing.T, text, column string, typ uint8, value, key string) {
		esc := func(s string) string { return html.EscapeString(s) }
		doc := strings.Replace(mappingSchema, `<xs:element name="G2" type="xs:anyType" minOccurs="0"/>`,
			`<xs:element name="G2" type="xs:anyType" minOccurs="0"/><xs:element name="`+esc(column)+`" type="`+types[int(typ)%len(types)]+`" minOccurs="0"/>`, 1)
		doc = strings.Replace(doc, `type="xs:long"/>`, `type="xs:string"/>`, 1) // a string key takes any text
		doc += "<E><ID>" + esc(key) + "</ID><G>" + esc(text) + "</G><" + esc(column) + ">" + esc(value) + "</" + esc(column) + "></E>\n</Root>\n"
		var out, schema, pq bytes.Buffer
		st, err := Convert(context.Background(), strings.NewReader(doc), "Map", &out, &schema, WithGeoParquet(&pq, ""))
		if err != nil {
			return // a schema or text SDS would not hold: refused, not converted
		}
		geom := parquetGeometryOf(t, pq.Bytes())
		var fc struct {
			Type     string `json:"type"`
			Features []struct {
				ID         any             `json:"id"`
				Geometry   json.RawMessage `json:"geometry"`
				Properties map[string]any  `json:"properties"`
			} `json:"features"`
		}
		if err := json.Unmarshal(out.Bytes(), &fc); err != nil {
			t.Fatalf("GeoJSON is not JSON: %v\n%s", err, out.Bytes())
		}
		if !json.Valid(schema.Bytes()) {
			t.Fatalf("schema document is not JSON:\n%s", schema.Bytes())
		}
		if fc.Type != "FeatureCollection" || len(fc.Features) != 1 || st.Features != 1 {
			t.Fatalf("%d features (stats %d)", len(fc.Features), st.Features)
		}
		feat := fc.Features[0]
		if (string(feat.Geometry) == "null") != (geom == nil) {
			t.Fatalf("GeoJSON geometry %s, GeoParquet's %v", feat.Geometry, geom)
		}
		if geom != nil && strings.TrimSpace(text) != "" {
			var cv wkt.Converter
			_, b, _, err := cv.Convert([]byte(text), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := wkb.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !orb.Equal(want, geom) && !(want.GeoJSONType() == "Point" && geom.GeoJSONType() == "Point" && math.IsNaN(geom.(orb.Point)[0])) {
				t.Fatalf("GeoParquet geometry %v, the WKT's %v", geom, want)
			}
		}
		// The text of a refused geography is kept by both outputs, alike.
		if column != "G" && column != "geometry" {
			kept, ok := feat.Properties["G"]
			if pv := parquetValueOf(t, pq.Bytes(), "G"); ok == pv.IsNull() || (ok && kept != string(pv.ByteArray())) {
				t.Fatalf("GeoJSON keeps %q (%v), GeoParquet %q (null %v)", kept, ok, pv.ByteArray(), pv.IsNull())
			}
		}
		// So is that of a further geography column: here the extra one,
		// beside its geometry column in <name>_text.
		if types[int(typ)%len(types)] == "xs:anyType" && strings.TrimSpace(value) != "" {
			kept, _ := feat.Properties[column].(string)
			g, txt := parquetValueOf(t, pq.Bytes(), column), parquetValueOf(t, pq.Bytes(), column+"_text")
			if g.IsNull() == txt.IsNull() || (!txt.IsNull() && kept != string(txt.ByteArray())) {
				t.Fatalf("GeoJSON keeps %q; GeoParquet geometry null %v, text %q (null %v)", kept, g.IsNull(), txt.ByteArray(), txt.IsNull())
			}
		}
		if string(feat.Geometry) == "null" {
			if strings.TrimSpace(text) != "" {
				if st.Invalid != 1 || feat.Properties["G"] != text {
					t.Fatalf("null geometry for %q: invalid %d, kept %q", text, st.Invalid, feat.Properties["G"])
				}
			}
			return
		}
		checkGeometry(t, feat.Geometry)
		if st.Invalid != 0 || len(st.Geometries) != 1 {
			t.Fatalf("geometry written but stats %+v", st)
		}
	})
}

// checkGeometry asserts the RFC 7946 shape of a geometry object.
func checkGeometry(t *testing.T, raw json.RawMessage) {
	var g struct {
		Type        string            `json:"type"`
		Coordinates json.RawMessage   `json:"coordinates"`
		Geometries  []json.RawMessage `json:"geometries"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	pos := func(p []float64) {
		if len(p) != 2 || p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90 {
			t.Fatalf("position %v in %s", p, raw)
		}
	}
	ring := func(r [][]float64) {
		if len(r) < 4 || r[0][0] != r[len(r)-1][0] || r[0][1] != r[len(r)-1][1] {
			t.Fatalf("ring %v in %s", r, raw)
		}
		for _, p := range r {
			pos(p)
		}
	}
	var err error
	switch g.Type {
	case "Point":
		var p []float64
		if err = json.Unmarshal(g.Coordinates, &p); err == nil && len(p) > 0 {
			pos(p)
		}
	case "MultiPoint", "LineString":
		var ps [][]float64
		err = json.Unmarshal(g.Coordinates, &ps)
		for _, p := range ps {
			pos(p)
		}
	case "MultiLineString":
		var ls [][][]float64
		err = json.Unmarshal(g.Coordinates, &ls)
		for _, l := range ls {
			if len(l) < 2 {
				t.Fatalf("line %v in %s", l, raw)
			}
		}
	case "Polygon":
		var rs [][][]float64
		err = json.Unmarshal(g.Coordinates, &rs)
		for _, r := range rs {
			ring(r)
		}
	case "MultiPolygon":
		var ps [][][][]float64
		err = json.Unmarshal(g.Coordinates, &ps)
		for _, rs := range ps {
			for _, r := range rs {
				ring(r)
			}
		}
	case "GeometryCollection":
		for _, m := range g.Geometries {
			checkGeometry(t, m)
		}
	default:
		t.Fatalf("geometry type %q", g.Type)
	}
	if err != nil {
		t.Fatalf("coordinates of %s: %v", raw, err)
	}
}

// parquetGeometryOf reads the one row of a GeoParquet file and returns its
// primary geometry, nil when null.
func parquetGeometryOf(t *testing.T, data []byte) orb.Geometry {
	t.Helper()
	v := parquetValueOf(t, data, "geometry")
	if v.IsNull() {
		return nil
	}
	g, err := wkb.Unmarshal(v.ByteArray())
	if err != nil {
		t.Fatalf("geometry is not WKB: %v", err)
	}
	return g
}

// parquetValueOf reads the one row of a GeoParquet file and returns its
// value in the named column.
func parquetValueOf(t *testing.T, data []byte, name string) parquet.Value {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("GeoParquet does not open: %v", err)
	}
	if f.NumRows() != 1 {
		t.Fatalf("%d GeoParquet rows", f.NumRows())
	}
	col, ok := f.Schema().Lookup(name)
	if !ok {
		t.Fatalf("no %s column", name)
	}
	rows := f.RowGroups()[0].Rows()
	defer rows.Close()
	buf := make([]parquet.Row, 1)
	if n, err := rows.ReadRows(buf); n != 1 {
		t.Fatalf("reading the row: %v", err)
	}
	for _, v := range buf[0] {
		if v.Column() == col.ColumnIndex {
			return v.Clone()
		}
	}
	t.Fatalf("no %s value", name)
	return parquet.Value{}
}
