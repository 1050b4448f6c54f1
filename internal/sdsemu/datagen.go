package sdsemu

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
)

// Dataset is one downloadable version of a data source. Its XML is generated on the fly from
// these fields alone: the same Dataset always yields the same bytes, and nothing is held in
// memory beyond one entity.
//
// It does not use internal/dataset/datasettest: that package is for tests only, and the
// emulator also runs as a program (make run, make up, make emulator). Nor would it remove much:
// what the two share is the schema header, which here follows the download page's example
// and Microsoft's tools (byte order mark, {Name}Data root, geography columns) while
// datasettest follows the load page's; the entity generators have nothing in common.
type Dataset struct {
	AccessID       string
	Name           string
	EntityTypeName string
	VersionJobID   string
	EntityCount    int
	// PaddingBytes adds a Notes field of that many bytes to every entity.
	PaddingBytes int
	// Shapes makes the export look like what Microsoft's own tools write for a data source
	// with geography: see DataSource.Shapes.
	Shapes bool

	stored *storedData // an uploaded version: served from its file
}

func datasetFor(d *DataSource, v Version) Dataset {
	ds := Dataset{
		AccessID:       d.AccessID,
		Name:           d.Name,
		EntityTypeName: d.EntityTypeName,
		VersionJobID:   v.JobID,
		EntityCount:    v.EntityCount,
		PaddingBytes:   d.EntityPaddingBytes,
		Shapes:         d.Shapes,
		stored:         v.data,
	}
	if v.entityType != "" {
		ds.EntityTypeName = v.entityType
	}
	return ds
}

// The schema is the documented download schema; Notes is the emulator's filler field. The XML
// Schema namespace is the real one (the docs' pages print it with https).
const (
	schemaFields = `                <xs:element name="EntityID" type="xs:string" minOccurs="0"/>
                <xs:element name="Latitude" type="xs:double" minOccurs="0"/>
                <xs:element name="Longitude" type="xs:double" minOccurs="0"/>
                <xs:element name="AddressLine" type="xs:string" minOccurs="0"/>
                <xs:element name="Locality" type="xs:string" minOccurs="0"/>
                <xs:element name="AdminDistrict" type="xs:string" minOccurs="0"/>
                <xs:element name="CountryRegion" type="xs:string" minOccurs="0"/>
                <xs:element name="PostalCode" type="xs:string" minOccurs="0"/>
                <xs:element name="Confidence" type="xs:string" minOccurs="0"/>
                <xs:element name="Phone" type="xs:string" minOccurs="0"/>
                <xs:element name="Open" type="xs:long" minOccurs="0"/>
                <xs:element name="Close" type="xs:long" minOccurs="0"/>
                <xs:element name="IsWheelchairAccessible" type="xs:boolean" minOccurs="0"/>
`
	schemaNotesField = `                <xs:element name="Notes" type="xs:string" minOccurs="0"/>
`
	// The typed and geography columns of a Shapes export. Geography columns are xs:anyType
	// holding WKT, longitude first; dates are UTC in the round-trip form.
	shapesFields = `                <xs:element name="Rating" type="xs:double" minOccurs="0"/>
                <xs:element name="Opened" msdata:DateTimeMode="Utc" type="xs:dateTime" minOccurs="0"/>
                <xs:element name="Shape" type="xs:anyType" minOccurs="0"/>
                <xs:element name="DeliveryArea" type="xs:anyType" minOccurs="0"/>
`
)

// root is the document's root element: "MainRoot" as in the docs' example, or, for a Shapes
// export, "{Name}Data" as Microsoft's client writes it (any name is allowed).
func (d Dataset) root() string {
	if d.Shapes {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
				return r
			}
			return '_'
		}, d.Name) + "Data"
	}
	return "MainRoot"
}

func (d Dataset) footer() string { return "</" + d.root() + ">\n" }

func (d Dataset) header() string {
	var b strings.Builder
	if d.Shapes {
		b.WriteString("\ufeff") // .NET writes UTF-8 with a byte order mark
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" ?>` + "\n<" + d.root() + ">\n")
	b.WriteString(`  <xs:schema xmlns="" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata" id="` + d.Name + "\">\n")
	b.WriteString(`    <xs:element name="` + d.Name + `" msdata:IsDataSet="true" msdata:UseCurrentLocale="true">` + "\n")
	b.WriteString("      <xs:complexType>\n")
	b.WriteString(`        <xs:choice minOccurs="0" maxOccurs="unbounded">` + "\n")
	b.WriteString(`          <xs:element name="` + d.EntityTypeName + "\">\n")
	b.WriteString("            <xs:complexType>\n              <xs:sequence>\n")
	b.WriteString(schemaFields)
	if d.Shapes {
		b.WriteString(shapesFields)
	}
	if d.PaddingBytes > 0 {
		b.WriteString(schemaNotesField)
	}
	b.WriteString("              </xs:sequence>\n            </xs:complexType>\n          </xs:element>\n")
	b.WriteString("        </xs:choice>\n      </xs:complexType>\n")
	b.WriteString(`      <xs:unique name="Constraint1" msdata:PrimaryKey="true">` + "\n")
	b.WriteString(`        <xs:selector xpath=".//` + d.EntityTypeName + `"/>` + "\n")
	b.WriteString(`        <xs:field xpath="EntityID"/>` + "\n")
	b.WriteString("      </xs:unique>\n    </xs:element>\n  </xs:schema>\n")
	return b.String()
}

// WriteTo streams the XML document to w.
func (d Dataset) WriteTo(w io.Writer) (int64, error) {
	if d.stored != nil {
		return d.stored.writeTo(w)
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	g := newGenerator(d)
	_, _ = bw.WriteString(d.header()) // errors stick in bw and come back from Flush
	var buf []byte
	for i := 0; i < d.EntityCount; i++ {
		buf = g.appendEntity(buf[:0], i, true)
		if _, err := bw.Write(buf); err != nil {
			return cw.n, err
		}
	}
	_, _ = bw.WriteString(d.footer())
	err := bw.Flush()
	return cw.n, err
}

// Size is the length in bytes of what WriteTo writes. It generates every entity but the filler,
// whose length is fixed, so it costs a fraction of a download; the server caches it.
func (d Dataset) Size() int64 {
	if d.stored != nil {
		return d.stored.size
	}
	n := int64(len(d.header()) + len(d.footer()))
	g := newGenerator(d)
	var buf []byte
	for i := 0; i < d.EntityCount; i++ {
		buf = g.appendEntity(buf[:0], i, false)
		n += int64(len(buf))
	}
	if d.PaddingBytes > 0 {
		n += int64(d.EntityCount) * int64(len(notesOpen)+d.PaddingBytes+len(notesClose))
	}
	return n
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Entity values. Names are stored already escaped for XML; some need it on purpose, as real
// data would ("&", an apostrophe, non-ASCII letters).
type city struct {
	locality, district string
	postal, area       int
	lat, lon           int64 // microdegrees
}

var cities = []city{
	{"Redmond", "WA", 98052, 425, 47673302, -122118576},
	{"Seattle", "WA", 98101, 206, 47606209, -122332071},
	{"Spokane", "WA", 99201, 509, 47658780, -117426047},
	{"Coeur d'Alene", "ID", 83814, 208, 47677683, -116780466},
	{"Portland", "OR", 97204, 503, 45515232, -122678385},
	{"San Francisco", "CA", 94103, 415, 37774929, -122419416},
	{"Los Angeles", "CA", 90007, 213, 34023614, -118283980},
	{"San Diego", "CA", 92101, 619, 32715738, -117161084},
	{"Phoenix", "AZ", 85004, 602, 33448377, -112074037},
	{"Denver", "CO", 80202, 303, 39739236, -104990251},
	{"Cañon City", "CO", 81212, 719, 38440980, -105242455},
	{"Austin", "TX", 78701, 512, 30267153, -97743061},
	{"Chicago", "IL", 60601, 312, 41878114, -87629798},
	{"Minneapolis", "MN", 55401, 612, 44977753, -93265011},
	{"Nashville", "TN", 37201, 615, 36162664, -86781602},
	{"Atlanta", "GA", 30303, 404, 33748995, -84387982},
	{"Miami", "FL", 33130, 305, 25761680, -80191790},
	{"Boston", "MA", 2108, 617, 42360082, -71058880},
	{"New York", "NY", 10001, 212, 40712776, -74005974},
	{"Anchorage", "AK", 99501, 907, 61218056, -149900278},
	{"Honolulu", "HI", 96813, 808, 21306944, -157858337},
}

var streets = []string{
	"Microsoft Way", "Main St", "1st Ave", "Pine St", "Market St", "Broadway",
	"W Jefferson Blvd", "Elm Ave", "Lake Dr", "Commerce &amp; Industry Pkwy", "O'Brien Rd",
	"Sunset Blvd", "Maple Ln", "Harbor Way", "Río Grande Ave", "College St",
}

var (
	confidences = []string{"High", "Medium", "Low"}
	openTimes   = []string{"600", "630", "700", "730", "800", "900"}
	closeTimes  = []string{"1700", "1800", "1900", "2000", "2100", "2200"}
)

const (
	notesOpen     = "    <Notes>"
	notesClose    = "</Notes>\n"
	fillerPattern = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ."
	// jitter moves entities up to 0.2 degrees away from their city.
	jitter = 200000
)

type generator struct {
	seed         uint64
	open, close  string
	filler       string
	paddingBytes int
	shapes       bool
}

func newGenerator(d Dataset) *generator {
	h := fnv.New64a()
	for _, s := range []string{d.AccessID, d.Name, d.VersionJobID} {
		_, _ = io.WriteString(h, strings.ToLower(s)) // identities are case-insensitive
		_, _ = h.Write([]byte{0})
	}
	g := &generator{
		seed:         h.Sum64(),
		open:         "  <" + d.EntityTypeName + ">\n",
		close:        "  </" + d.EntityTypeName + ">\n",
		paddingBytes: d.PaddingBytes,
		shapes:       d.Shapes,
	}
	if d.PaddingBytes > 0 {
		g.filler = strings.Repeat(fillerPattern, d.PaddingBytes/len(fillerPattern)+2)
	}
	return g
}

// splitmix64: a tiny, well-mixed generator; one stream per entity keeps entities independent.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix) intn(n int) int { return int(s.next() % uint64(n)) }

// appendEntity appends entity i; without notes it leaves out the Notes line (used by Size).
func (g *generator) appendEntity(b []byte, i int, notes bool) []byte {
	r := splitmix(g.seed ^ (uint64(i) * 0xd1b54a32d192ed03))
	c := &cities[r.intn(len(cities))]
	b = append(b, g.open...)
	b = append(b, "    <EntityID>"...)
	b = strconv.AppendInt(b, int64(i)+1, 10)
	b = append(b, "</EntityID>\n    <Latitude>"...)
	b = appendMicrodegrees(b, c.lat+int64(r.intn(2*jitter+1))-jitter)
	b = append(b, "</Latitude>\n    <Longitude>"...)
	b = appendMicrodegrees(b, c.lon+int64(r.intn(2*jitter+1))-jitter)
	b = append(b, "</Longitude>\n    <AddressLine>"...)
	b = strconv.AppendInt(b, int64(1+r.intn(19999)), 10)
	b = append(b, ' ')
	b = append(b, streets[r.intn(len(streets))]...)
	b = append(b, "</AddressLine>\n    <Locality>"...)
	b = append(b, c.locality...)
	b = append(b, "</Locality>\n    <AdminDistrict>"...)
	b = append(b, c.district...)
	b = append(b, "</AdminDistrict>\n    <CountryRegion>United States</CountryRegion>\n    <PostalCode>"...)
	b = appendPadded(b, c.postal+r.intn(20), 5)
	b = append(b, "</PostalCode>\n    <Confidence>"...)
	b = append(b, confidences[r.intn(len(confidences))]...)
	b = append(b, "</Confidence>\n"...)
	// A Shapes export leaves some values out, as real data does: a missing value is an
	// omitted element.
	if phone := r.intn(5); !g.shapes || phone != 0 {
		b = append(b, "    <Phone>"...)
		b = appendPadded(b, c.area, 3)
		b = append(b, "-555-"...)
		b = appendPadded(b, 100+r.intn(100), 4)
		b = append(b, "</Phone>\n"...)
	}
	b = append(b, "    <Open>"...)
	b = append(b, openTimes[r.intn(len(openTimes))]...)
	b = append(b, "</Open>\n    <Close>"...)
	b = append(b, closeTimes[r.intn(len(closeTimes))]...)
	b = append(b, "</Close>\n    <IsWheelchairAccessible>"...)
	b = strconv.AppendBool(b, r.intn(2) == 0)
	b = append(b, "</IsWheelchairAccessible>\n"...)
	if g.shapes {
		b = g.appendShapes(b, i, &r, c)
	}
	if notes && g.paddingBytes > 0 {
		off := i % len(fillerPattern)
		b = append(b, notesOpen...)
		b = append(b, g.filler[off:off+g.paddingBytes]...)
		b = append(b, notesClose...)
	}
	return append(b, g.close...)
}

// appendShapes writes the typed and geography columns of a Shapes export. Entity i gets a
// WKT geometry of type i mod 7, so that every type occurs in any export of seven entities
// or more; every third entity also has a delivery area, a polygon with a hole.
func (g *generator) appendShapes(b []byte, i int, r *splitmix, c *city) []byte {
	b = append(b, "    <Rating>"...)
	b = appendMicrodegrees(b, int64(1+r.intn(9))*500000)
	b = append(b, "</Rating>\n    <Opened>"...)
	b = append(b, fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:00.0000000Z", 1990+r.intn(35), 1+r.intn(12), 1+r.intn(28), r.intn(24), r.intn(60))...)
	b = append(b, "</Opened>\n    <Shape>"...)
	lon, lat := c.lon+int64(r.intn(2*jitter+1))-jitter, c.lat+int64(r.intn(2*jitter+1))-jitter
	pt := func(b []byte, dx, dy int64) []byte {
		b = appendMicrodegrees(b, lon+dx)
		b = append(b, ' ')
		return appendMicrodegrees(b, lat+dy)
	}
	ring := func(b []byte, d int64) []byte { // a closed square of half-side d, counter-clockwise
		b = append(b, '(')
		for k, p := range [][2]int64{{-d, -d}, {d, -d}, {d, d}, {-d, d}, {-d, -d}} {
			if k > 0 {
				b = append(b, ", "...)
			}
			b = pt(b, p[0], p[1])
		}
		return append(b, ')')
	}
	line := func(b []byte, dy int64) []byte {
		b = append(b, '(')
		b = pt(b, 0, dy)
		b = append(b, ", "...)
		b = pt(b, 1500, dy+700)
		b = append(b, ", "...)
		b = pt(b, 3000, dy-400)
		return append(b, ')')
	}
	switch i % 7 {
	case 0:
		b = append(b, "POINT ("...)
		b = pt(b, 0, 0)
		b = append(b, ')')
	case 1:
		b = append(b, "LINESTRING "...)
		b = line(b, 0)
	case 2:
		b = append(b, "POLYGON ("...)
		b = ring(b, 2000)
		b = append(b, ", "...)
		b = ring(b, 500) // a hole
		b = append(b, ')')
	case 3:
		b = append(b, "MULTIPOINT ("...)
		b = append(b, '(')
		b = pt(b, 0, 0)
		b = append(b, "), ("...)
		b = pt(b, 900, 900)
		b = append(b, "))"...)
	case 4:
		b = append(b, "MULTILINESTRING ("...)
		b = line(b, 0)
		b = append(b, ", "...)
		b = line(b, 2000)
		b = append(b, ')')
	case 5:
		b = append(b, "MULTIPOLYGON (("...)
		b = ring(b, 1000)
		b = append(b, "), ("...)
		b = ring(b, 300)
		b = append(b, "))"...)
	case 6:
		b = append(b, "GEOMETRYCOLLECTION (POINT ("...)
		b = pt(b, 0, 0)
		b = append(b, "), LINESTRING "...)
		b = line(b, 0)
		b = append(b, ')')
	}
	b = append(b, "</Shape>\n"...)
	if i%3 == 0 {
		b = append(b, "    <DeliveryArea>POLYGON ("...)
		b = ring(b, 8000)
		b = append(b, ", "...)
		b = ring(b, 1000)
		b = append(b, ")</DeliveryArea>\n"...)
	}
	return b
}

// appendMicrodegrees writes v/1e6 the way .NET prints a double: no trailing zeros.
func appendMicrodegrees(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	b = strconv.AppendInt(b, v/1e6, 10)
	frac := v % 1e6
	if frac == 0 {
		return b
	}
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 6
	for digits[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, digits[:n]...)
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
