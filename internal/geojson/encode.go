package geojson

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkt"
	"github.com/sdsops/sdsops/internal/dataset"
)

// maxSafeInt is the largest integer a JSON reader holding numbers as
// IEEE doubles (JavaScript, most GIS) keeps exactly: 2^53 − 1.
const maxSafeInt = 1<<53 - 1

// appendValue appends a property value typed from its column.
func appendValue(b []byte, v dataset.Value) []byte {
	switch v.Type {
	case dataset.Long:
		return appendLong(b, v)
	case dataset.Double:
		f, err := v.Double()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return appendString(b, v.Raw)
		}
		return appendFloat(b, f)
	case dataset.Boolean:
		t, err := v.Bool()
		if err != nil {
			return appendString(b, v.Raw)
		}
		return strconv.AppendBool(b, t)
	case dataset.DateTime:
		t, err := v.Time()
		if err != nil {
			return appendString(b, v.Raw)
		}
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	return appendString(b, v.Raw)
}

// appendLong appends an xs:long as a number when a double holds it
// exactly, else as a string of its digits.
func appendLong(b []byte, v dataset.Value) []byte {
	n, err := v.Long()
	switch {
	case err != nil:
		return appendString(b, v.Raw)
	case n < -maxSafeInt || n > maxSafeInt:
		b = append(b, '"')
		b = strconv.AppendInt(b, n, 10)
		return append(b, '"')
	}
	return strconv.AppendInt(b, n, 10)
}

// appendFloat formats like encoding/json: plain decimals, exponents only
// for very large or small magnitudes.
func appendFloat(b []byte, f float64) []byte {
	if b, ok := appendMicros(b, f); ok {
		return b
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendMicros is a fast path of appendFloat for the common coordinate
// of at most six decimals: when f is the double nearest to n/10^6 for an
// integer n (division of exact operands is correctly rounded), the digits
// of n with the point put back read back as f exactly.
func appendMicros(b []byte, f float64) ([]byte, bool) {
	n := math.Round(f * 1e6)
	if n/1e6 != f || math.Abs(n) >= 1e15 || n == 0 {
		return b, false
	}
	i := int64(n)
	if i < 0 {
		b = append(b, '-')
		i = -i
	}
	b = strconv.AppendInt(b, i/1e6, 10)
	frac := i % 1e6
	if frac == 0 {
		return b, true
	}
	var d [7]byte
	d[0] = '.'
	for k := 6; k > 0; k-- {
		d[k] = byte('0' + frac%10)
		frac /= 10
	}
	end := 7
	for d[end-1] == '0' {
		end--
	}
	return append(b, d[:end]...), true
}

// appendString appends s, valid UTF-8, as a JSON string.
func appendString(b []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func validPosition(x, y float64) bool {
	// NaN fails both comparisons.
	return x >= -180 && x <= 180 && y >= -90 && y <= 90
}

func appendPosition(b []byte, x, y float64) []byte {
	b = append(b, '[')
	b = appendFloat(b, x)
	b = append(b, ',')
	b = appendFloat(b, y)
	return append(b, ']')
}

// appendWKT parses text as WKT and appends it as a GeoJSON geometry,
// returning it (nil for POINT EMPTY), its type and whether it has no
// positions.
func appendWKT(b []byte, text string) (_ []byte, g orb.Geometry, typ string, empty bool, err error) {
	g, err = parseWKT(text)
	if err != nil {
		return b, nil, "", false, err
	}
	if g == nil {
		// POINT EMPTY, which orb cannot hold; RFC 7946 allows empty coordinates.
		return append(b, `{"type":"Point","coordinates":[]}`...), nil, "Point", true, nil
	}
	out, err := appendGeometry(b, g)
	if err != nil {
		return b, nil, "", false, err
	}
	return out, g, g.GeoJSONType(), isEmpty(g), nil
}

var errNotWKT = errors.New("not WKT")

// maxWKTDepth bounds how deep a WKT text's parentheses may nest. SDS's
// geography types need at most five levels (a GEOMETRYCOLLECTION holding
// a GEOMETRYCOLLECTION of MULTIPOLYGONs), and its limits (100,000 points)
// say nothing of nesting; orb's reader rescans the rest of the text at
// every level, so a text nested thousands deep would cost minutes of CPU.
const maxWKTDepth = 32

// checkDepth refuses, before it is parsed, a text whose parentheses nest
// deeper than maxWKTDepth.
func checkDepth(text string) error {
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '(':
			if depth++; depth > maxWKTDepth {
				return fmt.Errorf("%w: parentheses nested more than %d deep", errNotWKT, maxWKTDepth)
			}
		case ')':
			depth--
		}
	}
	return nil
}

// parseWKT parses text with orb's WKT decoder, after bringing the forms
// it does not read into ones it does: runs of whitespace, bare MULTIPOINT
// positions, POINT EMPTY (returned as nil).
func parseWKT(text string) (orb.Geometry, error) {
	if err := checkDepth(text); err != nil {
		return nil, err
	}
	if g, err := wkt.Unmarshal(text); err == nil {
		return g, nil
	}
	s := strings.Join(strings.Fields(text), " ")
	s = strings.NewReplacer("( ", "(", " )", ")", " (", "(", " ,", ",", ", ", ",").Replace(s)
	upper := strings.ToUpper(s)
	switch {
	case upper == "POINT EMPTY":
		return nil, nil
	case strings.HasPrefix(upper, "MULTIPOINT(") && !strings.HasPrefix(upper, "MULTIPOINT((") && strings.HasSuffix(s, ")"):
		body := s[len("MULTIPOINT(") : len(s)-1]
		s = "MULTIPOINT((" + strings.ReplaceAll(body, ",", "),(") + "))"
	}
	g, err := wkt.Unmarshal(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotWKT, err)
	}
	return g, nil
}

func isEmpty(g orb.Geometry) bool {
	switch g := g.(type) {
	case orb.MultiPoint:
		return len(g) == 0
	case orb.LineString:
		return len(g) == 0
	case orb.MultiLineString:
		return len(g) == 0
	case orb.Polygon:
		return len(g) == 0
	case orb.MultiPolygon:
		return len(g) == 0
	case orb.Collection:
		return len(g) == 0
	}
	return false
}

// appendGeometry appends g as a GeoJSON geometry, turning polygon rings
// to RFC 7946's winding. It refuses what RFC 7946 cannot carry.
func appendGeometry(b []byte, g orb.Geometry) ([]byte, error) {
	var err error
	switch g := g.(type) {
	case orb.Point:
		if !validPosition(g[0], g[1]) {
			return b, errors.New("position out of range")
		}
		b = append(b, `{"type":"Point","coordinates":`...)
		b = appendPosition(b, g[0], g[1])
	case orb.MultiPoint:
		b = append(b, `{"type":"MultiPoint","coordinates":`...)
		b, err = appendPositions(b, g, false)
	case orb.LineString:
		b = append(b, `{"type":"LineString","coordinates":`...)
		b, err = appendLine(b, g)
	case orb.MultiLineString:
		b = append(b, `{"type":"MultiLineString","coordinates":[`...)
		for i, l := range g {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendLine(b, l); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	case orb.Polygon:
		b = append(b, `{"type":"Polygon","coordinates":`...)
		b, err = appendPolygon(b, g)
	case orb.MultiPolygon:
		b = append(b, `{"type":"MultiPolygon","coordinates":[`...)
		for i, p := range g {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendPolygon(b, p); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	case orb.Collection:
		b = append(b, `{"type":"GeometryCollection","geometries":[`...)
		for i, m := range g {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendGeometry(b, m); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	default:
		return b, fmt.Errorf("geometry %T has no GeoJSON form", g)
	}
	if err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendLine(b []byte, l orb.LineString) ([]byte, error) {
	if len(l) == 1 {
		return b, errors.New("line of one position")
	}
	return appendPositions(b, l, false)
}

func appendPolygon(b []byte, p orb.Polygon) ([]byte, error) {
	b = append(b, '[')
	for i, r := range p {
		if len(r) < 4 || r[0] != r[len(r)-1] {
			return b, errors.New("ring not closed or shorter than four positions")
		}
		if i > 0 {
			b = append(b, ',')
		}
		// Exterior counter-clockwise, holes clockwise (RFC 7946 3.1.6).
		want := orb.CCW
		if i > 0 {
			want = orb.CW
		}
		var err error
		if b, err = appendPositions(b, r, r.Orientation() == -want); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendPositions appends the points, in reverse order if reverse.
func appendPositions[P ~[]orb.Point](b []byte, ps P, reverse bool) ([]byte, error) {
	b = append(b, '[')
	for i := range ps {
		p := ps[i]
		if reverse {
			p = ps[len(ps)-1-i]
		}
		if !validPosition(p[0], p[1]) {
			return b, errors.New("position out of range")
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPosition(b, p[0], p[1])
	}
	return append(b, ']'), nil
}
