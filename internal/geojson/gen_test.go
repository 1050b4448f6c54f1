package geojson

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/sdsops/sdsops/internal/dataset/datasettest"
)

// testExport generates a realistic SDS export: typed columns, non-ASCII
// text, dates, longs beyond 2^53, omitted and empty values, and a
// geography column cycling through every WKT type, EMPTY, no value (the
// Latitude/Longitude fallback), no value and no position, and broken WKT.
// It is produced on the fly; as it writes, it notes what a GIS reading
// the conversion must find.
type testExport struct {
	Name     string
	Entities int
	Points   int // positions in the larger lines and rings

	want expected
}

// expected is what the geometry column of the generated entities holds.
type expected struct {
	types                   map[string]int64 // by GeoJSON type
	empty, invalid, missing int64
	minX, minY, maxX, maxY  float64
}

const testEntityType = "Site"

func (d *testExport) schema() datasettest.Schema {
	return datasettest.Schema{Root: d.Name + "Data", Name: d.Name, EntityType: testEntityType, Key: "EntityID", Columns: []datasettest.Column{
		{Name: "EntityID", Type: "string", Required: true},
		{Name: "Name", Type: "string"},
		{Name: "Latitude", Type: "double"},
		{Name: "Longitude", Type: "double"},
		{Name: "Population", Type: "long"},
		{Name: "Rating", Type: "double"},
		{Name: "IsOpen", Type: "boolean"},
		{Name: "Created", Type: "dateTime", UTC: true},
		{Name: "Shape", Type: "anyType"},
		{Name: "Entrance", Type: "anyType"},
		{Name: "Notes", Type: "string"},
	}}
}

// kinds of the Shape column, entity i having kind i%len(kinds).
var kinds = []string{"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
	"MultiPolygon", "GeometryCollection", "empty", "fallback", "none", "invalid", "Polygon"}

// WriteTo writes the export, one entity at a time.
func (d *testExport) WriteTo(w io.Writer) (int64, error) {
	d.want = expected{types: map[string]int64{}, minX: math.Inf(1), minY: math.Inf(1), maxX: math.Inf(-1), maxY: math.Inf(-1)}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	bw.WriteString(d.schema().Header())
	var b []byte
	for i := range d.Entities {
		b = d.appendEntity(b[:0], i)
		if _, err := bw.Write(b); err != nil {
			return cw.n, err
		}
	}
	bw.WriteString(d.schema().Footer())
	err := bw.Flush()
	return cw.n, err
}

// String returns the whole export; for small ones only.
func (d *testExport) String() string {
	var b strings.Builder
	d.WriteTo(&b)
	return b.String()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (d *testExport) appendEntity(b []byte, i int) []byte {
	// A centre spread over the globe, away from the antimeridian and poles.
	cx := -170 + float64((i*7919)%340) + float64(i%1000)/1000
	cy := -80 + float64((i*104729)%160) + float64(i%997)/1000
	b = append(b, "  <"+testEntityType+">\n    <EntityID>S"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "</EntityID>\n"...)
	if i%5 != 4 {
		b = append(b, "    <Name>Café Ørsted &amp; Søn, 東京 №"...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "</Name>\n"...)
	}
	kind := kinds[i%len(kinds)]
	if kind != "none" {
		b = append(b, "    <Latitude>"...)
		b = strconv.AppendFloat(b, cy, 'f', -1, 64)
		b = append(b, "</Latitude>\n    <Longitude>"...)
		b = strconv.AppendFloat(b, cx, 'f', -1, 64)
		b = append(b, "</Longitude>\n"...)
	}
	b = append(b, "    <Population>"...)
	if i%3 == 0 {
		b = strconv.AppendInt(b, 1<<53+int64(i)+1, 10) // beyond what a double holds
	} else {
		b = strconv.AppendInt(b, int64(i)*1000-5000, 10)
	}
	b = append(b, "</Population>\n    <Rating>"...)
	b = strconv.AppendFloat(b, float64(i%50)/10, 'f', -1, 64)
	b = append(b, "</Rating>\n    <IsOpen>"...)
	b = strconv.AppendBool(b, i%2 == 0)
	b = append(b, "</IsOpen>\n    <Created>20"...)
	b = append(b, byte('1'+i%9), byte('0'+i%10))
	b = append(b, "-03-01T08:00:00."...)
	b = append(b, fmt.Sprintf("%07d", (i*7919)%10_000_000)...) // SDS writes seven fraction digits
	b = append(b, "Z</Created>\n"...)

	b = d.appendShape(b, kind, cx, cy, i)
	if i%4 == 1 {
		b = append(b, "    <Entrance>POINT("...)
		b = appendXY(b, cx+0.001, cy+0.001)
		b = append(b, ")</Entrance>\n"...)
	}
	switch i % 3 {
	case 0:
		b = append(b, "    <Notes>Ouvert 7j/7 — ☕ &lt;b&gt;</Notes>\n"...)
	case 1:
		b = append(b, "    <Notes />\n"...)
	}
	return append(b, "  </"+testEntityType+">\n"...)
}

func (d *testExport) appendShape(b []byte, kind string, cx, cy float64, i int) []byte {
	n := max(4, d.Points)
	var w []byte
	switch kind {
	case "Point":
		w = append(w, "POINT ("...)
		w = d.appendPos(w, cx, cy)
		w = append(w, ')')
	case "LineString":
		w = append(w, "LINESTRING ("...)
		w = d.appendLine(w, cx, cy, n)
		w = append(w, ')')
	case "Polygon":
		// Odd polygons run clockwise, as WKT allows and RFC 7946 does not.
		w = append(w, "POLYGON ("...)
		w = d.appendRing(w, cx, cy, 0.5, n, i%2 == 1)
		w = append(w, ", "...)
		w = d.appendRing(w, cx, cy, 0.2, 8, false)
		w = append(w, ')')
	case "MultiPoint":
		w = append(w, "MULTIPOINT ("...)
		for k := range 5 {
			if k > 0 {
				w = append(w, ", "...)
			}
			w = append(w, '(')
			w = d.appendPos(w, cx+float64(k)*0.01, cy)
			w = append(w, ')')
		}
		w = append(w, ')')
	case "MultiLineString":
		w = append(w, "MULTILINESTRING (("...)
		w = d.appendLine(w, cx, cy, n/2)
		w = append(w, "), ("...)
		w = d.appendLine(w, cx, cy+0.1, n/2)
		w = append(w, "))"...)
	case "MultiPolygon":
		w = append(w, "MULTIPOLYGON (("...)
		w = d.appendRing(w, cx-0.5, cy, 0.3, n/2, false)
		w = append(w, "), ("...)
		w = d.appendRing(w, cx+0.5, cy, 0.3, n/2, true)
		w = append(w, "))"...)
	case "GeometryCollection":
		w = append(w, "GEOMETRYCOLLECTION (POINT ("...)
		w = d.appendPos(w, cx, cy)
		w = append(w, "), LINESTRING ("...)
		w = d.appendLine(w, cx, cy, 4)
		w = append(w, "))"...)
	case "empty":
		d.want.types["LineString"]++
		d.want.empty++
		return append(b, "    <Shape>LINESTRING EMPTY</Shape>\n"...)
	case "fallback":
		d.want.types["Point"]++
		d.note(cx, cy)
		return b
	case "none":
		d.want.missing++
		return b
	case "invalid":
		d.want.invalid++
		return append(b, "    <Shape>POLYGON ((1 2, 3 4, oops</Shape>\n"...)
	}
	d.want.types[kind]++
	b = append(b, "    <Shape>"...)
	b = append(b, w...)
	return append(b, "</Shape>\n"...)
}

// appendPos appends a position of the geometry column and notes it.
func (d *testExport) appendPos(b []byte, x, y float64) []byte {
	d.note(x, y)
	return appendXY(b, x, y)
}

func (d *testExport) note(x, y float64) {
	d.want.minX, d.want.maxX = min(d.want.minX, x), max(d.want.maxX, x)
	d.want.minY, d.want.maxY = min(d.want.minY, y), max(d.want.maxY, y)
}

func appendXY(b []byte, x, y float64) []byte {
	b = strconv.AppendFloat(b, math.Round(x*1e6)/1e6, 'f', -1, 64)
	b = append(b, ' ')
	return strconv.AppendFloat(b, math.Round(y*1e6)/1e6, 'f', -1, 64)
}

func (d *testExport) appendLine(b []byte, cx, cy float64, n int) []byte {
	for k := range n {
		if k > 0 {
			b = append(b, ", "...)
		}
		b = d.appendPos(b, cx+float64(k)*0.001, cy+0.01*math.Sin(float64(k)))
	}
	return b
}

// appendRing appends a closed ring of n positions around (cx, cy),
// counter-clockwise unless cw.
func (d *testExport) appendRing(b []byte, cx, cy, r float64, n int, cw bool) []byte {
	b = append(b, '(')
	for k := range n {
		if k > 0 {
			b = append(b, ", "...)
		}
		a := 2 * math.Pi * float64(k%(n-1)) / float64(n-1)
		if cw {
			a = -a
		}
		x, y := math.Round((cx+r*math.Cos(a))*1e6)/1e6, math.Round((cy+r*math.Sin(a))*1e6)/1e6
		b = d.appendPos(b, x, y)
	}
	return append(b, ')')
}
