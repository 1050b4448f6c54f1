package sdsemu

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Documented data limits checked on upload ("Load Data Source Data Schema and Sample Input",
// "Geocode and Data Source Limits").
const (
	// MaxUploadBytes is 300 MB of uncompressed data, MB read as 10^6 bytes.
	MaxUploadBytes = 300_000_000

	maxProperties     = 350 // not counting Latitude and Longitude
	maxStringRunes    = 2560
	maxPrimaryKeyLen  = 50
	maxGeographyPoint = 100000
)

var propertyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,49}$`)

// column types of the XML schema and the OData type each maps to.
var columnTypes = map[string]bool{"string": true, "long": true, "boolean": true, "double": true, "dateTime": true, "anyType": true}

type column struct {
	name string
	typ  string // local XSD type name
}

// loadSchema is what the emulator keeps of an uploaded schema.
type loadSchema struct {
	entityType string
	columns    []column
	index      map[string]int // lower-cased name -> column
	primaryKey int
	hasLatLon  bool
	geography  []int
}

// xsdSchema is the part of the inline xs:schema the load reads. Tags without a namespace match
// the elements whatever prefix the document gives the XML Schema namespace.
type xsdSchema struct {
	ID       string `xml:"id,attr"`
	Elements []struct {
		Name        string `xml:"name,attr"`
		ComplexType struct {
			Choice struct {
				Elements []struct {
					Name        string `xml:"name,attr"`
					ComplexType struct {
						Sequence struct {
							Elements []struct {
								Name string `xml:"name,attr"`
								Type string `xml:"type,attr"`
							} `xml:"element"`
						} `xml:"sequence"`
					} `xml:"complexType"`
				} `xml:"element"`
			} `xml:"choice"`
		} `xml:"complexType"`
		Unique []struct {
			Fields []struct {
				XPath string `xml:"xpath,attr"`
			} `xml:"field"`
		} `xml:"unique"`
	} `xml:"element"`
}

// parseSchema checks the schema against the documented rules; its error is the job's error
// message.
func parseSchema(x *xsdSchema, rootName string) (*loadSchema, error) {
	if len(x.Elements) != 1 {
		return nil, errors.New("the schema must define exactly one data set element")
	}
	ds := x.Elements[0]
	if strings.EqualFold(ds.Name, rootName) {
		return nil, fmt.Errorf("the XML root element <%s> must have a different name than the data set element", rootName)
	}
	types := ds.ComplexType.Choice.Elements
	if len(types) != 1 {
		return nil, errors.New("the schema must define exactly one entity type inside xs:choice")
	}
	et := types[0]
	if !propertyPattern.MatchString(et.Name) {
		return nil, fmt.Errorf("entity type name %q is not valid", truncateText(et.Name, 60))
	}
	s := &loadSchema{entityType: et.Name, index: map[string]int{}, primaryKey: -1}
	props := 0
	for _, e := range et.ComplexType.Sequence.Elements {
		name := e.Name
		if !propertyPattern.MatchString(name) || strings.HasPrefix(name, "__") {
			return nil, fmt.Errorf("property name %q is not valid: up to 50 letters, digits and underscores, starting with a letter or one underscore", truncateText(name, 60))
		}
		_, typ, _ := strings.Cut(e.Type, ":")
		if !strings.Contains(e.Type, ":") {
			typ = e.Type
		}
		if !columnTypes[typ] {
			return nil, fmt.Errorf("property %s has type %q: want xs:string, xs:long, xs:boolean, xs:double, xs:dateTime or xs:anyType", name, truncateText(e.Type, 40))
		}
		lower := strings.ToLower(name)
		if _, dup := s.index[lower]; dup {
			return nil, fmt.Errorf("property %s is defined twice (names are case-insensitive)", name)
		}
		s.index[lower] = len(s.columns)
		s.columns = append(s.columns, column{name: name, typ: typ})
		if lower != "latitude" && lower != "longitude" {
			props++
		}
		if typ == "anyType" {
			s.geography = append(s.geography, len(s.columns)-1)
		}
	}
	if props > maxProperties {
		return nil, fmt.Errorf("the schema has %d properties besides Latitude and Longitude, the limit is %d", props, maxProperties)
	}
	lat, okLat := s.index["latitude"]
	lon, okLon := s.index["longitude"]
	s.hasLatLon = okLat && okLon && s.columns[lat].typ == "double" && s.columns[lon].typ == "double"
	if !s.hasLatLon && len(s.geography) == 0 {
		return nil, errors.New("the schema must include Latitude and Longitude (xs:double) or a geography (xs:anyType) property")
	}
	if len(ds.Unique) == 0 || len(ds.Unique[0].Fields) == 0 {
		return nil, errors.New("the schema defines no entity ID (xs:unique with an xs:field)")
	}
	fields := ds.Unique[0].Fields
	key := strings.TrimPrefix(strings.TrimSpace(fields[len(fields)-1].XPath), "@")
	i, ok := s.index[strings.ToLower(key)]
	if !ok {
		return nil, fmt.Errorf("the entity ID %q is not a property of %s", truncateText(key, 60), et.Name)
	}
	if s.columns[i].typ != "string" {
		return nil, fmt.Errorf("the entity ID %s must be of type xs:string", s.columns[i].name)
	}
	s.primaryKey = i
	return s, nil
}

// loadOutcome is the result of reading an upload.
type loadOutcome struct {
	schema    *loadSchema
	entities  int
	failed    int
	abort     string // non-empty: the job aborts with this message
	failedLog bool   // the failed writer received a data set of the failed entities
}

// errTooLarge stops reading an upload that exceeds MaxUploadBytes.
var errTooLarge = fmt.Errorf("the uploaded data exceeds %d bytes uncompressed", MaxUploadBytes)

// bodyError is a failure to receive or decompress the upload, as opposed to a fault in the
// data: the request fails and no job is created.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// bodyReader marks every error but io.EOF of r as a bodyError.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyError{err}
	}
	return n, err
}

// capReader fails once more than MaxUploadBytes have been read.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > MaxUploadBytes {
		return n, errTooLarge
	}
	return n, err
}

// readUpload validates an uploaded XML DataSet as it streams, writing the stored document for
// dataSourceName to out and the failed entities to failed. An error is returned only for
// errTooLarge or a broken connection; everything else the job reports.
func readUpload(r io.Reader, dataSourceName string, maxEntities int, out, failed *bufio.Writer) (loadOutcome, error) {
	var o loadOutcome
	cr := &capReader{r: r}
	d := xml.NewDecoder(cr)
	d.Strict = true
	// Without a CharsetReader any declared encoding but UTF-8 is an error: SDS takes only UTF-8.
	abort := func(format string, args ...any) (loadOutcome, error) {
		o.abort = fmt.Sprintf(format, args...)
		return o, nil
	}
	stop := func(err error) (loadOutcome, error) {
		var be *bodyError
		if errors.Is(err, errTooLarge) || errors.As(err, &be) {
			return o, err
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) || strings.HasPrefix(err.Error(), "xml:") {
			return abort("The data is not well-formed UTF-8 XML after %d entities: %s", o.entities, truncateText(err.Error(), 200))
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return abort("The data ends after %d entities, inside an element.", o.entities)
		}
		return o, err
	}
	var root string
	seen := map[string]struct{}{}
	var row []string
	var present []bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return stop(err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			if cd, ok := tok.(xml.CharData); ok && root != "" && strings.TrimSpace(string(cd)) != "" {
				return abort("Text outside an entity after %d entities.", o.entities)
			}
			continue
		}
		if root == "" {
			root = se.Name.Local
			continue
		}
		if o.schema == nil {
			if se.Name.Local != "schema" {
				return abort("The data must start with an inline xs:schema; found <%s>.", truncateText(se.Name.Local, 60))
			}
			var x xsdSchema
			if err := d.DecodeElement(&x, &se); err != nil {
				return stop(err)
			}
			s, err := parseSchema(&x, root)
			if err != nil {
				return abort("Invalid schema: %s.", err.Error())
			}
			o.schema = s
			row = make([]string, len(s.columns))
			present = make([]bool, len(s.columns))
			writeStoredHeader(out, dataSourceName, s)
			writeStoredHeader(failed, dataSourceName, s)
			continue
		}
		if se.Name.Local != o.schema.entityType {
			return abort("Found <%s> where <%s> entities were expected (after %d entities).", truncateText(se.Name.Local, 60), o.schema.entityType, o.entities)
		}
		o.entities++
		if o.entities > maxEntities {
			return abort("The data has more than %d entities.", maxEntities)
		}
		clear(present)
		problem, err := readEntity(d, o.schema, row, present)
		if err != nil {
			return stop(err)
		}
		if problem == "" {
			key := row[o.schema.primaryKey]
			if _, dup := seen[key]; dup {
				problem = fmt.Sprintf("entity ID %q is used by an earlier entity", key)
			} else {
				seen[key] = struct{}{}
			}
		}
		if problem != "" {
			o.failed++
			o.failedLog = true
			fmt.Fprintf(failed, "  <!-- entity %d: %s -->\n", o.entities, commentEscaper.Replace(problem))
			writeEntity(failed, o.schema, row, present)
			continue
		}
		writeEntity(out, o.schema, row, present)
	}
	if root == "" {
		return abort("The data is empty.")
	}
	if o.schema == nil {
		return abort("The data has no inline xs:schema.")
	}
	_, _ = out.WriteString(storedFooter)
	_, _ = failed.WriteString(storedFooter)
	if o.failed > 0 {
		o.abort = fmt.Sprintf("%d of %d entities failed validation; nothing was loaded. The failed output lists them.", o.failed, o.entities)
	}
	return o, nil
}

// readEntity reads one entity's properties into row. A non-empty problem fails the entity;
// err is a broken document.
func readEntity(d *xml.Decoder, s *loadSchema, row []string, present []bool) (problem string, err error) {
	note := func(p string) {
		if problem == "" {
			problem = p
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if problem == "" {
				problem = checkEntity(s, row, present)
			}
			return problem, nil
		case xml.StartElement:
			var v struct {
				Text  string     `xml:",chardata"`
				Inner []xml.Name `xml:",any"`
			}
			if err := d.DecodeElement(&v, &t); err != nil {
				return "", err
			}
			i, ok := s.index[strings.ToLower(t.Name.Local)]
			switch {
			case !ok:
				note(fmt.Sprintf("property %s is not in the schema", truncateText(t.Name.Local, 60)))
			case len(v.Inner) > 0:
				note(fmt.Sprintf("property %s holds elements, not a value", s.columns[i].name))
			case present[i]:
				note(fmt.Sprintf("property %s is given twice", s.columns[i].name))
			default:
				row[i], present[i] = v.Text, true
				if p := checkValue(s.columns[i], v.Text); p != "" {
					note(p)
				}
			}
		}
	}
}

// checkEntity applies the rules that span properties: an entity ID, and a location.
func checkEntity(s *loadSchema, row []string, present []bool) string {
	pk := s.primaryKey
	switch {
	case !present[pk] || row[pk] == "":
		return fmt.Sprintf("the entity ID %s is missing", s.columns[pk].name)
	case utf8.RuneCountInString(row[pk]) > maxPrimaryKeyLen:
		return fmt.Sprintf("the entity ID is longer than %d characters", maxPrimaryKeyLen)
	}
	for _, g := range s.geography {
		if present[g] {
			return ""
		}
	}
	if s.hasLatLon && present[s.index["latitude"]] && present[s.index["longitude"]] {
		return ""
	}
	return "the entity has no location: give Latitude and Longitude or a geography value"
}

var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02"}

func checkValue(c column, v string) string {
	bad := func() string {
		return fmt.Sprintf("property %s: %q is not a valid xs:%s", c.name, truncateText(v, 40), c.typ)
	}
	t := strings.TrimSpace(v)
	switch c.typ {
	case "string":
		if utf8.RuneCountInString(v) > maxStringRunes {
			return fmt.Sprintf("property %s is longer than %d characters", c.name, maxStringRunes)
		}
	case "long":
		if _, err := strconv.ParseInt(t, 10, 64); err != nil {
			return bad()
		}
	case "boolean":
		switch t {
		case "true", "false", "1", "0":
		default:
			return bad()
		}
	case "double":
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		switch strings.ToLower(c.name) {
		case "latitude":
			if f < -90 || f > 90 {
				return fmt.Sprintf("Latitude %s is outside -90..90", t)
			}
		case "longitude":
			if f < -180 || f > 180 {
				return fmt.Sprintf("Longitude %s is outside -180..180", t)
			}
		}
	case "dateTime":
		for _, l := range dateLayouts {
			if _, err := time.Parse(l, t); err == nil {
				return ""
			}
		}
		return bad()
	case "anyType":
		if p := checkWKT(t); p != "" {
			return fmt.Sprintf("property %s: %s", c.name, p)
		}
	}
	return ""
}

var wktTypes = []string{"GEOMETRYCOLLECTION", "MULTIPOLYGON", "MULTILINESTRING", "MULTIPOINT", "POLYGON", "LINESTRING", "POINT"}

// checkWKT is a shallow well-known-text check: a known type, balanced parentheses, numeric
// coordinates and at most maxGeographyPoint points.
func checkWKT(v string) string {
	u := strings.ToUpper(v)
	known := false
	for _, t := range wktTypes {
		if strings.HasPrefix(u, t) {
			known = true
			break
		}
	}
	if !known {
		return "not well-known text (POINT, LINESTRING, POLYGON, MULTI… or GEOMETRYCOLLECTION)"
	}
	if strings.HasSuffix(strings.TrimSpace(u), "EMPTY") {
		return ""
	}
	depth, points := 0, 0
	inNumber := false
	for _, r := range u {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
			if depth < 0 {
				return "unbalanced parentheses"
			}
		case r == ',':
			points++
		case r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+' || r == 'E':
			inNumber = true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r >= 'A' && r <= 'Z':
		default:
			return fmt.Sprintf("unexpected character %q", r)
		}
	}
	if depth != 0 || !inNumber {
		return "unbalanced parentheses or no coordinates"
	}
	if points+1 > maxGeographyPoint {
		return fmt.Sprintf("more than %d points", maxGeographyPoint)
	}
	return ""
}

const storedFooter = "</MainRoot>\n"

var (
	commentEscaper = strings.NewReplacer("--", "- -")
	storedText     = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	storedAttr     = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

// writeStoredHeader writes the download form of a loaded data set: the same layout as the
// generated exports, the data source named as loaded, the uploaded entity type and columns.
func writeStoredHeader(w *bufio.Writer, name string, s *loadSchema) {
	n, et := storedAttr.Replace(name), storedAttr.Replace(s.entityType)
	w.WriteString(`<?xml version="1.0" encoding="UTF-8" ?>` + "\n<MainRoot>\n")
	w.WriteString(`  <xs:schema xmlns="" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata" id="` + n + "\">\n")
	w.WriteString(`    <xs:element name="` + n + `" msdata:IsDataSet="true" msdata:UseCurrentLocale="true">` + "\n")
	w.WriteString("      <xs:complexType>\n")
	w.WriteString(`        <xs:choice minOccurs="0" maxOccurs="unbounded">` + "\n")
	w.WriteString(`          <xs:element name="` + et + "\">\n")
	w.WriteString("            <xs:complexType>\n              <xs:sequence>\n")
	for _, c := range s.columns {
		extra := ""
		if c.typ == "dateTime" {
			extra = ` msdata:DateTimeMode="Utc"`
		}
		w.WriteString(`                <xs:element name="` + c.name + `" type="xs:` + c.typ + `"` + extra + ` minOccurs="0"/>` + "\n")
	}
	w.WriteString("              </xs:sequence>\n            </xs:complexType>\n          </xs:element>\n")
	w.WriteString("        </xs:choice>\n      </xs:complexType>\n")
	w.WriteString(`      <xs:unique name="Constraint1" msdata:PrimaryKey="true">` + "\n")
	w.WriteString(`        <xs:selector xpath=".//` + et + `"/>` + "\n")
	w.WriteString(`        <xs:field xpath="` + s.columns[s.primaryKey].name + `"/>` + "\n")
	w.WriteString("      </xs:unique>\n    </xs:element>\n  </xs:schema>\n")
}

// writeEntity writes one entity, properties in schema order; an omitted value stays omitted.
func writeEntity(w *bufio.Writer, s *loadSchema, row []string, present []bool) {
	w.WriteString("  <" + s.entityType + ">\n")
	for i, c := range s.columns {
		if !present[i] {
			continue
		}
		w.WriteString("    <" + c.name + ">")
		storedText.WriteString(w, row[i])
		w.WriteString("</" + c.name + ">\n")
	}
	w.WriteString("  </" + s.entityType + ">\n")
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
