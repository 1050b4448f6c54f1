package geojson

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// python is the interpreter with the pinned readers: $SDSOPS_PYTHON (set
// by the Makefile), else python3.
func python(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SDSOPS_PYTHON")
	if p == "" {
		p = "python3"
	}
	if out, err := exec.Command(p, "-c", "import duckdb, duckdb_extension_spatial, pyarrow").CombinedOutput(); err != nil {
		t.Fatalf("%s lacks duckdb, duckdb-extension-spatial or pyarrow (run make tools, or set SDSOPS_PYTHON): %v\n%s", p, err, out)
	}
	return p
}

// convertParquet converts the export in file xml, writing the GeoParquet
// beside it, and returns its path and the stats.
func convertParquet(t *testing.T, xml string) (string, Stats) {
	t.Helper()
	in, err := os.Open(xml)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := strings.TrimSuffix(xml, ".xml") + ".parquet"
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var features bytes.Buffer
	st, err := Convert(context.Background(), in, "", &features, &bytes.Buffer{}, WithGeoParquet(out, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if st.GeoParquet == nil || st.GeoParquet.Rows != st.Features {
		t.Fatalf("GeoParquet %+v for %d features", st.GeoParquet, st.Features)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 2 {
		t.Errorf("files left beside the export: %v", entries)
	}
	return path, st
}

// checkParquet has pyarrow and DuckDB check the file against the export.
func checkParquet(t *testing.T, xml, parquet string, box ...string) string {
	t.Helper()
	args := append([]string{"testdata/check_geoparquet.py", xml, parquet}, box...)
	out, err := exec.Command(python(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
	return string(out)
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "export.xml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGeoParquetReaders: the GeoParquet of realistic exports, as pyarrow
// and DuckDB's spatial extension read it, holds every entity, value and
// geometry of the XML.
func TestGeoParquetReaders(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"generated": (&testExport{Name: "Sites", Entities: 600, Points: 12}).String(),
		"mapping": mappingSchema + mappingEntities(
			`<ID>7</ID><S>Café "x" \ &lt;tab&#9;</S><L>-42</L><D>47.5</D><B>1</B><T>2010-11-11T01:19:36.4350494Z</T><G>POINT(-122.1 47.6)</G><G2>LINESTRING (1 2, 3 4)</G2>`,
			`<ID>9007199254740993</ID><L>9007199254740991</L><D>-0.000001</D>`,
			`<ID>1</ID><L>-9007199254740992</L><T>0001-01-01T00:00:00.1234567Z</T>`,
			`<ID>2</ID><S/><B>false</B>`,
			`<ID>3</ID><L>12x</L><D>INF</D><B>yes</B><T>yesterday</T>`,
			`<ID>4</ID><D>1e300</D><T>2016-03-01T08:00:00</T>`,
			`<ID>5</ID><Latitude>47.6</Latitude><Longitude>-122.1</Longitude>`,
			`<ID>6</ID><G>POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 2 3, 3 3, 2 2))</G><G2>POINT EMPTY</G2>`,
			`<ID>8</ID><G>MULTIPOLYGON EMPTY</G><G2>POINT(200 1)</G2>`,
			`<ID>10</ID><G>GEOMETRYCOLLECTION (POINT (1 2), LINESTRING EMPTY, POLYGON ((0 0, 1 0, 1 1, 0 0)))</G>`,
			`<ID>11</ID><G>POINT(1 2</G><Latitude>1</Latitude><Longitude>2</Longitude>`,
		),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			xml := writeFile(t, doc)
			path, _ := convertParquet(t, xml)
			checkParquet(t, xml, path)
		})
	}
}

// mappingEntities wraps the entities of mappingSchema and ends the export.
func mappingEntities(entities ...string) string {
	var b strings.Builder
	for _, e := range entities {
		b.WriteString("<E>" + e + "</E>\n")
	}
	return b.String() + "</Root>\n"
}

// TestGeoParquetPruning: on a 200,000-entity export, a bounding-box query
// on the covering column returns exactly the entities whose geometry
// intersects the box, and the row groups' statistics rule out most of
// the file.
func TestGeoParquetPruning(t *testing.T) {
	t.Parallel()
	d := &testExport{Name: "Sites", Entities: 200_000, Points: 8}
	xml := filepath.Join(t.TempDir(), "export.xml")
	f, err := os.Create(xml)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	path, st := convertParquet(t, xml)
	out := checkParquet(t, xml, path, "10", "-10", "20", "0")
	var may, groups int
	for _, line := range strings.Split(out, "\n") {
		if _, err := fmt.Sscanf(line, "row groups: %d of %d may intersect", &may, &groups); err == nil {
			break
		}
	}
	if groups != st.GeoParquet.RowGroups || groups < 10 || may*4 > groups {
		t.Errorf("%d of %d row groups may intersect the box; want at most a quarter", may, groups)
	}
}

// TestGeoParquetKeepsRefusedWKT: where the GeoJSON has a null geometry
// and keeps the geography's text as a property, the GeoParquet has a null
// geometry and the same text under the column's name; elsewhere that
// column is null.
func TestGeoParquetKeepsRefusedWKT(t *testing.T) {
	doc := mappingSchema + mappingEntities(
		`<ID>1</ID><G>POINT(1 2</G><Latitude>1</Latitude><Longitude>2</Longitude>`,
		`<ID>2</ID><G>POINT (1 2)</G>`,
		`<ID>3</ID><G>POLYGON ((0 0, 1 1, 0 0))</G>`,
		`<ID>4</ID><G> </G><Latitude>1</Latitude><Longitude>2</Longitude>`,
		`<ID>5</ID>`,
	)
	var features, pq bytes.Buffer
	if _, err := Convert(context.Background(), strings.NewReader(doc), "", &features, &bytes.Buffer{}, WithGeoParquet(&pq, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Features []struct {
			ID         int64           `json:"id"`
			Geometry   json.RawMessage `json:"geometry"`
			Properties map[string]any  `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(features.Bytes(), &fc); err != nil {
		t.Fatal(err)
	}
	rows := parquetColumns(t, pq.Bytes(), "ID", "geometry", "G")
	if len(rows) != len(fc.Features) {
		t.Fatalf("%d rows, %d features", len(rows), len(fc.Features))
	}
	refused := 0
	for _, f := range fc.Features {
		r, ok := rows[f.ID]
		if !ok {
			t.Fatalf("entity %d missing from the GeoParquet", f.ID)
		}
		text, kept := f.Properties["G"]
		if (string(f.Geometry) == "null") != r[1].IsNull() || kept == r[2].IsNull() || (kept && text != string(r[2].ByteArray())) {
			t.Errorf("entity %d: GeoJSON geometry %s, G %v; GeoParquet geometry null %v, G %q", f.ID, f.Geometry, text, r[1].IsNull(), r[2].ByteArray())
		}
		if kept {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("%d texts kept, want 2", refused)
	}
}

// parquetColumns reads the named columns of every row of a GeoParquet
// file, by the int64 of the first.
func parquetColumns(t *testing.T, data []byte, names ...string) map[int64][]parquet.Value {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, len(names))
	for i, n := range names {
		c, ok := f.Schema().Lookup(n)
		if !ok {
			t.Fatalf("no column %s", n)
		}
		idx[i] = c.ColumnIndex
	}
	out := map[int64][]parquet.Value{}
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 64)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				vals := make([]parquet.Value, len(names))
				for _, v := range row {
					for i, c := range idx {
						if v.Column() == c {
							vals[i] = v.Clone()
						}
					}
				}
				out[vals[0].Int64()] = vals
			}
			if err != nil {
				break
			}
		}
		rows.Close()
	}
	return out
}
