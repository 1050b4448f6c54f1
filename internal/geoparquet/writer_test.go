package geoparquet

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/paulmach/orb"

	"github.com/sdsops/sdsops/internal/dataset"
)

func schemaOf(t testing.TB, header string) *dataset.Schema {
	t.Helper()
	s, err := dataset.NewReader(strings.NewReader(header+"</Root>"), "").Schema()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const header = `<Root><xs:schema id="Map" xmlns="" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata">
<xs:element name="Map" msdata:IsDataSet="true"><xs:complexType><xs:choice minOccurs="0" maxOccurs="unbounded">
<xs:element name="E"><xs:complexType><xs:sequence>
<xs:element name="ID" type="xs:long" />
<xs:element name="S" type="xs:string" minOccurs="0" />
<xs:element name="D" type="xs:double" minOccurs="0" />
<xs:element name="B" type="xs:boolean" minOccurs="0" />
<xs:element name="T" type="xs:dateTime" minOccurs="0" msdata:DateTimeMode="Utc" />
<xs:element name="G" type="xs:anyType" minOccurs="0" />
<xs:element name="geometry" type="xs:string" minOccurs="0" />
<xs:element name="G2" type="xs:anyType" minOccurs="0" />
</xs:sequence></xs:complexType></xs:element></xs:choice></xs:complexType>
<xs:unique name="Constraint1" msdata:PrimaryKey="true"><xs:selector xpath=".//E" /><xs:field xpath="ID" /></xs:unique>
</xs:element></xs:schema>
`

// entity returns the values of an entity of s: those given by column
// name, the others omitted.
func entity(s *dataset.Schema, set map[string]string) []dataset.Value {
	vals := make([]dataset.Value, len(s.Columns))
	for i, c := range s.Columns {
		vals[i] = dataset.Value{Type: c.Type}
		if v, ok := set[c.Name]; ok {
			vals[i].Raw, vals[i].Present = []byte(v), true
		}
	}
	return vals
}

// finish writes rows of the given values (nil: omitted) and returns the file.
func finish(t *testing.T, s *dataset.Schema, rows ...[]string) []byte {
	t.Helper()
	w, err := NewWriter(s, s.Index("G"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	geoms := make([]Geometry, len(w.GeometryColumns()))
	for _, r := range rows {
		vals := make([]dataset.Value, len(s.Columns))
		for i, c := range s.Columns {
			vals[i] = dataset.Value{Type: c.Type}
			if i < len(r) && r[i] != "\x00" {
				vals[i].Raw, vals[i].Present = []byte(r[i]), true
			}
		}
		if err := w.Add(w.AppendRow(nil, vals, geoms), geoms); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	st, err := w.Finish(&out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != int64(len(rows)) {
		t.Fatalf("%d rows written of %d", st.Rows, len(rows))
	}
	return out.Bytes()
}

// The columns' Parquet types follow their SDS types; the names stay,
// the primary geometry avoiding a column already named "geometry".
func TestTypeMapping(t *testing.T) {
	s := schemaOf(t, header)
	data := finish(t, s, []string{"1", "x", "1.5", "true", "2010-11-11T01:19:36.4350494Z"})
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.Schema().Fields() {
		got = append(got, c.Name()+" "+c.Type().String())
	}
	want := []string{"ID INT(64,true)", "S STRING", "D DOUBLE", "B BOOLEAN", "T TIMESTAMP(isAdjustedToUTC=true,unit=NANOS)",
		"geometry_1 BYTE_ARRAY", "G STRING", "geometry STRING", "G2 BYTE_ARRAY", "G2_text STRING", "bbox group"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("columns\n got %s\nwant %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
	for _, c := range f.Schema().Fields() {
		if !c.Optional() {
			t.Errorf("%s is required: omitted values must be nulls", c.Name())
		}
	}
	var m Metadata
	v, _ := f.Lookup("geo")
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.1.0" || m.PrimaryColumn != "geometry_1" || m.Columns["geometry_1"].Covering == nil || m.Columns["G2"].Encoding != "WKB" {
		t.Errorf("geo metadata %+v", m)
	}
}

// Times keep every digit SDS writes when nanoseconds since 1970 hold all
// the column's values, else microseconds.
func TestTimeUnit(t *testing.T) {
	s := schemaOf(t, header)
	for _, tc := range []struct{ time, unit string }{
		{"2010-11-11T01:19:36.4350494Z", "NANOS"},
		{"0001-01-01T00:00:00Z", "MICROS"},
		{"9999-12-31T23:59:59.9999999Z", "MICROS"},
	} {
		data := finish(t, s, []string{"1", "\x00", "\x00", "\x00", "2010-11-11T01:19:36.4350494Z"}, []string{"2", "\x00", "\x00", "\x00", tc.time})
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		typ := f.Schema().Fields()[4].Type().String()
		if !strings.Contains(typ, "unit="+tc.unit) {
			t.Errorf("%s: %s, want %s", tc.time, typ, tc.unit)
		}
	}
}

func TestAthenaTable(t *testing.T) {
	s := schemaOf(t, header)
	got := AthenaTable(s, s.Index("G"), "Stores", "s3://b/p/")
	want := "CREATE EXTERNAL TABLE `stores` (\n  `id` bigint,\n  `s` string,\n  `d` double,\n  `b` boolean,\n  `t` timestamp,\n" +
		"  `geometry_1` binary,\n  `g` string,\n  `geometry` string,\n  `g2` binary,\n  `g2_text` string,\n  `bbox` struct<xmin:double,ymin:double,xmax:double,ymax:double>\n)\nSTORED AS PARQUET\nLOCATION 's3://b/p/'"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestHilbertAdjacent(t *testing.T) {
	// Consecutive distances along the curve are neighbouring cells.
	const side = 16
	pos := make(map[uint64][2]uint32)
	for x := uint32(0); x < side; x++ {
		for y := uint32(0); y < side; y++ {
			pos[hilbert(side, x, y)] = [2]uint32{x, y}
		}
	}
	if len(pos) != side*side {
		t.Fatalf("%d distinct distances for %d cells", len(pos), side*side)
	}
	for d := uint64(1); d < side*side; d++ {
		a, b := pos[d-1], pos[d]
		dx, dy := int(a[0])-int(b[0]), int(a[1])-int(b[1])
		if dx*dx+dy*dy != 1 {
			t.Fatalf("cells %v and %v at %d and %d are not neighbours", a, b, d-1, d)
		}
	}
}

// TestSpillReadBack: the file is the same whether the spilled rows are
// read from a mapping of the spill file or with a read each. (Rows this
// small never fill the read path's buffer within a chunk, so pages end at
// the same rows and the files are equal byte for byte; larger rows would
// only move page ends.)
func TestSpillReadBack(t *testing.T) {
	s := schemaOf(t, header)
	var files [2][]byte
	for k, read := range []bool{false, true} {
		w, err := NewWriter(s, s.Index("G"), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		w.readRows = read
		geoms := make([]Geometry, len(w.GeometryColumns()))
		for i := range 3000 {
			vals := entity(s, map[string]string{"ID": strconv.Itoa(i)})
			x, y := float64(i%100), float64(i/100)
			p := orb.Point{x, y}
			geoms[0] = Geometry{WKB: []byte(strings.Repeat("w", i%700)), Type: "Point", Bound: orb.Bound{Min: p, Max: p}}
			if err := w.Add(w.AppendRow(nil, vals, geoms), geoms); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		if _, err := w.Finish(&out); err != nil {
			t.Fatal(err)
		}
		w.Close()
		files[k] = out.Bytes()
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("files differ: %d bytes mapped, %d read", len(files[0]), len(files[1]))
	}
	f, err := parquet.OpenFile(bytes.NewReader(files[1]), int64(len(files[1])))
	if err != nil || f.NumRows() != 3000 {
		t.Fatalf("%v, %v rows", err, f.NumRows())
	}
}

// TestRefusedTextKept: a geography value that is no geometry (the
// caller's geometry is null) keeps its text in the GeoParquet, as in the
// GeoJSON: the primary one under the column's name, a further one in
// <name>_text beside its geometry column; those text columns are null
// where the geometry is not, or the value blank or omitted.
func TestRefusedTextKept(t *testing.T) {
	s := schemaOf(t, header)
	w, err := NewWriter(s, s.Index("G"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	point := Geometry{WKB: []byte("wkb"), Type: "Point", Bound: orb.Bound{Min: orb.Point{1, 2}, Max: orb.Point{1, 2}}}
	rows := []struct {
		g, g2  string // "\x00": omitted
		geoms  []Geometry
		wantG  string // "\x00": null
		wantG2 string
	}{
		{"POINT (1 2)", "POINT(1 2", []Geometry{point, {}}, "\x00", "POINT(1 2"},
		{"POINT(1 2", "POINT (1 2)", []Geometry{{}, point}, "POINT(1 2", "\x00"},
		{"POINT (1 2)", "POINT (1 2)", []Geometry{point, point}, "\x00", "\x00"},
		{"\x00", " ", []Geometry{{}, {}}, "\x00", "\x00"},
		{"LINESTRING (0 0)", "\x00", []Geometry{{}, {}}, "LINESTRING (0 0)", "\x00"},
	}
	for i, r := range rows {
		set := map[string]string{"ID": strconv.Itoa(i), "G": r.g, "G2": r.g2}
		for k, v := range set {
			if v == "\x00" {
				delete(set, k)
			}
		}
		vals := entity(s, set)
		if err := w.Add(w.AppendRow(nil, vals, r.geoms), r.geoms); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.Finish(&out); err != nil {
		t.Fatal(err)
	}
	type texts struct {
		ID     int64   `parquet:"ID"`
		G      *string `parquet:"G,optional"`
		G2Text *string `parquet:"G2_text,optional"`
	}
	got, err := parquet.Read[texts](bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows read of %d", len(got), len(rows))
	}
	text := func(p *string) string {
		if p == nil {
			return "\x00"
		}
		return *p
	}
	for _, g := range got {
		r := rows[g.ID]
		if text(g.G) != r.wantG || text(g.G2Text) != r.wantG2 {
			t.Errorf("row %d: G %q, G2_text %q; want %q, %q (\\x00: null)", g.ID, text(g.G), text(g.G2Text), r.wantG, r.wantG2)
		}
	}
}

// TestOrder: rows go along the curve, rows in the same cell in the order
// they came, rows without a geometry last in theirs.
func TestOrder(t *testing.T) {
	w := &Writer{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		ref := rowRef{off: int64(i)}
		if i%7 != 0 {
			// Few distinct centres: many rows share a cell.
			ref.x, ref.y, ref.geo = float64(r.IntN(30)), float64(r.IntN(30)), true
		}
		w.refs = append(w.refs, ref)
	}
	got := w.order()
	dist := func(i int) uint64 {
		ref := w.refs[i]
		if !ref.geo {
			return math.MaxUint64
		}
		// The centres span 0..29 on both axes.
		cell := func(v float64) uint32 { return uint32(min(1<<16-1, math.Floor(v/29*(1<<16)))) }
		return hilbert(1<<16, cell(ref.x), cell(ref.y))
	}
	if len(got) != len(w.refs) {
		t.Fatalf("%d rows ordered of %d", len(got), len(w.refs))
	}
	for k := 1; k < len(got); k++ {
		a, b := got[k-1], got[k]
		if da, db := dist(a), dist(b); da > db || (da == db && a > b) {
			t.Fatalf("row %d (distance %d) before row %d (distance %d)", a, da, b, db)
		}
	}
}

// randomWKB is WKB that does not compress.
func randomWKB(r *rand.Rand, i int) []byte {
	b := make([]byte, 200+r.IntN(800))
	for k := range b {
		b[k] = byte(r.Uint32())
	}
	return b
}

// TestWKBCodec: WKB that snappy does not shrink is written uncompressed,
// WKB it does is compressed, every other column is snappy, and the
// geometries read back the same either way.
func TestWKBCodec(t *testing.T) {
	s := schemaOf(t, header)
	for _, tc := range []struct {
		name string
		rows int
		wkb  func(r *rand.Rand, i int) []byte
		want format.CompressionCodec
	}{
		{"random", 1000, randomWKB, format.Uncompressed},
		// Fewer rows than the sample's runs take: each is sampled once.
		{"random, small file", 20, randomWKB, format.Uncompressed},
		{"regular", 1000, func(r *rand.Rand, i int) []byte {
			return bytes.Repeat([]byte{1, 2, 3, 4, byte(i)}, 100+r.IntN(100))
		}, format.Snappy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(s, s.Index("G"), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			r := rand.New(rand.NewPCG(1, 2))
			want := map[int64][]byte{}
			for i := range tc.rows {
				vals := entity(s, map[string]string{"ID": strconv.Itoa(i)})
				p := orb.Point{float64(i % 37), float64(i % 41)}
				geoms := []Geometry{{WKB: tc.wkb(r, i), Type: "Polygon", Bound: orb.Bound{Min: p, Max: p}}, {}}
				want[int64(i)] = geoms[0].WKB
				if err := w.Add(w.AppendRow(nil, vals, geoms), geoms); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			if _, err := w.Finish(&out); err != nil {
				t.Fatal(err)
			}
			f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
			if err != nil {
				t.Fatal(err)
			}
			for _, rg := range f.Metadata().RowGroups {
				for _, c := range rg.Columns {
					codec := format.Snappy
					if c.MetaData.PathInSchema[0] == "geometry_1" {
						codec = tc.want
					}
					if c.MetaData.Codec != codec {
						t.Errorf("%v: %v, want %v", c.MetaData.PathInSchema, c.MetaData.Codec, codec)
					}
				}
			}
			type geometry struct {
				ID  int64  `parquet:"ID"`
				WKB []byte `parquet:"geometry_1,optional"`
			}
			got, err := parquet.Read[geometry](bytes.NewReader(out.Bytes()), int64(out.Len()))
			if err != nil || len(got) != len(want) {
				t.Fatalf("%d rows read of %d: %v", len(got), len(want), err)
			}
			for _, g := range got {
				if !bytes.Equal(g.WKB, want[g.ID]) {
					t.Fatalf("row %d: WKB differs", g.ID)
				}
			}
		})
	}
}
