package geojson

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkt"

	"github.com/sdsops/sdsops/internal/gdaltest"
)

// fromXML is what a GIS must find in the GeoJSON of an export, read from
// the XML with encoding/xml and orb alone: the geometry of each entity
// from its first geography column, else its Latitude/Longitude.
type fromXML struct {
	features int64
	types    map[string]int64 // by OGR's name: POINT, LINESTRING, ...
	bound    orb.Bound
	bounded  bool
}

func expectFromXML(t *testing.T, doc []byte) fromXML {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	want := fromXML{types: map[string]int64{}}
	var (
		depth    int
		geo      string // the first geography column
		entity   string
		fields   map[string]string
		field    string
		text     strings.Builder
		inSchema bool
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 2 && tk.Name.Local == "schema":
				inSchema = true
			case inSchema && tk.Name.Local == "element":
				var name, typ string
				for _, a := range tk.Attr {
					switch a.Name.Local {
					case "name":
						name = a.Value
					case "type":
						typ = a.Value
					}
				}
				if typ == "xs:anyType" && geo == "" {
					geo = name
				}
				if entity == "" && depth == 7 { // root, schema, element, complexType, choice, element
					entity = name
				}
			case depth == 2:
				fields = map[string]string{}
			case depth == 3 && !inSchema:
				field = tk.Name.Local
				text.Reset()
			}
		case xml.CharData:
			if depth == 3 {
				text.Write(tk)
			}
		case xml.EndElement:
			switch {
			case depth == 2 && inSchema:
				inSchema = false
			case depth == 3 && !inSchema:
				fields[field] = text.String()
			case depth == 2:
				want.features++
				want.add(t, fields, geo)
			}
			depth--
		}
	}
	return want
}

func (w *fromXML) add(t *testing.T, fields map[string]string, geo string) {
	var g orb.Geometry
	if text := strings.TrimSpace(fields[geo]); text != "" {
		var err error
		if g, err = wkt.Unmarshal(text); err != nil {
			if strings.EqualFold(text, "LINESTRING EMPTY") {
				t.Fatalf("orb rejects %q", text)
			}
			return // invalid: null geometry
		}
	} else if lat, lon := fields["Latitude"], fields["Longitude"]; lat != "" && lon != "" {
		y, err1 := strconv.ParseFloat(lat, 64)
		x, err2 := strconv.ParseFloat(lon, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("latitude %q longitude %q", lat, lon)
		}
		g = orb.Point{x, y}
	} else {
		return
	}
	w.types[strings.ToUpper(g.GeoJSONType())]++
	if b := g.Bound(); b.Min[0] <= b.Max[0] {
		if !w.bounded {
			w.bound, w.bounded = b, true
		}
		w.bound = w.bound.Union(b)
	}
}

// TestGDALReadsConversions: GDAL finds in the GeoJSON the features,
// geometry types and extent of the XML, reads the field values with their
// types, and converts it into a GeoPackage that holds the same features.
func TestGDALReadsConversions(t *testing.T) {
	readers := gdaltest.Readers(t)
	generated := &testExport{Name: "Sites", Entities: 240, Points: 12}
	exports := map[string]func() []byte{
		"generated": func() []byte { return []byte(generated.String()) },
		"docs load example": func() []byte {
			b, _ := os.ReadFile("testdata/load-data-source-data-schema-and-sample-input-3.xml")
			return b
		},
		"docs download example": func() []byte {
			b, _ := os.ReadFile("testdata/get-downloaded-data-2.xml")
			return b
		},
	}
	for name, export := range exports {
		t.Run(name, func(t *testing.T) {
			doc := export()
			if len(doc) == 0 {
				t.Fatal("no export")
			}
			want := expectFromXML(t, doc)
			dir := t.TempDir()
			path := filepath.Join(dir, "export.geojson")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Convert(context.Background(), bytes.NewReader(doc), "", f, io.Discard)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Features != want.features {
				t.Errorf("converter counts %d features, XML %d", st.Features, want.features)
			}
			for _, gdal := range readers {
				r := gdal.Read(t, path)
				checkReport(t, gdal.Name, r, want)
				t.Logf("%s: %d features, geometry types %v, extent %v", r.Reader, r.Features, r.GeometryTypes, r.Extent)
				if name == "generated" {
					checkValues(t, gdal.Name, r)
				}
				gpkg := gdal.ToGeoPackage(t, path, filepath.Join(dir, strings.ReplaceAll(gdal.Name, " ", "-")+".gpkg"))
				checkReport(t, gdal.Name+" GeoPackage", gpkg, want)
				if gpkg.Driver != "" && gpkg.Driver != "GPKG" {
					t.Errorf("%s: the GeoPackage is read by driver %s", gdal.Name, gpkg.Driver)
				}
			}
		})
	}
}

// checkReport compares what GDAL read with what the XML holds: feature
// count, geometry types and extent.
func checkReport(t *testing.T, reader string, r gdaltest.Report, want fromXML) {
	t.Helper()
	if r.Features != want.features {
		t.Errorf("%s: feature count %d, XML %d", reader, r.Features, want.features)
	}
	if fmt.Sprint(r.GeometryTypes) != fmt.Sprint(want.types) {
		t.Errorf("%s: geometry types %v, XML %v", reader, r.GeometryTypes, want.types)
	}
	if len(r.Extent) != 4 {
		t.Errorf("%s: no extent", reader)
		return
	}
	w := []float64{want.bound.Min[0], want.bound.Min[1], want.bound.Max[0], want.bound.Max[1]}
	for i := range w {
		if math.Abs(r.Extent[i]-w[i]) > 1e-6 {
			t.Errorf("%s: extent %v, XML %v", reader, r.Extent, w)
			break
		}
	}
}

// checkValues: GDAL reads the generated export's awkward values with their
// types: a 64-bit integer beyond float precision kept as a string, non-ASCII
// and markup text, a UTC date-time.
func checkValues(t *testing.T, reader string, r gdaltest.Report) {
	t.Helper()
	for _, v := range []struct{ field, typ, value string }{
		{"Population", "String", "9007199254740993"},
		{"Name", "String", "Café Ørsted & Søn, 東京 №0"},
		{"Notes", "String", "Ouvert 7j/7 — ☕ <b>"},
		{"Created", "DateTime", "2010-03-01T08:00:00Z"},
	} {
		if typ := r.FieldType(v.field); typ != v.typ {
			t.Errorf("%s: field %s of type %q, want %s", reader, v.field, typ, v.typ)
		}
		found := false
		for _, row := range r.Rows {
			got, ok := row[v.field]
			if v.typ == "DateTime" && ok {
				want, _ := time.Parse(time.RFC3339, v.value)
				at, err := gdaltest.ParseDateTime(got)
				found = found || err == nil && at.Equal(want) && at.Format("-07:00") == "+00:00"
			} else {
				found = found || ok && got == v.value
			}
		}
		if !found {
			t.Errorf("%s: no feature with %s = %s", reader, v.field, v.value)
		}
	}
}
