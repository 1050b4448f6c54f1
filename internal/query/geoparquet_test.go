package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/geojson"
)

// toGeoParquet converts an export as the conversion pass does and returns
// the GeoParquet file and a loader for it.
func toGeoParquet(t testing.TB, export io.Reader) ([]byte, GeoParquetLoader) {
	t.Helper()
	var pq, schema bytes.Buffer
	tee := &bytes.Buffer{}
	if _, err := geojson.Convert(context.Background(), io.TeeReader(export, tee), "", io.Discard, &schema, geojson.WithGeoParquet(&pq, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	return pq.Bytes(), loaderFor(t, tee)
}

func loaderFor(t testing.TB, export io.Reader) GeoParquetLoader {
	t.Helper()
	s, err := dataset.NewReader(export, "").Schema()
	if err != nil {
		t.Fatal(err)
	}
	l := GeoParquetLoader{EntityType: s.EntityType, Key: s.Key}
	for _, c := range s.Columns {
		l.Columns = append(l.Columns, Column{Name: c.Name, Type: c.Type})
	}
	return l
}

// sameTable fails unless got holds the entities of want with the same
// values (in any order: answers are ordered by entity ID, never by
// position) and the same points and shapes.
func sameTable(t *testing.T, got, want *Table) {
	t.Helper()
	if got.EntityType != want.EntityType || fmt.Sprint(got.Columns) != fmt.Sprint(want.Columns) || got.Key() != want.Key() || got.Len() != want.Len() {
		t.Fatalf("table %s %v key %d, %d entities; want %s %v key %d, %d entities",
			got.EntityType, got.Columns, got.Key(), got.Len(), want.EntityType, want.Columns, want.Key(), want.Len())
	}
	for w := 0; w < want.Len(); w++ {
		id := want.ID(w)
		g, ok := got.Lookup(id)
		if !ok {
			t.Errorf("entity %q missing", id)
			continue
		}
		for c, col := range want.Columns {
			a, b := got.Value(g, c), want.Value(w, c)
			if !equalValue(a, b) {
				t.Errorf("entity %q, %s: %+v, want %+v", id, col.Name, a, b)
			}
		}
		la, lo, ok1 := got.Point(g)
		lb, lob, ok2 := want.Point(w)
		if ok1 != ok2 || ok1 && (la != lb || lo != lob) {
			t.Errorf("entity %q point %v %v %v, want %v %v %v", id, la, lo, ok1, lb, lob, ok2)
		}
		if !got.Shape(g).IsEmpty() || !want.Shape(w).IsEmpty() {
			if a, b := got.Shape(g).AsText(), want.Shape(w).AsText(); a != b {
				t.Errorf("entity %q shape %s, want %s", id, a, b)
			}
		}
	}
}

func equalValue(a, b Value) bool {
	if a.Null || b.Null {
		return a.Null == b.Null
	}
	nan := math.IsNaN(a.Num) && math.IsNaN(b.Num)
	return a.Str == b.Str && a.Int == b.Int && (a.Num == b.Num || nan) && math.Signbit(a.Num) == math.Signbit(b.Num) &&
		a.Bool == b.Bool && a.Time.Equal(b.Time) && a.Time.Location() == b.Time.Location()
}

// typedExport is a realistic export without geography: non-ASCII text and
// IDs, omitted and empty values, longs beyond 2^53, special doubles,
// dates with seven fraction digits, with and without a zone, and enough
// entities for several row groups.
func typedExport(n int) string {
	s := datasettest.Schema{Root: "Shops", Name: "Shops", EntityType: "Shop", Key: "EntityID", Columns: []datasettest.Column{
		{Name: "EntityID", Type: "string", Required: true}, {Name: "Name", Type: "string"},
		{Name: "Latitude", Type: "double"}, {Name: "Longitude", Type: "double"},
		{Name: "Visits", Type: "long"}, {Name: "Rating", Type: "double"}, {Name: "Open", Type: "boolean"},
		{Name: "Since", Type: "dateTime", UTC: true}, {Name: "Notes", Type: "string"},
	}}
	var sb strings.Builder
	sb.WriteString(s.Header())
	special := []string{
		`<EntityID>Zürich-東京-1</EntityID><Name>Café &amp; Bäckerei «Ümlaut» 🍰</Name><Latitude>47.3769</Latitude><Longitude>8.5417</Longitude><Visits>9007199254740993</Visits><Rating>4.5</Rating><Open>true</Open><Since>2024-03-01T12:34:56.1234567Z</Since><Notes>  leading and trailing spaces  </Notes>`,
		`<EntityID>min</EntityID><Latitude>-90</Latitude><Longitude>180</Longitude><Visits>-9223372036854775808</Visits><Rating>NaN</Rating><Open>0</Open><Since>1999-12-31T23:59:59.9999999</Since><Notes></Notes>`,
		`<EntityID>max</EntityID><Name/><Latitude>0</Latitude><Longitude>-0</Longitude><Visits>9223372036854775807</Visits><Rating>-INF</Rating><Open>1</Open><Since>2024-06-30T08:00:00.0000001+02:00</Since>`,
		`<EntityID>nothing</EntityID>`,
		`<EntityID>empties</EntityID><Latitude></Latitude><Longitude> </Longitude><Visits></Visits><Rating/><Open/><Since></Since>`,
		`<EntityID>off-earth</EntityID><Latitude>95</Latitude><Longitude>-200</Longitude><Rating>1e-300</Rating><Open>false</Open><Since>1677-09-21T00:12:43.1454329Z</Since>`,
	}
	for _, e := range special {
		sb.WriteString("  <Shop>" + e + "</Shop>\n")
	}
	for i := range n {
		fmt.Fprintf(&sb, "  <Shop><EntityID>%07d</EntityID><Name>Läden %d</Name><Latitude>%.6f</Latitude><Longitude>%.6f</Longitude><Visits>%d</Visits><Rating>%g</Rating><Open>%t</Open><Since>2020-01-%02dT10:00:00.%07dZ</Since></Shop>\n",
			i, i, -60+float64(i%12000)/100, -170+float64(i*7%34000)/100, int64(i)*1_000_000_007, float64(i)/3, i%3 == 0, 1+i%28, i*13%10_000_000)
	}
	sb.WriteString(s.Footer())
	return sb.String()
}

func TestGeoParquetLoaderMatchesDataSetLoader(t *testing.T) {
	export := typedExport(25_000) // past 10,000 rows: several row groups
	pq, l := toGeoParquet(t, strings.NewReader(export))
	want := load(t, export)
	got, err := l.Load(context.Background(), bytes.NewReader(pq))
	if err != nil {
		t.Fatal(err)
	}
	sameTable(t, got, want)
	// And as a stream rather than in place.
	got, err = l.Load(context.Background(), io.MultiReader(bytes.NewReader(pq)))
	if err != nil {
		t.Fatal(err)
	}
	sameTable(t, got, want)
	// Answers agree too, where they depend on values and points.
	for _, raw := range []string{
		"spatialFilter=bbox(-60,-170,60,170)&$filter=Visits gt 9007199254740992&$format=json",
		"spatialFilter=nearby(47.37,8.54,100)&$select=*,__Distance",
		"$filter=Name eq 'Café %26 Bäckerei «Ümlaut» 🍰' or Open eq true&$orderby=Since desc,Rating&$top=250&$skip=3",
		"$filter=Since lt datetime'2020-01-02T10:00:00.0000010'&$inlinecount=allpages",
	} {
		a, ra, _, errA := run(t, got, raw)
		b, rb, _, errB := run(t, want, raw)
		if fmt.Sprint(a, ra.Count, errA) != fmt.Sprint(b, rb.Count, errB) {
			t.Errorf("%s: %v %d %v, want %v %d %v", raw, a, ra.Count, errA, b, rb.Count, errB)
		}
	}
}

// A geography value is kept in the GeoParquet as WKB only: the text the
// Query API answers with, and the whole of a value that is not WKT, are
// lost, so the loader refuses such a data source and the caller loads
// its XML, which keeps them.
func TestGeoParquetLoaderRefusesWhatTheFileLost(t *testing.T) {
	geo := datasettest.Schema{Root: "Shapes", Name: "Shapes", EntityType: "Shape", Key: "EntityID", Columns: []datasettest.Column{
		{Name: "EntityID", Type: "string", Required: true}, {Name: "Latitude", Type: "double"}, {Name: "Longitude", Type: "double"},
		{Name: "Area", Type: "anyType"}, {Name: "Route", Type: "anyType"},
	}}
	var sb strings.Builder
	sb.WriteString(geo.Header())
	for i, w := range []string{
		"POINT (1 2)", "LINESTRING (1 2, 3 4)", "POLYGON ((0 0, 1 0, 1 1, 0 0))", "MULTIPOINT ((1 2), (3 4))",
		"MULTILINESTRING ((1 2, 3 4))", "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))", "GEOMETRYCOLLECTION (POINT (1 2))",
		"POINT EMPTY", "not WKT at all", "POINT(1.50 2.0)",
	} {
		fmt.Fprintf(&sb, "  <Shape><EntityID>%d</EntityID><Latitude>1</Latitude><Longitude>2</Longitude><Area>%s</Area><Route>%s</Route></Shape>\n", i, w, w)
	}
	sb.WriteString(geo.Footer())
	wide := strings.Replace(typedExport(10), "2020-01-01T10:00:00", "2300-01-01T10:00:00", 1)
	for name, export := range map[string]string{"geography": sb.String(), "times beyond 2262": wide} {
		t.Run(name, func(t *testing.T) {
			load(t, export) // the XML itself loads
			pq, l := toGeoParquet(t, strings.NewReader(export))
			if _, err := l.Load(context.Background(), bytes.NewReader(pq)); !errors.Is(err, ErrInexact) {
				t.Errorf("got %v, want ErrInexact", err)
			}
		})
	}
}

func TestGeoParquetLoaderRejectsAnotherFile(t *testing.T) {
	pq, l := toGeoParquet(t, strings.NewReader(typedExport(10)))
	for name, tc := range map[string]struct {
		file []byte
		l    GeoParquetLoader
	}{
		"truncated":       {pq[:len(pq)/2], l},
		"not parquet":     {[]byte(typedExport(1)), l},
		"missing column":  {pq, GeoParquetLoader{EntityType: l.EntityType, Key: l.Key, Columns: append(l.Columns[:len(l.Columns):len(l.Columns)], Column{Name: "Extra", Type: dataset.String})}},
		"another type":    {pq, GeoParquetLoader{EntityType: l.EntityType, Key: l.Key, Columns: retype(l.Columns, "Visits", dataset.Double)}},
		"no such key col": {pq, GeoParquetLoader{EntityType: l.EntityType, Key: "Nope", Columns: l.Columns}},
	} {
		t.Run(name, func(t *testing.T) {
			if tb, err := tc.l.Load(context.Background(), bytes.NewReader(tc.file)); err == nil {
				t.Errorf("loaded %d entities", tb.Len())
			}
		})
	}
}

func retype(cols []Column, name string, typ dataset.Type) []Column {
	out := append([]Column(nil), cols...)
	for i := range out {
		if out[i].Name == name {
			out[i].Type = typ
		}
	}
	return out
}
