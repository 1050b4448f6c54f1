package query

import (
	"math"
	"strconv"
	"strings"

	"github.com/peterstace/simplefeatures/geom"

	"github.com/sdsops/sdsops/internal/dataset"
)

// Spatial is the kind of a query's spatial filter.
type Spatial int

// The spatial filters; NoSpatial is a query by $filter alone.
const (
	NoSpatial Spatial = iota
	Nearby
	BBox
	Intersects
)

// Query is a parsed request for entities of one table.
type Query struct {
	Spatial    Spatial
	Lat, Lon   float64 // nearby's point, bbox's centre: where __Distance is measured from
	Km         float64
	S, W, N, E float64
	Area       geom.Geometry

	area        *area
	filter      node
	sel         []selItem // nil: every column
	order       []orderKey
	Top         int
	Skip        int
	InlineCount bool // $inlinecount=allpages: Result.Count is wanted
	needDist    bool // __Distance is selected or ordered by
}

type selKind int

const (
	selColumn selKind = iota
	selDistance
	selIntersection
)

type selItem struct {
	kind selKind
	col  int
	with geom.Geometry
}

type orderKey struct {
	col  int // -1: __Distance
	desc bool
}

// Parse reads the query options of a request for entities of t: the
// spatial filter, $filter, $select, $orderby, $top and $skip.
func Parse(t *Table, p Params) (*Query, error) {
	q := &Query{Top: DefaultTop}
	var err error
	if sf := strings.TrimSpace(p["spatialfilter"]); sf != "" {
		if err = q.parseSpatial(sf); err != nil {
			return nil, err
		}
	}
	if f := strings.TrimSpace(p["$filter"]); f != "" {
		if q.filter, err = parseFilter(t, f); err != nil {
			return nil, err
		}
	}
	if q.Spatial == NoSpatial && q.filter == nil {
		return nil, badRequest("A spatialFilter (nearby, bbox or intersects) or a $filter is required.")
	}
	if err = q.parseSelect(t, p["$select"]); err != nil {
		return nil, err
	}
	if err = q.parseOrderBy(t, p["$orderby"]); err != nil {
		return nil, err
	}
	if q.Top, err = parseCount(p, "$top", DefaultTop, MaxTop); err != nil {
		return nil, err
	}
	if q.Skip, err = parseCount(p, "$skip", 0, MaxSkip); err != nil {
		return nil, err
	}
	switch c := strings.ToLower(strings.TrimSpace(p["$inlinecount"])); c {
	case "", "none":
	case "allpages":
		q.InlineCount = true
	default:
		return nil, badRequest("$inlinecount must be allpages or none, not %q.", clip(c))
	}
	return q, nil
}

// ParseSelect reads only $select, for a query by ID.
func ParseSelect(t *Table, p Params) (*Query, error) {
	q := &Query{Top: 1}
	if err := q.parseSelect(t, p["$select"]); err != nil {
		return nil, err
	}
	return q, nil
}

func parseCount(p Params, name string, def, max int) (int, error) {
	s, ok := p[name]
	s = strings.TrimSpace(s)
	if !ok || s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a whole number from 0 to %d, not %q.", name, max, clip(s))
	}
	if n > max {
		return 0, badRequest("%s must be at most %d, not %d.", name, max, n)
	}
	return n, nil
}

// parseSpatial reads nearby(lat,lon,km), bbox(S,W,N,E) or intersects(WKT).
func (q *Query) parseSpatial(sf string) error {
	open := strings.IndexByte(sf, '(')
	if open < 0 {
		return badRequest("spatialFilter must be nearby(latitude,longitude,distance), bbox(south,west,north,east) or intersects('WKT'), not %q.", clip(sf))
	}
	fn := strings.ToLower(strings.TrimSpace(sf[:open]))
	body := sf[open+1:]
	if fn == "intersects" {
		// A docs example leaves out the closing parenthesis; a quoted
		// WKT ends unambiguously, so that is read as if it were there.
		wkt, err := unwrapWKT(body, true)
		if err != nil {
			return err
		}
		g, err := parseArea(wkt, "intersects")
		if err != nil {
			return err
		}
		q.Spatial, q.Area, q.area = Intersects, g, prepareArea(g)
		return nil
	}
	if !strings.HasSuffix(strings.TrimSpace(body), ")") {
		return badRequest("spatialFilter %s( has no closing parenthesis.", clip(fn))
	}
	body = strings.TrimSuffix(strings.TrimSpace(body), ")")
	args := strings.Split(body, ",")
	switch fn {
	case "nearroute":
		return badRequest("nearRoute is not available: it needs the Bing Maps routing service, which this replacement does not have. Query with bbox or intersects around the route instead.")
	case "nearby":
		if len(args) == 2 || len(args) >= 1 && strings.ContainsAny(args[0], "'\"") {
			return badRequest("nearby with an address is not available: it needs the Bing Maps geocoding service, which this replacement does not have. Use nearby(latitude,longitude,distance).")
		}
		v, err := numbers("nearby", args, 3)
		if err != nil {
			return err
		}
		if err := checkLatLon("nearby", v[0], v[1]); err != nil {
			return err
		}
		if !(v[2] >= MinNearbyKm && v[2] <= MaxNearbyKm) {
			return badRequest("The nearby distance must be from %g to %g kilometers, not %g.", MinNearbyKm, MaxNearbyKm, v[2])
		}
		q.Spatial, q.Lat, q.Lon, q.Km = Nearby, v[0], v[1], v[2]
	case "bbox":
		v, err := numbers("bbox", args, 4)
		if err != nil {
			return err
		}
		if err := checkLatLon("bbox", v[0], v[1]); err != nil {
			return err
		}
		if err := checkLatLon("bbox", v[2], v[3]); err != nil {
			return err
		}
		if v[0] > v[2] {
			return badRequest("bbox must be bbox(south,west,north,east): its south latitude %g is north of its north latitude %g.", v[0], v[2])
		}
		q.Spatial, q.S, q.W, q.N, q.E = BBox, v[0], v[1], v[2], v[3]
		q.Lat, q.Lon = (v[0]+v[2])/2, bboxCentreLon(v[1], v[3])
	default:
		return badRequest("Unknown spatialFilter %q: use nearby, bbox or intersects.", clip(fn))
	}
	return nil
}

// bboxCentreLon is the middle longitude of a box, which crosses the
// antimeridian when west > east.
func bboxCentreLon(w, e float64) float64 {
	if w <= e {
		return (w + e) / 2
	}
	c := (w + e + 360) / 2
	if c > 180 {
		c -= 360
	}
	return c
}

func numbers(fn string, args []string, n int) ([]float64, error) {
	if len(args) != n {
		return nil, badRequest("%s takes %d numbers, not %d arguments.", fn, n, len(args))
	}
	v := make([]float64, n)
	for i, a := range args {
		f, err := strconv.ParseFloat(strings.TrimSpace(a), 64)
		if err != nil || !finite(f) {
			return nil, badRequest("%s: %q is not a number.", fn, clip(strings.TrimSpace(a)))
		}
		v[i] = f
	}
	return v, nil
}

func checkLatLon(fn string, lat, lon float64) error {
	if !validLatLon(lat, lon) {
		return badRequest("%s: latitude must be from -90 to 90 and longitude from -180 to 180, not %g,%g.", fn, lat, lon)
	}
	return nil
}

// unwrapWKT takes the WKT out of 'WKT') or WKT); lenient allows the
// closing parenthesis to be missing after a quoted WKT.
func unwrapWKT(body string, lenient bool) (string, error) {
	b := strings.TrimSpace(body)
	if strings.HasPrefix(b, "'") {
		end := strings.LastIndexByte(b, '\'')
		if end == 0 {
			return "", badRequest("The WKT in quotes has no closing quote.")
		}
		rest := strings.TrimSpace(b[end+1:])
		if rest != ")" && !(lenient && rest == "") {
			return "", badRequest("Expected ) after the quoted WKT, found %q.", clip(rest))
		}
		return b[1:end], nil
	}
	if !strings.HasSuffix(b, ")") {
		return "", badRequest("The WKT has no closing parenthesis.")
	}
	return strings.TrimSuffix(b, ")"), nil
}

// parseArea reads the WKT of intersects or intersection and holds it to
// the docs' limits: at most 200 points, within 10° by 10° (as an area:
// the docs' own example spans 11° by 1°, and SDS answered it).
func parseArea(wkt, what string) (geom.Geometry, error) {
	if len(wkt) > MaxFilterLen {
		return geom.Geometry{}, badRequest("The %s WKT is longer than %d characters.", what, MaxFilterLen)
	}
	g, err := geom.UnmarshalWKT(wkt)
	if err != nil {
		return geom.Geometry{}, badRequest("The %s geography is not valid WKT: %s.", what, clip(err.Error()))
	}
	if g.IsEmpty() {
		return geom.Geometry{}, badRequest("The %s geography is empty.", what)
	}
	if g.CoordinatesType() != geom.DimXY {
		g = g.Force2D()
	}
	seq := g.DumpCoordinates()
	if seq.Length() > MaxWKTPoints {
		return geom.Geometry{}, badRequest("The %s geography has %d points; at most %d are allowed.", what, seq.Length(), MaxWKTPoints)
	}
	for i := 0; i < seq.Length(); i++ {
		xy := seq.GetXY(i)
		if !validLatLon(xy.Y, xy.X) {
			return geom.Geometry{}, badRequest("The %s geography has a point outside the Earth's coordinates (longitude %g, latitude %g).", what, xy.X, xy.Y)
		}
	}
	env := g.Envelope()
	if a := env.Width() * env.Height(); a > MaxWKTArea || env.Width() > 360 {
		return geom.Geometry{}, badRequest("The %s geography spans %.4g° by %.4g°; it must fit in an area of 10° of latitude by 10° of longitude.", what, env.Height(), env.Width())
	}
	return g, nil
}

// parseSelect reads $select: column names, *, __Distance and
// intersection('WKT'), in the order the response will list them.
func (q *Query) parseSelect(t *Table, s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s == "*" {
		return nil
	}
	seen := map[string]bool{}
	add := func(it selItem, name string) {
		if !seen[name] {
			seen[name] = true
			q.sel = append(q.sel, it)
		}
	}
	for _, item := range splitTop(s) {
		item = strings.TrimSpace(item)
		lower := strings.ToLower(item)
		switch {
		case item == "":
			return badRequest("$select has an empty item.")
		case item == "*":
			for c := range t.Columns {
				add(selItem{kind: selColumn, col: c}, strings.ToLower(t.Columns[c].Name))
			}
		case lower == "__distance":
			if q.Spatial != Nearby && q.Spatial != BBox {
				return badRequest("__Distance can be selected only with a nearby or bbox spatialFilter.")
			}
			q.needDist = true
			add(selItem{kind: selDistance}, "__distance")
		case strings.HasPrefix(lower, "intersection(") || strings.HasPrefix(lower, "intersection ("):
			wkt, err := unwrapWKT(item[strings.IndexByte(item, '(')+1:], false)
			if err != nil {
				return err
			}
			g, err := parseArea(wkt, "intersection")
			if err != nil {
				return err
			}
			add(selItem{kind: selIntersection, with: g}, "__intersectedgeom")
		default:
			c := t.Column(item)
			if c < 0 {
				return badRequest("$select names %q, which is not a property of %s.", clip(item), t.EntityType)
			}
			add(selItem{kind: selColumn, col: c}, strings.ToLower(t.Columns[c].Name))
		}
	}
	return nil
}

// splitTop splits at commas outside parentheses and quotes.
func splitTop(s string) []string {
	var parts []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// parseOrderBy reads up to three properties. Without asc or desc, a
// property sorts ascending, except a Boolean, which lists true first as
// both of the docs' examples do.
func (q *Query) parseOrderBy(t *Table, s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	items := strings.Split(s, ",")
	if len(items) > MaxOrderBy {
		return badRequest("$orderby takes at most %d properties, not %d.", MaxOrderBy, len(items))
	}
	for _, item := range items {
		f := strings.Fields(item)
		if len(f) == 0 || len(f) > 2 {
			return badRequest("$orderby item %q is not a property name with an optional asc or desc.", clip(item))
		}
		k := orderKey{col: -1}
		if strings.EqualFold(f[0], "__Distance") {
			if q.Spatial != Nearby && q.Spatial != BBox {
				return badRequest("$orderby __Distance needs a nearby or bbox spatialFilter.")
			}
			q.needDist = true
		} else {
			if k.col = t.Column(f[0]); k.col < 0 {
				return badRequest("$orderby names %q, which is not a property of %s.", clip(f[0]), t.EntityType)
			}
			if k.col == t.lat || k.col == t.lon {
				return badRequest("$orderby cannot use Latitude or Longitude.")
			}
			if t.Columns[k.col].Type == dataset.Geography {
				return badRequest("$orderby cannot use the geography property %s.", t.Columns[k.col].Name)
			}
			k.desc = t.Columns[k.col].Type == dataset.Boolean
		}
		if len(f) == 2 {
			switch strings.ToLower(f[1]) {
			case "asc":
				k.desc = false
			case "desc":
				k.desc = true
			default:
				return badRequest("$orderby direction must be asc or desc, not %q.", clip(f[1]))
			}
		}
		q.order = append(q.order, k)
	}
	return nil
}

// haversine is the great-circle distance in kilometres on the sphere SDS
// measures __Distance on: radius 6378.137 km, the WGS 84 equatorial radius
// (the docs' example distances fit it to centimetres).
func haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6378.137
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}
