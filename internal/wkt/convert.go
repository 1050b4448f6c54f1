package wkt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/paulmach/orb"
)

// Geometry describes a geometry converted.
type Geometry struct {
	Type     string    // its GeoJSON type: "Point", "LineString", ... "GeometryCollection"
	Empty    bool      // WKT EMPTY: no members (a collection of empty members is not)
	Bound    orb.Bound // its positions' bounding box, when HasBound
	HasBound bool      // false: no positions
}

// Converter converts WKT texts, reusing its buffers: after the first few
// texts it allocates nothing. The zero Converter is ready; it is not for
// concurrent use.
type Converter struct {
	t       []byte
	p       int
	gj, wkb []byte
	depth   int
	bad     bool // a part RFC 7946 cannot carry: refused once read
	scratch []byte
	offs    []int // where the positions of a ring start in gj
	// A ring's first and last positions and its signed area (twice it,
	// relative to the first position), kept by positions.
	first, last orb.Point
	area        float64
	bound       orb.Bound
	hasBound    bool
}

// errOther marks a text outside the grammar the Converter reads itself.
var errOther = errors.New("wkt: not in the fast grammar")

// Convert appends the GeoJSON geometry of the WKT text to gj and its WKB
// (little-endian) to wkb. POINT EMPTY is a Point with empty coordinates
// in GeoJSON and NaN, NaN in WKB. A text that does not parse, nests
// deeper than MaxDepth, or holds what RFC 7946 cannot carry (a ring not
// closed or shorter than four positions, a line of one position, a
// position outside longitude ±180 and latitude ±90) is refused with
// ErrNotWKT, gj and wkb returned as they came.
func (c *Converter) Convert(text, gj, wkb []byte) ([]byte, []byte, Geometry, error) {
	g0, w0 := len(gj), len(wkb)
	g, err := c.scan(text, gj, wkb)
	gj, wkb = c.gj, c.wkb
	c.t, c.gj, c.wkb = nil, nil, nil
	switch {
	case err == nil:
		return gj, wkb, g, nil
	case errors.Is(err, ErrNotWKT):
		return gj[:g0], wkb[:w0], Geometry{}, err
	}
	return convertOrb(string(text), gj[:g0], wkb[:w0])
}

// WKB geometry type codes, which the code of each type below follows.
const (
	tPoint uint32 = 1 + iota
	tLineString
	tPolygon
	tMultiPoint
	tMultiLineString
	tMultiPolygon
	tCollection
)

var keywords = [...]string{tPoint: "POINT", tLineString: "LINESTRING", tPolygon: "POLYGON",
	tMultiPoint: "MULTIPOINT", tMultiLineString: "MULTILINESTRING", tMultiPolygon: "MULTIPOLYGON",
	tCollection: "GEOMETRYCOLLECTION"}

var geoJSONTypes = [...]string{tPoint: "Point", tLineString: "LineString", tPolygon: "Polygon",
	tMultiPoint: "MultiPoint", tMultiLineString: "MultiLineString", tMultiPolygon: "MultiPolygon",
	tCollection: "GeometryCollection"}

var prefixes = [...]string{tPoint: `{"type":"Point","coordinates":`, tLineString: `{"type":"LineString","coordinates":`,
	tPolygon: `{"type":"Polygon","coordinates":`, tMultiPoint: `{"type":"MultiPoint","coordinates":`,
	tMultiLineString: `{"type":"MultiLineString","coordinates":`, tMultiPolygon: `{"type":"MultiPolygon","coordinates":`,
	tCollection: `{"type":"GeometryCollection","geometries":`}

// scan reads the forms SDS writes: keywords in any case, single spaces
// between a position's coordinates, spaces (only) elsewhere, numbers of
// the form -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?. orb reads every such
// text as it is and gives the same values. Anything else is errOther:
// orb decides.
func (c *Converter) scan(text, gj, wkb []byte) (Geometry, error) {
	c.t, c.p, c.gj, c.wkb = text, 0, gj, wkb
	c.depth, c.bad, c.hasBound = 0, false, false
	c.spaces()
	typ, empty, err := c.geometry(true)
	if err != nil {
		return Geometry{}, err
	}
	if c.spaces(); c.p != len(c.t) {
		return Geometry{}, errOther
	}
	if c.bad {
		return Geometry{}, fmt.Errorf("%w: a part GeoJSON cannot carry", ErrNotWKT)
	}
	return Geometry{Type: geoJSONTypes[typ], Empty: empty, Bound: c.bound, HasBound: c.hasBound}, nil
}

func (c *Converter) spaces() {
	for c.p < len(c.t) && c.t[c.p] == ' ' {
		c.p++
	}
}

// open reads '(' and the spaces after it.
func (c *Converter) open() error {
	if c.p >= len(c.t) || c.t[c.p] != '(' {
		return errOther
	}
	if c.depth++; c.depth > MaxDepth {
		return errOther // orb's path refuses it
	}
	c.p++
	c.spaces()
	return nil
}

// next reads the spaces and the comma between two members, reporting
// whether there was a comma.
func (c *Converter) next() bool {
	c.spaces()
	if c.p < len(c.t) && c.t[c.p] == ',' {
		c.p++
		c.spaces()
		return true
	}
	return false
}

// close reads ')' after next found no comma.
func (c *Converter) close() error {
	if c.p >= len(c.t) || c.t[c.p] != ')' {
		return errOther
	}
	c.depth--
	c.p++
	return nil
}

func (c *Converter) header(typ uint32) {
	c.wkb = append(c.wkb, 1)
	c.wkb = binary.LittleEndian.AppendUint32(c.wkb, typ)
}

// count reserves a WKB count, to be set by setCount.
func (c *Converter) count() int {
	c.wkb = append(c.wkb, 0, 0, 0, 0)
	return len(c.wkb) - 4
}

func (c *Converter) setCount(at, n int) {
	binary.LittleEndian.PutUint32(c.wkb[at:], uint32(n))
}

// geometry reads a tagged geometry; top is false for a collection's
// member.
func (c *Converter) geometry(top bool) (typ uint32, empty bool, err error) {
	start := c.p
	for c.p < len(c.t) && ('A' <= c.t[c.p]&^0x20 && c.t[c.p]&^0x20 <= 'Z') {
		c.p++
	}
	for k := tPoint; k <= tCollection; k++ {
		if equalFold(c.t[start:c.p], keywords[k]) {
			typ = k
			break
		}
	}
	if typ == 0 {
		return 0, false, errOther
	}
	if c.p+6 <= len(c.t) && c.t[c.p] == ' ' && equalFold(c.t[c.p+1:c.p+6], "EMPTY") {
		if typ == tPoint && !top {
			return 0, false, errOther // orb refuses it in a collection
		}
		c.p += 6
		c.gj = append(c.gj, prefixes[typ]...)
		c.gj = append(c.gj, "[]}"...)
		if typ == tPoint {
			c.wkb = appendNaNPoint(c.wkb)
		} else {
			c.header(typ)
			c.count()
		}
		return typ, true, nil
	}
	c.spaces()
	c.gj = append(c.gj, prefixes[typ]...)
	switch typ {
	case tPoint:
		err = c.point()
	case tLineString:
		err = c.line()
	case tPolygon:
		err = c.polygon()
	case tMultiPoint:
		err = c.multi(typ, c.point)
	case tMultiLineString:
		err = c.multi(typ, c.line)
	case tMultiPolygon:
		err = c.multi(typ, c.polygon)
	case tCollection:
		err = c.multi(typ, func() error {
			_, _, err := c.geometry(false)
			return err
		})
	}
	if err != nil {
		return 0, false, err
	}
	c.gj = append(c.gj, '}')
	return typ, false, nil
}

// multi reads the members of a MULTI* or GEOMETRYCOLLECTION with member,
// which writes each's WKB with its header and its GeoJSON.
func (c *Converter) multi(typ uint32, member func() error) error {
	c.header(typ)
	_, err := c.list(func(int) error { return member() })
	return err
}

// list reads a parenthesized list of members, comma-separated, writing
// their WKB count before them and a GeoJSON array around them; member
// reads member i. It returns how many there were.
func (c *Converter) list(member func(i int) error) (int, error) {
	at := c.count()
	if err := c.open(); err != nil {
		return 0, err
	}
	c.gj = append(c.gj, '[')
	n := 0
	for {
		if n > 0 {
			c.gj = append(c.gj, ',')
		}
		if err := member(n); err != nil {
			return 0, err
		}
		n++
		if !c.next() {
			break
		}
	}
	c.setCount(at, n)
	c.gj = append(c.gj, ']')
	return n, c.close()
}

// point reads a POINT's parenthesized position, WKB header included.
func (c *Converter) point() error {
	c.header(tPoint)
	if err := c.open(); err != nil {
		return err
	}
	if _, err := c.positions(true, false); err != nil {
		return err
	}
	c.spaces()
	return c.close()
}

// line reads a LINESTRING's positions, WKB header included.
func (c *Converter) line() error {
	c.header(tLineString)
	n, err := c.run(false)
	if n == 1 {
		c.bad = true
	}
	return err
}

// polygon reads a POLYGON's rings, WKB header included, writing the
// GeoJSON rings in RFC 7946's winding: exterior counter-clockwise, holes
// clockwise.
func (c *Converter) polygon() error {
	c.header(tPolygon)
	_, err := c.list(func(i int) error {
		start := len(c.gj)
		k, err := c.run(true)
		if err != nil {
			return err
		}
		if k < 4 || c.first != c.last {
			c.bad = true
			return nil
		}
		// Exterior counter-clockwise, holes clockwise, by orb's reckoning
		// (Ring.Orientation: the sign of the area).
		if i == 0 && c.area < 0 || i > 0 && c.area > 0 {
			c.reverse(start)
		}
		return nil
	})
	return err
}

// reverse reverses the order of the positions of the ring written to
// gj from start, which begin at offs.
func (c *Converter) reverse(start int) {
	c.scratch = append(c.scratch[:0], c.gj[start:]...)
	c.gj = append(c.gj[:start], '[')
	end := len(c.scratch) - 1 // the closing bracket
	for k := len(c.offs) - 1; k >= 0; k-- {
		from := c.offs[k] - start
		c.gj = append(c.gj, c.scratch[from:end]...)
		if k > 0 {
			c.gj = append(c.gj, ',')
		}
		end = from - 1 // before the comma
	}
	c.gj = append(c.gj, ']')
}

// run reads a parenthesized run of positions, writing its WKB count and
// points and its GeoJSON array, and returns how many there were. With
// ring, it keeps what polygon checks: the first and last positions and
// the ring's signed area, and where each position starts in offs.
func (c *Converter) run(ring bool) (int, error) {
	at := c.count()
	if err := c.open(); err != nil {
		return 0, err
	}
	c.gj = append(c.gj, '[')
	n, err := c.positions(false, ring)
	if err != nil {
		return 0, err
	}
	c.setCount(at, n)
	c.gj = append(c.gj, ']')
	return n, c.close()
}

// positions reads positions "x y" (a single space between) separated by
// commas, up to the first not followed by one, or only one if one,
// writing each's GeoJSON (commas between) and WKB point and growing the
// bound. It returns how many there were. With ring, it sets first, last
// and area (see run).
//
// It is the conversion's inner loop: the text, the buffers and the bound
// are held in variables, not in the Converter, while it runs.
func (c *Converter) positions(one, ring bool) (n int, err error) {
	t, p, gj, wkb := c.t, c.p, c.gj, c.wkb
	bound, hasBound, bad := c.bound, c.hasBound, c.bad
	var x0, y0, px, py, area float64
	offs := c.offs[:0]
	for {
		if ring {
			offs = append(offs, len(gj))
		}
		xs := p
		x, xe, xv, ok := number(t, xs)
		if !ok || xe >= len(t) || t[xe] != ' ' {
			return 0, errOther
		}
		ys := xe + 1
		y, ye, yv, ok := number(t, ys)
		if !ok {
			return 0, errOther
		}
		p = ye
		if !ValidPosition(x, y) {
			bad = true
		}
		if xv && yv {
			// "x y" as written, the space made a comma.
			at := len(gj) + 1 + xe - xs
			gj = append(append(append(gj, '['), t[xs:ye]...), ']')
			gj[at] = ','
		} else {
			gj = append(gj, '[')
			if xv {
				gj = append(gj, t[xs:xe]...)
			} else {
				gj = AppendFloat(gj, x)
			}
			gj = append(gj, ',')
			if yv {
				gj = append(gj, t[ys:ye]...)
			} else {
				gj = AppendFloat(gj, y)
			}
			gj = append(gj, ']')
		}
		wkb = binary.LittleEndian.AppendUint64(wkb, math.Float64bits(x))
		wkb = binary.LittleEndian.AppendUint64(wkb, math.Float64bits(y))
		if !hasBound {
			bound, hasBound = orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x, y}}, true
		} else {
			if x < bound.Min[0] {
				bound.Min[0] = x
			} else if x > bound.Max[0] {
				bound.Max[0] = x
			}
			if y < bound.Min[1] {
				bound.Min[1] = y
			} else if y > bound.Max[1] {
				bound.Max[1] = y
			}
		}
		if ring {
			// orb's Ring.Orientation, term by term in its order, relative
			// to the first position.
			if n == 0 {
				x0, y0 = x, y
			} else if n >= 2 {
				area += (px-x0)*(y-y0) - (x-x0)*(py-y0)
			}
			px, py = x, y
		}
		n++
		if one {
			break
		}
		// The spaces and the comma between two positions, most often ", ".
		if p+2 <= len(t) && t[p] == ',' && t[p+1] == ' ' {
			p += 2
		} else {
			for p < len(t) && t[p] == ' ' {
				p++
			}
			if p >= len(t) || t[p] != ',' {
				break
			}
			p++
		}
		for p < len(t) && t[p] == ' ' {
			p++
		}
		gj = append(gj, ',')
	}
	c.p, c.gj, c.wkb = p, gj, wkb
	c.bound, c.hasBound, c.bad = bound, hasBound, bad
	if ring {
		c.first, c.last, c.area, c.offs = orb.Point{x0, y0}, orb.Point{px, py}, area, offs
	}
	return n, nil
}

// equalFold reports whether b is s (upper-case ASCII letters) in any case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if b[i]&^0x20 != s[i] {
			return false
		}
	}
	return true
}

// AppendPointWKB appends the WKB (little-endian) of the point x, y.
func AppendPointWKB(wkb []byte, x, y float64) []byte {
	wkb = append(wkb, 1)
	wkb = binary.LittleEndian.AppendUint32(wkb, tPoint)
	wkb = binary.LittleEndian.AppendUint64(wkb, math.Float64bits(x))
	return binary.LittleEndian.AppendUint64(wkb, math.Float64bits(y))
}
