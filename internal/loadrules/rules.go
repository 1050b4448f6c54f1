// Package loadrules holds the documented rules a Load Data Source job
// applies to its data ("Load Data Source Data Schema and Sample Input",
// "Geocode and Data Source Limits"): the load path checks a request
// against them, the archiver checks every export against them as it is
// read, and the emulator refuses what they refuse.
package loadrules

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sdsops/sdsops/internal/dataset"
)

// Documented limits of one load. MB is read as 10^6 bytes, the smaller
// reading.
const (
	MaxBytes          = 300_000_000         // uncompressed UTF-8 data
	MaxEntities       = dataset.MaxEntities // entities of a data source
	MaxProperties     = 350                 // not counting Latitude and Longitude
	MaxStringRunes    = 2560                // characters of an xs:string value
	MaxKeyRunes       = 50                  // characters of the entity ID
	MaxGeographyPoint = 100_000             // points of one geography value
)

var propertyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,49}$`)

// Schema is an entity type a load accepts, with the columns the rules
// look at.
type Schema struct {
	*dataset.Schema
	Key       int   // the entity ID's column
	Lat, Lon  int   // Latitude and Longitude columns of type xs:double, or -1
	Geography []int // columns of type xs:anyType
}

// CheckSchema applies the load's rules that go beyond the DataSet format to
// a schema whose document has the root element root; its error says which
// rule the schema breaks (names and types only, never data).
func CheckSchema(ds *dataset.Schema, root string) (*Schema, error) {
	if strings.EqualFold(ds.DataSetName, root) {
		return nil, fmt.Errorf("the XML root element <%s> must have a different name than the data set element", truncate(root, 60))
	}
	if !propertyPattern.MatchString(ds.EntityType) {
		return nil, fmt.Errorf("entity type name %q is not valid", truncate(ds.EntityType, 60))
	}
	s := &Schema{Schema: ds, Lat: -1, Lon: -1}
	props := 0
	for i, c := range ds.Columns {
		if !propertyPattern.MatchString(c.Name) || strings.HasPrefix(c.Name, "__") {
			return nil, fmt.Errorf("property name %q is not valid: up to 50 letters, digits and underscores, starting with a letter or one underscore", truncate(c.Name, 60))
		}
		switch lower := strings.ToLower(c.Name); {
		case lower == "latitude" && c.Type == dataset.Double:
			s.Lat = i
		case lower == "longitude" && c.Type == dataset.Double:
			s.Lon = i
		case lower != "latitude" && lower != "longitude":
			props++
		}
		if c.Type == dataset.Geography {
			s.Geography = append(s.Geography, i)
		}
	}
	if props > MaxProperties {
		return nil, fmt.Errorf("the schema has %d properties besides Latitude and Longitude, the limit is %d", props, MaxProperties)
	}
	if (s.Lat < 0 || s.Lon < 0) && len(s.Geography) == 0 {
		return nil, errors.New("the schema must include Latitude and Longitude (xs:double) or a geography (xs:anyType) property")
	}
	if ds.Key == "" {
		return nil, errors.New("the schema defines no entity ID (xs:unique with an xs:field)")
	}
	s.Key = ds.Index(ds.Key)
	if c := ds.Columns[s.Key]; c.Type != dataset.String {
		return nil, fmt.Errorf("the entity ID %s must be of type xs:string", c.Name)
	}
	return s, nil
}

// Fault is why the load refuses one entity. Rule names the rule without
// any of the entity's data; Error adds the offending value, for the load's
// own failed output only.
type Fault struct {
	Rule  string // e.g. "the entity has no location …"; no data
	Value string // the offending value, clipped; may be empty
}

func (f *Fault) Error() string {
	if f.Value == "" {
		return f.Rule
	}
	return fmt.Sprintf("%s: %q", f.Rule, f.Value)
}

// CheckEntity returns why the load refuses an entity, or nil: the first
// property that breaks the schema or whose value does not fit its type,
// else a missing entity ID or location. Duplicate entity IDs are the
// caller's to find: they need every entity.
func (s *Schema) CheckEntity(rec *dataset.Record) *Fault {
	if err := rec.Err(); err != nil {
		// The reader's message names elements, not values.
		return &Fault{Rule: "structure: " + err.Error()}
	}
	for i := range s.Columns {
		if v := rec.Value(i); v.Present {
			if f := s.checkValue(i, v); f != nil {
				return f
			}
		}
	}
	pk := rec.Value(s.Key)
	switch {
	case !pk.Present || len(pk.Raw) == 0:
		return &Fault{Rule: fmt.Sprintf("the entity ID %s is missing", s.Columns[s.Key].Name)}
	case len(pk.Raw) > MaxKeyRunes && utf8.RuneCount(pk.Raw) > MaxKeyRunes:
		return &Fault{Rule: fmt.Sprintf("the entity ID is longer than %d characters", MaxKeyRunes), Value: truncate(pk.Text(), 60)}
	}
	for _, g := range s.Geography {
		if rec.Value(g).Present {
			return nil
		}
	}
	if s.Lat >= 0 && s.Lon >= 0 && rec.Value(s.Lat).Present && rec.Value(s.Lon).Present {
		return nil
	}
	return &Fault{Rule: "the entity has no location: give Latitude and Longitude or a geography value"}
}

// The load takes a date without a time as well.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02"}

// checkValue checks the value of column i. It runs on every value of every
// archived export, so it allocates only for a fault.
func (s *Schema) checkValue(i int, v dataset.Value) *Fault {
	c := s.Columns[i]
	bad := func() *Fault {
		return &Fault{Rule: fmt.Sprintf("property %s is not a valid %s", c.Name, c.Type), Value: truncate(v.Text(), 40)}
	}
	switch c.Type {
	case dataset.String:
		if len(v.Raw) > MaxStringRunes && utf8.RuneCount(v.Raw) > MaxStringRunes {
			return &Fault{Rule: fmt.Sprintf("property %s is longer than %d characters", c.Name, MaxStringRunes)}
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
		switch {
		case i == s.Lat && (f < -90 || f > 90):
			return &Fault{Rule: "Latitude is outside -90..90", Value: truncate(strings.TrimSpace(v.Text()), 40)}
		case i == s.Lon && (f < -180 || f > 180):
			return &Fault{Rule: "Longitude is outside -180..180", Value: truncate(strings.TrimSpace(v.Text()), 40)}
		}
	case dataset.DateTime:
		t := strings.TrimSpace(v.Text())
		for _, l := range dateLayouts {
			if _, err := time.Parse(l, t); err == nil {
				return nil
			}
		}
		return bad()
	case dataset.Geography:
		if p := checkWKT(v.Raw); p != "" {
			return &Fault{Rule: fmt.Sprintf("property %s: %s", c.Name, p)}
		}
	}
	return nil
}

var wktTypes = []string{"GEOMETRYCOLLECTION", "MULTIPOLYGON", "MULTILINESTRING", "MULTIPOINT", "POLYGON", "LINESTRING", "POINT"}

// checkWKT is a shallow well-known-text check: a known type, balanced
// parentheses, numeric coordinates and at most MaxGeographyPoint points.
// It reads the bytes in place: a geography may be megabytes.
func checkWKT(raw []byte) string {
	v := trimSpace(raw)
	known := false
	for _, t := range wktTypes {
		if len(v) >= len(t) && strings.EqualFold(string(v[:len(t)]), t) {
			known = true
			break
		}
	}
	if !known {
		return "not well-known text (POINT, LINESTRING, POLYGON, MULTI… or GEOMETRYCOLLECTION)"
	}
	if len(v) >= 5 && strings.EqualFold(string(v[len(v)-5:]), "EMPTY") {
		return ""
	}
	depth, points := 0, 0
	inNumber := false
	for _, b := range v {
		switch {
		case b == '(':
			depth++
		case b == ')':
			depth--
			if depth < 0 {
				return "unbalanced parentheses"
			}
		case b == ',':
			points++
		case b >= '0' && b <= '9' || b == '.' || b == '-' || b == '+' || b == 'E' || b == 'e':
			inNumber = true
		case b == ' ' || b == '\t' || b == '\n' || b == '\r' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z':
		default:
			return fmt.Sprintf("unexpected character %q", rune(b))
		}
	}
	if depth != 0 || !inNumber {
		return "unbalanced parentheses or no coordinates"
	}
	if points+1 > MaxGeographyPoint {
		return fmt.Sprintf("more than %d points", MaxGeographyPoint)
	}
	return ""
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
