package geojson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/testenv"
	"github.com/sdsops/sdsops/internal/testenv/cputime"
	"github.com/sdsops/sdsops/internal/wkt"
)

// mappingSchema has a column of every type, two geography columns and a
// long key.
var mappingSchema = datasettest.Schema{Root: "Root", Name: "Map", EntityType: "E", Key: "ID", Columns: []datasettest.Column{
	{Name: "ID", Type: "long", Required: true},
	{Name: "S", Type: "string"},
	{Name: "L", Type: "long"},
	{Name: "D", Type: "double"},
	{Name: "B", Type: "boolean"},
	{Name: "T", Type: "dateTime", UTC: true},
	{Name: "Latitude", Type: "double"},
	{Name: "Longitude", Type: "double"},
	{Name: "G", Type: "anyType"},
	{Name: "G2", Type: "anyType"},
}}.Header()

// convertDoc converts a whole export held in memory.
func convertDoc(t testing.TB, doc string) ([]byte, []byte, Stats, error) {
	var features, schema bytes.Buffer
	st, err := Convert(context.Background(), strings.NewReader(doc), "", &features, &schema)
	return features.Bytes(), schema.Bytes(), st, err
}

// decode parses JSON keeping numbers as written.
func decode(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if d.More() {
		t.Fatalf("more than one JSON value:\n%s", b)
	}
	return v
}

func TestMapping(t *testing.T) {
	cases := []struct {
		name, entity, want string
		invalid, missing   int64
	}{
		{"every type", `<ID>7</ID><S>Café "x" \ &lt;tab&#9;</S><L>-42</L><D>47.5</D><B>1</B><T>2010-11-11T01:19:36.4350494Z</T><G>POINT(-122.1 47.6)</G><G2>LINESTRING (1 2, 3 4)</G2>`,
			`{"type":"Feature","id":7,"geometry":{"type":"Point","coordinates":[-122.1,47.6]},"properties":{"S":"Café \"x\" \\ <tab\t","L":-42,"D":47.5,"B":true,"T":"2010-11-11T01:19:36.4350494Z","G2":"LINESTRING (1 2, 3 4)"}}`, 0, 0},
		{"longs at and beyond 2^53", `<ID>9007199254740993</ID><L>9007199254740991</L><D>-0.000001</D>`,
			`{"type":"Feature","id":"9007199254740993","geometry":null,"properties":{"L":9007199254740991,"D":-0.000001}}`, 0, 1},
		{"negative beyond 2^53", `<ID>1</ID><L>-9007199254740992</L>`,
			`{"type":"Feature","id":1,"geometry":null,"properties":{"L":"-9007199254740992"}}`, 0, 1},
		{"omitted and empty", `<ID>2</ID><S/><B>false</B>`,
			`{"type":"Feature","id":2,"geometry":null,"properties":{"S":"","B":false}}`, 0, 1},
		{"omitted key", `<S>x</S>`,
			`{"type":"Feature","geometry":null,"properties":{"S":"x"}}`, 0, 1},
		{"values that do not parse", `<ID>3</ID><L>12x</L><D>INF</D><B>yes</B><T>yesterday</T>`,
			`{"type":"Feature","id":3,"geometry":null,"properties":{"L":"12x","D":"INF","B":"yes","T":"yesterday"}}`, 0, 1},
		{"date without zone, large double", `<ID>4</ID><D>1e300</D><T>2016-03-01T08:00:00</T>`,
			`{"type":"Feature","id":4,"geometry":null,"properties":{"D":1e+300,"T":"2016-03-01T08:00:00Z"}}`, 0, 1},
		{"latitude/longitude fallback", `<ID>5</ID><Latitude>47.6</Latitude><Longitude>-122.1</Longitude>`,
			`{"type":"Feature","id":5,"geometry":{"type":"Point","coordinates":[-122.1,47.6]},"properties":{"Latitude":47.6,"Longitude":-122.1}}`, 0, 0},
		{"empty geography falls back", `<ID>5</ID><Latitude>1</Latitude><Longitude>2</Longitude><G> </G>`,
			`{"type":"Feature","id":5,"geometry":{"type":"Point","coordinates":[2,1]},"properties":{"Latitude":1,"Longitude":2}}`, 0, 0},
		{"latitude out of range", `<ID>6</ID><Latitude>91</Latitude><Longitude>2</Longitude>`,
			`{"type":"Feature","id":6,"geometry":null,"properties":{"Latitude":91,"Longitude":2}}`, 1, 0},
		{"only latitude", `<ID>6</ID><Latitude>1</Latitude>`,
			`{"type":"Feature","id":6,"geometry":null,"properties":{"Latitude":1}}`, 0, 1},
		{"geography wins over latitude", `<ID>8</ID><Latitude>1</Latitude><Longitude>2</Longitude><G>POINT (3 4)</G>`,
			`{"type":"Feature","id":8,"geometry":{"type":"Point","coordinates":[3,4]},"properties":{"Latitude":1,"Longitude":2}}`, 0, 0},
		{"invalid WKT kept", `<ID>9</ID><G>POLYGON((1 2, 3</G><Latitude>1</Latitude><Longitude>2</Longitude>`,
			`{"type":"Feature","id":9,"geometry":null,"properties":{"G":"POLYGON((1 2, 3","Latitude":1,"Longitude":2}}`, 1, 0},
		{"unclosed ring", `<ID>10</ID><G>POLYGON((0 0, 1 0, 1 1, 0 1))</G>`,
			`{"type":"Feature","id":10,"geometry":null,"properties":{"G":"POLYGON((0 0, 1 0, 1 1, 0 1))"}}`, 1, 0},
		{"out of range coordinates", `<ID>11</ID><G>POINT(200 10)</G>`,
			`{"type":"Feature","id":11,"geometry":null,"properties":{"G":"POINT(200 10)"}}`, 1, 0},
		{"NaN coordinates", `<ID>11</ID><G>POINT(NaN 10)</G>`,
			`{"type":"Feature","id":11,"geometry":null,"properties":{"G":"POINT(NaN 10)"}}`, 1, 0},
		{"three dimensions", `<ID>11</ID><G>POINT Z (1 2 3)</G>`,
			`{"type":"Feature","id":11,"geometry":null,"properties":{"G":"POINT Z (1 2 3)"}}`, 1, 0},
		{"polygon turned counter-clockwise, hole clockwise", `<ID>12</ID><G>POLYGON((0 0, 0 10, 10 10, 10 0, 0 0), (2 2, 4 2, 4 4, 2 4, 2 2))</G>`,
			`{"type":"Feature","id":12,"geometry":{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[2,2],[2,4],[4,4],[4,2],[2,2]]]},"properties":{}}`, 0, 0},
		{"multipolygon", `<ID>13</ID><G>MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 5 6, 6 6, 5 5)))</G>`,
			`{"type":"Feature","id":13,"geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,6],[5,6],[5,5]]]]},"properties":{}}`, 0, 0},
		{"multipoint, both forms", `<ID>14</ID><G>MULTIPOINT (1 2,  3 4)</G><G2>MULTIPOINT((1 2),(3 4))</G2>`,
			`{"type":"Feature","id":14,"geometry":{"type":"MultiPoint","coordinates":[[1,2],[3,4]]},"properties":{"G2":"MULTIPOINT((1 2),(3 4))"}}`, 0, 0},
		{"multilinestring", `<ID>15</ID><G>multilinestring((1 2,3 4),(5 6,7 8))</G>`,
			`{"type":"Feature","id":15,"geometry":{"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[[5,6],[7,8]]]},"properties":{}}`, 0, 0},
		{"geometry collection", "<ID>16</ID><G>GEOMETRYCOLLECTION (POINT (1 2),\n LINESTRING (1 2, 3 4))</G>",
			`{"type":"Feature","id":16,"geometry":{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[1,2],[3,4]]}]},"properties":{}}`, 0, 0},
		{"empty geometries", `<ID>17</ID><G>POINT EMPTY</G><G2>POLYGON EMPTY</G2>`,
			`{"type":"Feature","id":17,"geometry":{"type":"Point","coordinates":[]},"properties":{"G2":"POLYGON EMPTY"}}`, 0, 0},
		{"empty collection", `<ID>18</ID><G>GEOMETRYCOLLECTION EMPTY</G>`,
			`{"type":"Feature","id":18,"geometry":{"type":"GeometryCollection","geometries":[]},"properties":{}}`, 0, 0},
		{"extra whitespace", "<ID>19</ID><G>  POINT (  1\t\t2 )\n</G>",
			`{"type":"Feature","id":19,"geometry":{"type":"Point","coordinates":[1,2]},"properties":{}}`, 0, 0},
		{"collections nested as deep as allowed", "<ID>20</ID><G>" + nestedCollections(wkt.MaxDepth-1) + "</G>",
			`{"type":"Feature","id":20,"geometry":` + nestedGeoJSON(wkt.MaxDepth-1) + `,"properties":{}}`, 0, 0},
		{"collections nested too deep", "<ID>21</ID><G>" + nestedCollections(wkt.MaxDepth) + "</G>",
			`{"type":"Feature","id":21,"geometry":null,"properties":{"G":"` + nestedCollections(wkt.MaxDepth) + `"}}`, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := mappingSchema + "<E>" + tc.entity + "</E>\n</Root>\n"
			out, _, st, err := convertDoc(t, doc)
			if err != nil {
				t.Fatal(err)
			}
			fc := decode(t, out).(map[string]any)
			features := fc["features"].([]any)
			if len(features) != 1 || st.Features != 1 {
				t.Fatalf("%d features, stats %d", len(features), st.Features)
			}
			if want := decode(t, []byte(tc.want)); !reflect.DeepEqual(features[0], want) {
				got, _ := json.Marshal(features[0])
				t.Errorf("feature\n got %s\nwant %s", got, tc.want)
			}
			if st.Invalid != tc.invalid || st.Missing != tc.missing {
				t.Errorf("invalid %d missing %d, want %d %d", st.Invalid, st.Missing, tc.invalid, tc.missing)
			}
		})
	}
}

func TestSchemaDocument(t *testing.T) {
	features, schema, st, err := convertDoc(t, mappingSchema+"</Root>")
	if err != nil {
		t.Fatal(err)
	}
	if fc := decode(t, features).(map[string]any); fc["type"] != "FeatureCollection" || len(fc["features"].([]any)) != 0 || st.Features != 0 {
		t.Errorf("an export without entities gives %s", features)
	}
	var doc SchemaDoc
	if err := json.Unmarshal(schema, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.DataSource != "Map" || doc.EntityType != "E" || doc.Key != "ID" || doc.Geometry != (GeometryDoc{Column: "G", Latitude: "Latitude", Longitude: "Longitude"}) {
		t.Errorf("schema document %+v", doc)
	}
	want := []ColumnDoc{{"ID", "xs:long", "Edm.Int64", "id"}, {"S", "xs:string", "Edm.String", "property"},
		{"L", "xs:long", "Edm.Int64", "property"}, {"D", "xs:double", "Edm.Double", "property"},
		{"B", "xs:boolean", "Edm.Boolean", "property"}, {"T", "xs:dateTime", "Edm.DateTime", "property"},
		{"Latitude", "xs:double", "Edm.Double", "property"}, {"Longitude", "xs:double", "Edm.Double", "property"},
		{"G", "xs:anyType", "Edm.Geography", "geometry"}, {"G2", "xs:anyType", "Edm.Geography", "property"}}
	if !reflect.DeepEqual(doc.Columns, want) {
		t.Errorf("columns %+v", doc.Columns)
	}
	if !strings.HasPrefix(doc.AthenaCreateTable, "CREATE EXTERNAL TABLE `map` (\n  `id` bigint,") || !strings.Contains(doc.AthenaCreateTable, "  `geometry` binary,\n  `g` string,\n  `g2` binary,\n  `g2_text` string,\n  `bbox` struct<") {
		t.Errorf("Athena table:\n%s", doc.AthenaCreateTable)
	}
	sum := sha256.Sum256(schema)
	if st.Schema.Bytes != int64(len(schema)) || st.Schema.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("schema output %+v", st.Schema)
	}
}

// TestConvertGenerated: every entity becomes a feature, the counts agree
// with what the export holds, the digest is that of the bytes written,
// and polygons follow RFC 7946's winding.
func TestConvertGenerated(t *testing.T) {
	d := &testExport{Name: "Sites", Entities: 240, Points: 12}
	doc := d.String()
	out, _, st, err := convertDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out)
	if st.GeoJSON.Bytes != int64(len(out)) || st.GeoJSON.SHA256 != hex.EncodeToString(sum[:]) || st.XMLBytes != int64(len(doc)) {
		t.Errorf("outputs %+v %d, wrote %d bytes of GeoJSON from %d of XML", st.GeoJSON, st.XMLBytes, len(out), len(doc))
	}
	if st.Features != 240 || !reflect.DeepEqual(st.Geometries, d.want.types) ||
		st.Empty != d.want.empty || st.Invalid != d.want.invalid || st.Missing != d.want.missing {
		t.Errorf("stats %+v, export holds %+v", st, d.want)
	}
	var fc struct {
		Features []struct {
			ID       string `json:"id"`
			Geometry *struct {
				Type        string          `json:"type"`
				Coordinates json.RawMessage `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(out, &fc); err != nil {
		t.Fatal(err)
	}
	polygons := 0
	for _, f := range fc.Features {
		if f.Geometry == nil || f.Geometry.Type != "Polygon" {
			continue
		}
		var rings [][][2]float64
		if err := json.Unmarshal(f.Geometry.Coordinates, &rings); err != nil {
			t.Fatal(err)
		}
		for i, r := range rings {
			ring := make(orb.Ring, len(r))
			for k, p := range r {
				ring[k] = orb.Point(p)
			}
			if want := map[bool]orb.Orientation{true: orb.CCW, false: orb.CW}[i == 0]; ring.Orientation() != want {
				t.Errorf("feature %s ring %d runs %v", f.ID, i, ring.Orientation())
			}
		}
		polygons++
	}
	if polygons == 0 || int64(polygons) != d.want.types["Polygon"] {
		t.Errorf("%d polygons checked, export has %d", polygons, d.want.types["Polygon"])
	}
}

func TestConvertRejects(t *testing.T) {
	good := (&testExport{Name: "Sites", Entities: 3, Points: 5}).String()
	for name, doc := range map[string]string{
		"cut":          good[:len(good)-20],
		"not XML":      `{"errorDetails":["nope"]}`,
		"bad entity":   strings.Replace(good, "&amp;", "&nbsp;", 1),
		"wrong source": strings.Replace(good, `id="Sites"`, `id="Other"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			var features, schema bytes.Buffer
			_, err := Convert(context.Background(), strings.NewReader(doc), "Sites", &features, &schema)
			if err == nil {
				t.Fatal("converted")
			}
			if bytes.HasSuffix(features.Bytes(), []byte("]}\n")) {
				t.Error("a failed conversion wrote a complete FeatureCollection")
			}
		})
	}
	for _, limit := range []int{0, 100, 5000, 100_000} {
		var schema bytes.Buffer
		big := (&testExport{Name: "Sites", Entities: 300, Points: 20}).String()
		_, err := Convert(context.Background(), strings.NewReader(big), "Sites", &failingWriter{left: limit}, &schema)
		if err == nil || !strings.Contains(err.Error(), "writing GeoJSON: disk full") {
			t.Errorf("writer failing after %d bytes: %v", limit, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var features, schema bytes.Buffer
	if _, err := Convert(ctx, strings.NewReader(good), "Sites", &features, &schema); err != context.Canceled {
		t.Errorf("cancelled conversion: %v", err)
	}
}

// nestedCollections is a POINT inside depth GEOMETRYCOLLECTIONs: depth+1
// levels of parentheses.
func nestedCollections(depth int) string {
	return strings.Repeat("GEOMETRYCOLLECTION(", depth) + "POINT(1 2)" + strings.Repeat(")", depth)
}

func nestedGeoJSON(depth int) string {
	return strings.Repeat(`{"type":"GeometryCollection","geometries":[`, depth) + `{"type":"Point","coordinates":[1,2]}` + strings.Repeat("]}", depth)
}

// TestDeeplyNestedWKT: a 2 MB geography of GEOMETRYCOLLECTIONs nested
// 100,000 deep is refused before it is parsed, as invalid WKT kept as
// text, and the conversion ends well within a function's deadline (orb
// alone would take minutes of CPU over it).
func TestDeeplyNestedWKT(t *testing.T) {
	deep := nestedCollections(100_000)
	doc := mappingSchema + "<E><ID>1</ID><G>" + deep + "</G></E>\n<E><ID>2</ID><G>POINT(3 4)</G></E>\n</Root>\n"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var features, schema bytes.Buffer
	cpu := cputime.Used()
	st, err := Convert(ctx, strings.NewReader(doc), "", &features, &schema)
	t.Logf("%d bytes of WKT nested 100,000 deep: %s of CPU", len(deep), cputime.Used()-cpu)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the conversion ran past its deadline")
	}
	if st.Features != 2 || st.Invalid != 1 || st.Geometries["Point"] != 1 {
		t.Errorf("stats %+v: want 2 features, one invalid, one Point", st)
	}
	var fc struct {
		Features []struct {
			Geometry   json.RawMessage   `json:"geometry"`
			Properties map[string]string `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(features.Bytes(), &fc); err != nil {
		t.Fatal(err)
	}
	if f := fc.Features[0]; string(f.Geometry) != "null" || f.Properties["G"] != deep {
		t.Errorf("the nested value is not kept as text with a null geometry")
	}
}

// TestCancelStopsAtOnce: a conversion whose context ends stops at the next
// entity, not some thousand entities later.
func TestCancelStopsAtOnce(t *testing.T) {
	doc := (&testExport{Name: "Sites", Entities: 3000, Points: 5}).String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := &cancelAfter{r: strings.NewReader(doc), left: len(doc) / 10, cancel: cancel}
	var features, schema bytes.Buffer
	st, err := Convert(ctx, in, "Sites", &features, &schema)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	// Cancelled about 300 entities in; the reader's buffer and the
	// entities in flight may add a few hundred.
	if st.Features >= 1000 {
		t.Errorf("%d features written after the cancel at about entity 300", st.Features)
	}
}

// TestBatchesKeepOrder: features come out in the export's order and as
// each entity alone would give them, across the batches the entities
// travel in, small ones by the hundred and large geographies alone.
func TestBatchesKeepOrder(t *testing.T) {
	const header, footer = `{"type":"FeatureCollection","features":[` + "\n", "\n]}\n"
	var doc, want strings.Builder
	doc.WriteString(mappingSchema)
	want.WriteString(header)
	for i := 1; i <= 1200; i++ {
		e := fmt.Sprintf("<E><ID>%d</ID><S>s%d \"x\"</S><G>POINT(%d %g)</G></E>\n", i, i, i%180, float64(i)/1000)
		if i%250 == 0 {
			var line strings.Builder
			for k := range 10_000 {
				fmt.Fprintf(&line, ", %.9f %.9f", float64(k)/100, float64(i)/1000)
			}
			e = fmt.Sprintf("<E><ID>%d</ID><G>LINESTRING(%s)</G></E>\n", i, line.String()[2:])
		}
		doc.WriteString(e)
		alone, _, _, err := convertDoc(t, mappingSchema+e+"</Root>\n")
		if err != nil {
			t.Fatal(err)
		}
		if i > 1 {
			want.WriteString(",\n")
		}
		want.Write(bytes.TrimSuffix(bytes.TrimPrefix(alone, []byte(header)), []byte(footer)))
	}
	doc.WriteString("</Root>\n")
	want.WriteString(footer)
	out, _, st, err := convertDoc(t, doc.String())
	if err != nil {
		t.Fatal(err)
	}
	if st.Features != 1200 || string(out) != want.String() {
		t.Errorf("%d features, %d bytes; want 1200 features, %d bytes as converted one by one", st.Features, len(out), want.Len())
	}
}

// TestCancelWritesNoMore: once the context of a conversion ends, no more
// features are written, even those already converted, and the
// conversion fails with the context's error.
func TestCancelWritesNoMore(t *testing.T) {
	doc := (&testExport{Name: "Sites", Entities: 3000, Points: 5}).String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var schema bytes.Buffer
	st, err := Convert(ctx, strings.NewReader(doc), "Sites", out, &schema)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if out.writes != 1 || st.Features != 0 {
		t.Errorf("%d writes and %d features after a cancel at the first write", out.writes-1, st.Features)
	}
}

// cancelOnWrite counts writes and calls cancel at the first.
type cancelOnWrite struct {
	writes int
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.writes++
	c.cancel()
	return len(p), nil
}

// TestWriteErrorStopsReading: when the GeoJSON cannot be written, even
// from its first byte, the conversion stops reading the export and
// reports the write's error.
func TestWriteErrorStopsReading(t *testing.T) {
	doc := (&testExport{Name: "Sites", Entities: 30_000, Points: 5}).String()
	for _, limit := range []int{0, 1000} {
		in := &countingReader{r: strings.NewReader(doc)}
		var schema bytes.Buffer
		_, err := Convert(context.Background(), in, "Sites", &failingWriter{left: limit}, &schema)
		if err == nil || !strings.Contains(err.Error(), "writing GeoJSON: disk full") {
			t.Errorf("writer failing after %d bytes: %v", limit, err)
		}
		if in.n > len(doc)/4 {
			t.Errorf("writer failing after %d bytes: %d of %d bytes of the export read", limit, in.n, len(doc))
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// cancelAfter calls cancel once left bytes have been read through it.
type cancelAfter struct {
	r      io.Reader
	left   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= n; c.left <= 0 {
		c.cancel()
	}
	return n, err
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errors.New("disk full")
	}
	w.left -= len(p)
	return len(p), nil
}

// TestLargestGeography: a polygon of the SDS maximum of 100,000 points,
// written at full double precision, converts whole.
func TestLargestGeography(t *testing.T) {
	const points = 100_000
	var w strings.Builder
	w.WriteString("POLYGON((")
	for k := range points {
		if k > 0 {
			w.WriteString(", ")
		}
		a := -2 * math.Pi * float64(k%(points-1)) / float64(points-1) // clockwise
		fmt.Fprintf(&w, "%.14f %.14f", -122.12345678901234+math.Cos(a), 47.12345678901234+math.Sin(a))
	}
	w.WriteString("))")
	doc := mappingSchema + "<E><ID>1</ID><G>" + w.String() + "</G></E>\n</Root>\n"
	out, _, st, err := convertDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Geometries["Polygon"] != 1 || st.Invalid != 0 {
		t.Fatalf("stats %+v", st)
	}
	var fc struct {
		Features []struct {
			Geometry struct {
				Coordinates [][][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(out, &fc); err != nil {
		t.Fatal(err)
	}
	ring := fc.Features[0].Geometry.Coordinates[0]
	if len(ring) != points {
		t.Fatalf("%d positions, want %d", len(ring), points)
	}
	r := make(orb.Ring, len(ring))
	for k, p := range ring {
		r[k] = orb.Point(p)
	}
	if r.Orientation() != orb.CCW {
		t.Error("exterior ring not turned counter-clockwise")
	}
}

// TestWideExportStaysSmall: an export of the most columns SDS allows,
// almost all omitted, converts within a few MiB of heap: the entities in
// flight are bounded by their values as well as their text.
func TestWideExportStaysSmall(t *testing.T) {
	// The batches in flight follow the CPUs; two, as in the Lambda. The
	// heap's peak follows GOGC: its default.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	s := datasettest.Schema{Root: "Root", Name: "Wide", EntityType: "E", Key: "ID"}
	for i := range dataset.MaxColumns {
		c := datasettest.Column{Name: fmt.Sprintf("C%d", i), Type: "string"}
		if i == 0 {
			c = datasettest.Column{Name: "ID", Type: "long", Required: true}
		}
		s.Columns = append(s.Columns, c)
	}
	var doc strings.Builder
	doc.WriteString(s.Header())
	for i := range 4000 {
		fmt.Fprintf(&doc, "  <E><ID>%d</ID><C7>x</C7></E>\n", i)
	}
	doc.WriteString(s.Footer())
	runtime.GC()
	var peak uint64
	stop := testenv.PeakHeap(&peak)
	st, err := Convert(context.Background(), strings.NewReader(doc.String()), "", io.Discard, io.Discard)
	stop()
	if err != nil || st.Features != 4000 {
		t.Fatalf("%d features, err %v", st.Features, err)
	}
	if peak > 24<<20 {
		t.Errorf("peak heap %d MiB converting 4,000 entities of %d columns, more than 24 MiB", peak>>20, dataset.MaxColumns)
	}
}
