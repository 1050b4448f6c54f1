package sdsemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sdsops/sdsops/internal/dataset"
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

// loadSchema is what the emulator keeps of an uploaded schema.
type loadSchema struct {
	*dataset.Schema
	primaryKey int
	lat, lon   int // Latitude and Longitude columns of type xs:double, or -1
	geography  []int
}

// checkSchema applies the load's rules that go beyond the DataSet format; its error is the
// job's error message.
func checkSchema(ds *dataset.Schema, root string) (*loadSchema, error) {
	if strings.EqualFold(ds.DataSetName, root) {
		return nil, fmt.Errorf("the XML root element <%s> must have a different name than the data set element", root)
	}
	if !propertyPattern.MatchString(ds.EntityType) {
		return nil, fmt.Errorf("entity type name %q is not valid", truncateText(ds.EntityType, 60))
	}
	s := &loadSchema{Schema: ds, lat: -1, lon: -1}
	props := 0
	for i, c := range ds.Columns {
		if !propertyPattern.MatchString(c.Name) || strings.HasPrefix(c.Name, "__") {
			return nil, fmt.Errorf("property name %q is not valid: up to 50 letters, digits and underscores, starting with a letter or one underscore", truncateText(c.Name, 60))
		}
		switch lower := strings.ToLower(c.Name); {
		case lower == "latitude" && c.Type == dataset.Double:
			s.lat = i
		case lower == "longitude" && c.Type == dataset.Double:
			s.lon = i
		case lower != "latitude" && lower != "longitude":
			props++
		}
		if c.Type == dataset.Geography {
			s.geography = append(s.geography, i)
		}
	}
	if props > maxProperties {
		return nil, fmt.Errorf("the schema has %d properties besides Latitude and Longitude, the limit is %d", props, maxProperties)
	}
	if (s.lat < 0 || s.lon < 0) && len(s.geography) == 0 {
		return nil, errors.New("the schema must include Latitude and Longitude (xs:double) or a geography (xs:anyType) property")
	}
	if ds.Key == "" {
		return nil, errors.New("the schema defines no entity ID (xs:unique with an xs:field)")
	}
	s.primaryKey = ds.Index(ds.Key)
	if c := ds.Columns[s.primaryKey]; c.Type != dataset.String {
		return nil, fmt.Errorf("the entity ID %s must be of type xs:string", c.Name)
	}
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
	// The load matches property names in any case, and an entity with a stray property fails
	// alone rather than the whole upload.
	rd := dataset.NewReader(&capReader{r: r}, "", dataset.FoldNames(), dataset.RecordErrors())
	abort := func(format string, args ...any) (loadOutcome, error) {
		o.abort = fmt.Sprintf(format, args...)
		return o, nil
	}
	stop := func(err error) (loadOutcome, error) {
		var be *bodyError
		if errors.Is(err, errTooLarge) || errors.As(err, &be) {
			return o, err
		}
		return abort("The data is not a valid DataSet after %d entities: %s.", o.entities, truncateText(err.Error(), 200))
	}
	ds, err := rd.Schema()
	if err != nil {
		return stop(err)
	}
	s, err := checkSchema(ds, rd.Root())
	if err != nil {
		return abort("Invalid schema: %s.", err.Error())
	}
	o.schema = s
	writeStoredHeader(out, dataSourceName, s)
	writeStoredHeader(failed, dataSourceName, s)
	seen := map[string]struct{}{}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return stop(err)
		}
		o.entities++
		if o.entities > maxEntities {
			return abort("The data has more than %d entities.", maxEntities)
		}
		problem := checkEntity(s, rec)
		if problem == "" {
			key := rec.Value(s.primaryKey).Text()
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
			writeEntity(failed, rec)
			continue
		}
		writeEntity(out, rec)
	}
	_, _ = out.WriteString(storedFooter)
	_, _ = failed.WriteString(storedFooter)
	if o.failed > 0 {
		o.abort = fmt.Sprintf("%d of %d entities failed validation; nothing was loaded. The failed output lists them.", o.failed, o.entities)
	}
	return o, nil
}

// checkEntity returns why the load refuses an entity, or "": the first property that breaks
// the schema or whose value does not fit its type, else a missing entity ID or location.
func checkEntity(s *loadSchema, rec *dataset.Record) string {
	if err := rec.Err(); err != nil {
		return err.Error()
	}
	for i, c := range s.Columns {
		if v := rec.Value(i); v.Present {
			if p := checkValue(c, v); p != "" {
				return p
			}
		}
	}
	pk := rec.Value(s.primaryKey)
	switch {
	case !pk.Present || len(pk.Raw) == 0:
		return fmt.Sprintf("the entity ID %s is missing", s.Columns[s.primaryKey].Name)
	case utf8.RuneCount(pk.Raw) > maxPrimaryKeyLen:
		return fmt.Sprintf("the entity ID is longer than %d characters", maxPrimaryKeyLen)
	}
	for _, g := range s.geography {
		if rec.Value(g).Present {
			return ""
		}
	}
	if s.lat >= 0 && s.lon >= 0 && rec.Value(s.lat).Present && rec.Value(s.lon).Present {
		return ""
	}
	return "the entity has no location: give Latitude and Longitude or a geography value"
}

// The load takes a date without a time as well.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02"}

func checkValue(c dataset.Column, v dataset.Value) string {
	bad := func() string {
		return fmt.Sprintf("property %s: %q is not a valid %s", c.Name, truncateText(v.Text(), 40), c.Type)
	}
	switch c.Type {
	case dataset.String:
		if utf8.RuneCount(v.Raw) > maxStringRunes {
			return fmt.Sprintf("property %s is longer than %d characters", c.Name, maxStringRunes)
		}
	case dataset.Long:
		if _, err := v.Long(); err != nil {
			return bad()
		}
	case dataset.Boolean:
		if _, err := v.Bool(); err != nil {
			return bad()
		}
	case dataset.Double:
		f, err := v.Double()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad()
		}
		t := strings.TrimSpace(v.Text())
		switch strings.ToLower(c.Name) {
		case "latitude":
			if f < -90 || f > 90 {
				return fmt.Sprintf("Latitude %s is outside -90..90", t)
			}
		case "longitude":
			if f < -180 || f > 180 {
				return fmt.Sprintf("Longitude %s is outside -180..180", t)
			}
		}
	case dataset.DateTime:
		t := strings.TrimSpace(v.Text())
		for _, l := range dateLayouts {
			if _, err := time.Parse(l, t); err == nil {
				return ""
			}
		}
		return bad()
	case dataset.Geography:
		if p := checkWKT(strings.TrimSpace(v.Text())); p != "" {
			return fmt.Sprintf("property %s: %s", c.Name, p)
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
	n, et := storedAttr.Replace(name), storedAttr.Replace(s.EntityType)
	w.WriteString(`<?xml version="1.0" encoding="UTF-8" ?>` + "\n<MainRoot>\n")
	w.WriteString(`  <xs:schema xmlns="" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:msdata="urn:schemas-microsoft-com:xml-msdata" id="` + n + "\">\n")
	w.WriteString(`    <xs:element name="` + n + `" msdata:IsDataSet="true" msdata:UseCurrentLocale="true">` + "\n")
	w.WriteString("      <xs:complexType>\n")
	w.WriteString(`        <xs:choice minOccurs="0" maxOccurs="unbounded">` + "\n")
	w.WriteString(`          <xs:element name="` + et + "\">\n")
	w.WriteString("            <xs:complexType>\n              <xs:sequence>\n")
	for _, c := range s.Columns {
		extra := ""
		if c.Type == dataset.DateTime {
			extra = ` msdata:DateTimeMode="Utc"`
		}
		w.WriteString(`                <xs:element name="` + c.Name + `" type="` + c.Type.String() + `"` + extra + ` minOccurs="0"/>` + "\n")
	}
	w.WriteString("              </xs:sequence>\n            </xs:complexType>\n          </xs:element>\n")
	w.WriteString("        </xs:choice>\n      </xs:complexType>\n")
	w.WriteString(`      <xs:unique name="Constraint1" msdata:PrimaryKey="true">` + "\n")
	w.WriteString(`        <xs:selector xpath=".//` + et + `"/>` + "\n")
	w.WriteString(`        <xs:field xpath="` + s.Columns[s.primaryKey].Name + `"/>` + "\n")
	w.WriteString("      </xs:unique>\n    </xs:element>\n  </xs:schema>\n")
}

// writeEntity writes one entity, properties in schema order; an omitted value stays omitted.
func writeEntity(w *bufio.Writer, rec *dataset.Record) {
	s := rec.Schema()
	w.WriteString("  <" + s.EntityType + ">\n")
	for i, c := range s.Columns {
		v := rec.Value(i)
		if !v.Present {
			continue
		}
		w.WriteString("    <" + c.Name + ">")
		storedText.WriteString(w, v.Text())
		w.WriteString("</" + c.Name + ">\n")
	}
	w.WriteString("  </" + s.EntityType + ">\n")
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
