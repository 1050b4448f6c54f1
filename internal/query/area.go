package query

import (
	"github.com/peterstace/simplefeatures/geom"
)

// area is an intersects geography prepared for the common case, an
// entity that is a point: a point-in-polygon test over its rings is two
// orders of magnitude faster than a general overlay. Other shapes go to
// geom.Intersects.
type area struct {
	g      geom.Geometry
	rings  [][][]geom.XY // per polygon, its rings
	lines  [][]geom.XY
	points []geom.XY
	mixed  bool // a geometry collection: no fast path
}

func prepareArea(g geom.Geometry) *area {
	a := &area{g: g}
	xys := func(s geom.Sequence) []geom.XY {
		out := make([]geom.XY, s.Length())
		for i := range out {
			out[i] = s.GetXY(i)
		}
		return out
	}
	addPolygon := func(p geom.Polygon) {
		var rs [][]geom.XY
		for _, r := range p.Coordinates() {
			rs = append(rs, xys(r))
		}
		a.rings = append(a.rings, rs)
	}
	switch g.Type() {
	case geom.TypePolygon:
		addPolygon(g.MustAsPolygon())
	case geom.TypeMultiPolygon:
		mp := g.MustAsMultiPolygon()
		for i := 0; i < mp.NumPolygons(); i++ {
			addPolygon(mp.PolygonN(i))
		}
	case geom.TypeLineString:
		a.lines = append(a.lines, xys(g.MustAsLineString().Coordinates()))
	case geom.TypeMultiLineString:
		ml := g.MustAsMultiLineString()
		for i := 0; i < ml.NumLineStrings(); i++ {
			a.lines = append(a.lines, xys(ml.LineStringN(i).Coordinates()))
		}
	case geom.TypePoint, geom.TypeMultiPoint:
		a.points = xys(g.DumpCoordinates())
	default:
		a.mixed = true
	}
	return a
}

// intersects tells whether the area meets an entity's shape.
func (a *area) intersects(shape geom.Geometry) bool {
	if a.mixed || !shape.IsPoint() {
		return geom.Intersects(a.g, shape)
	}
	p, ok := shape.MustAsPoint().XY()
	if !ok {
		return false
	}
	for _, poly := range a.rings {
		if inPolygon(poly, p) {
			return true
		}
	}
	for _, l := range a.lines {
		for i := 1; i < len(l); i++ {
			if onSegment(l[i-1], l[i], p) {
				return true
			}
		}
		if len(l) == 1 && l[0] == p {
			return true
		}
	}
	for _, q := range a.points {
		if q == p {
			return true
		}
	}
	return false
}

// inPolygon is true for a point inside a polygon or on its boundary (as
// ST_Intersects has it); the even-odd rule over all rings leaves holes out.
func inPolygon(rings [][]geom.XY, p geom.XY) bool {
	in := false
	for _, r := range rings {
		for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
			a, b := r[j], r[i]
			if onSegment(a, b, p) {
				return true
			}
			if (a.Y > p.Y) != (b.Y > p.Y) && p.X < (b.X-a.X)*(p.Y-a.Y)/(b.Y-a.Y)+a.X {
				in = !in
			}
		}
	}
	return in
}

func onSegment(a, b, p geom.XY) bool {
	if (b.X-a.X)*(p.Y-a.Y)-(b.Y-a.Y)*(p.X-a.X) != 0 {
		return false
	}
	return p.X >= min(a.X, b.X) && p.X <= max(a.X, b.X) && p.Y >= min(a.Y, b.Y) && p.Y <= max(a.Y, b.Y)
}
