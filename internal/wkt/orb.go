package wkt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/encoding/wkt"
)

// ErrNotWKT is what Convert returns for a text it refuses.
var ErrNotWKT = errors.New("not WKT")

// MaxDepth bounds how deep a WKT text's parentheses may nest. SDS's
// geography types need at most five levels (a GEOMETRYCOLLECTION holding
// a GEOMETRYCOLLECTION of MULTIPOLYGONs), and its limits (100,000 points)
// say nothing of nesting; orb's reader rescans the rest of the text at
// every level, so a text nested thousands deep would cost minutes of CPU.
const MaxDepth = 32

// convertOrb is Convert done by orb: the definition of what Convert does.
func convertOrb(text string, gj, wkbBuf []byte) ([]byte, []byte, Geometry, error) {
	g, err := parseWKT(text)
	if err != nil {
		return gj, wkbBuf, Geometry{}, err
	}
	if g == nil {
		// POINT EMPTY, which orb cannot hold; RFC 7946 allows empty
		// coordinates, and WKB has no empty point: the convention GEOS and
		// GDAL follow is NaN, NaN.
		gj = append(gj, `{"type":"Point","coordinates":[]}`...)
		return gj, appendNaNPoint(wkbBuf), Geometry{Type: "Point", Empty: true}, nil
	}
	out, err := appendGeometry(gj, g)
	if err != nil {
		return gj, wkbBuf, Geometry{}, fmt.Errorf("%w: %v", ErrNotWKT, err)
	}
	data, err := wkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		return gj, wkbBuf, Geometry{}, fmt.Errorf("%w: %v", ErrNotWKT, err)
	}
	b, ok := bound(g)
	return out, append(wkbBuf, data...), Geometry{Type: g.GeoJSONType(), Empty: isEmpty(g), Bound: b, HasBound: ok}, nil
}

func appendNaNPoint(b []byte) []byte {
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(math.NaN()))
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(math.NaN()))
}

// checkDepth refuses, before it is parsed, a text whose parentheses nest
// deeper than MaxDepth.
func checkDepth(text string) error {
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '(':
			if depth++; depth > MaxDepth {
				return fmt.Errorf("%w: parentheses nested more than %d deep", ErrNotWKT, MaxDepth)
			}
		case ')':
			depth--
		}
	}
	return nil
}

// tighten drops the spaces orb's decoder does not take around
// parentheses and commas.
var tighten = strings.NewReplacer("( ", "(", " )", ")", " (", "(", " ,", ",", ", ", ",")

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
	s = tighten.Replace(s)
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
		return nil, fmt.Errorf("%w: %v", ErrNotWKT, err)
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

// bound is g's bounding box; ok is false when g has no positions. orb's
// own Bound counts empty members of a collection as a box.
func bound(g orb.Geometry) (b orb.Bound, ok bool) {
	var walk func(orb.Geometry)
	walk = func(g orb.Geometry) {
		switch g := g.(type) {
		case orb.Collection:
			for _, m := range g {
				walk(m)
			}
		case orb.MultiPolygon:
			for _, p := range g {
				walk(p)
			}
		case orb.Polygon:
			for _, r := range g {
				walk(r)
			}
		case orb.MultiLineString:
			for _, l := range g {
				walk(l)
			}
		default: // a point or a run of them; orb's empty box has Min > Max
			if gb := g.Bound(); gb.Min[0] <= gb.Max[0] {
				if ok {
					b = b.Union(gb)
				} else {
					b, ok = gb, true
				}
			}
		}
	}
	walk(g)
	return b, ok
}

// ValidPosition reports whether RFC 7946 carries the position: finite,
// longitude within ±180 and latitude within ±90.
func ValidPosition(x, y float64) bool {
	// NaN fails both comparisons.
	return x >= -180 && x <= 180 && y >= -90 && y <= 90
}

// AppendPosition appends a GeoJSON position.
func AppendPosition(b []byte, x, y float64) []byte {
	b = append(b, '[')
	b = AppendFloat(b, x)
	b = append(b, ',')
	b = AppendFloat(b, y)
	return append(b, ']')
}

// appendGeometry appends g as a GeoJSON geometry, turning polygon rings
// to RFC 7946's winding. It refuses what RFC 7946 cannot carry.
func appendGeometry(b []byte, g orb.Geometry) ([]byte, error) {
	var err error
	switch g := g.(type) {
	case orb.Point:
		if !ValidPosition(g[0], g[1]) {
			return b, errors.New("position out of range")
		}
		b = append(b, `{"type":"Point","coordinates":`...)
		b = AppendPosition(b, g[0], g[1])
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
		if !ValidPosition(p[0], p[1]) {
			return b, errors.New("position out of range")
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendPosition(b, p[0], p[1])
	}
	return append(b, ']'), nil
}
