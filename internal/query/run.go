package query

import (
	"cmp"
	"container/heap"
	"math"
	"sort"
	"strings"

	"github.com/peterstace/simplefeatures/geom"
	"github.com/peterstace/simplefeatures/rtree"

	"github.com/sdsops/sdsops/internal/dataset"
)

// Row is one entity of an answer.
type Row struct {
	Index    int
	Distance float64 // km, for nearby and bbox
}

// Result is a page of an answer and the size of the whole answer.
type Result struct {
	Rows  []Row
	Count int // entities matching before $skip and $top; -1 when not counted (no $inlinecount)
}

// Run answers q from t: the spatial filter finds candidates through an
// R-tree, $filter is evaluated over them a column at a time, and only
// the page asked for is sorted.
func (t *Table) Run(q *Query) Result {
	if rows, ok := t.runInIDOrder(q); ok {
		return Result{Rows: rows, Count: -1}
	}
	idx, dist := t.candidates(q)
	if q.filter != nil {
		idx, dist = filterVec(t, q.filter, idx, dist)
	}
	row := func(k int) Row {
		r := Row{Index: int(idx[k])}
		switch {
		case dist != nil:
			r.Distance = dist[k]
		case q.needDist:
			lat, lon, _ := t.Point(r.Index)
			r.Distance = haversine(q.Lat, q.Lon, lat, lon)
		}
		return r
	}
	return Result{Count: len(idx), Rows: page(len(idx), row, q.Skip, q.Top, t.less(q))}
}

// runInIDOrder answers, without counting, a query over (nearly) the whole
// data source in the default order: it walks the entities in entity ID
// order, a batch at a time, and stops once the page is full.
func (t *Table) runInIDOrder(q *Query) ([]Row, bool) {
	if q.InlineCount || len(q.order) > 0 || q.Spatial != NoSpatial && q.Spatial != BBox {
		return nil, false
	}
	if q.Spatial == BBox {
		box := rtree.Box{MinX: q.W, MinY: q.S, MaxX: q.E, MaxY: q.N}
		if ext, ok := t.points.Extent(); !ok || q.W > q.E || !covers(box, ext) {
			return nil, false
		}
	}
	want := q.Skip + q.Top
	rows := []Row{}
	batch := make([]int32, 0, 512)
	flush := func() {
		if q.filter != nil {
			batch, _ = filterVec(t, q.filter, batch, nil)
		}
		for _, i := range batch {
			if len(rows) < want {
				r := Row{Index: int(i)}
				if q.needDist {
					lat, lon, _ := t.Point(int(i))
					r.Distance = haversine(q.Lat, q.Lon, lat, lon)
				}
				rows = append(rows, r)
			}
		}
		batch = batch[:0]
	}
	for _, i := range t.byID {
		if len(rows) >= want {
			break
		}
		if q.Spatial == BBox {
			if _, _, ok := t.Point(int(i)); !ok {
				continue
			}
		}
		if batch = append(batch, i); len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	if q.Skip >= len(rows) {
		return []Row{}, true
	}
	return rows[q.Skip:], true
}

// candidates returns the entities within the spatial filter, each once,
// and for nearby their distances.
func (t *Table) candidates(q *Query) ([]int32, []float64) {
	var idx []int32
	add := func(i int) error { idx = append(idx, int32(i)); return nil }
	switch q.Spatial {
	case Nearby:
		dist := []float64{}
		bs := nearbyBoxes(q.Lat, q.Lon, q.Km)
		var seen map[int]bool // two boxes may share points on the antimeridian
		if len(bs) > 1 {
			seen = map[int]bool{}
		}
		for _, b := range bs {
			_ = t.points.RangeSearch(b, func(i int) error {
				lat, lon, _ := t.Point(i)
				if d := haversine(q.Lat, q.Lon, lat, lon); d <= q.Km && !seen[i] {
					idx, dist = append(idx, int32(i)), append(dist, d)
					if seen != nil {
						seen[i] = true
					}
				}
				return nil
			})
		}
		return idx, dist
	case BBox:
		bs := []rtree.Box{{MinX: q.W, MinY: q.S, MaxX: q.E, MaxY: q.N}}
		if q.W > q.E { // across the antimeridian
			bs = []rtree.Box{{MinX: q.W, MinY: q.S, MaxX: 180, MaxY: q.N}, {MinX: -180, MinY: q.S, MaxX: q.E, MaxY: q.N}}
		}
		if ext, ok := t.points.Extent(); ok && len(bs) == 1 && covers(bs[0], ext) {
			// The whole data source: a scan beats walking the tree.
			idx = make([]int32, 0, t.n)
			for i := 0; i < t.n; i++ {
				if _, _, ok := t.Point(i); ok {
					idx = append(idx, int32(i))
				}
			}
			return idx, nil
		}
		for _, b := range bs {
			_ = t.points.RangeSearch(b, add)
		}
		if len(bs) > 1 {
			idx = dedupe(idx)
		}
	case Intersects:
		box, _ := q.Area.Envelope().AsBox()
		_ = t.areas.RangeSearch(box, func(i int) error {
			if q.area.intersects(t.shapes[i]) {
				idx = append(idx, int32(i))
			}
			return nil
		})
	default:
		idx = make([]int32, t.n)
		for i := range idx {
			idx[i] = int32(i)
		}
	}
	return idx, nil
}

func covers(outer, inner rtree.Box) bool {
	return outer.MinX <= inner.MinX && outer.MinY <= inner.MinY && outer.MaxX >= inner.MaxX && outer.MaxY >= inner.MaxY
}

// dedupe drops entities found by two boxes (a box at -180 and one at 180
// may both hold a point on the antimeridian).
func dedupe(idx []int32) []int32 {
	seen := make(map[int32]bool, len(idx))
	out := idx[:0]
	for _, i := range idx {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// nearbyBoxes returns the longitude/latitude boxes covering a circle.
func nearbyBoxes(lat, lon, km float64) []rtree.Box {
	const r = 6378.137
	dLat := km / r * 180 / math.Pi
	s, n := lat-dLat, lat+dLat
	if s <= -90 || n >= 90 {
		return []rtree.Box{{MinX: -180, MinY: math.Max(s, -90), MaxX: 180, MaxY: math.Min(n, 90)}}
	}
	// The widest longitude span of the circle is at the latitude whose
	// cosine is smallest within it.
	cos := math.Min(math.Cos(s*math.Pi/180), math.Cos(n*math.Pi/180))
	sinDLon := math.Sin(km/r) / cos
	if sinDLon >= 1 {
		return []rtree.Box{{MinX: -180, MinY: s, MaxX: 180, MaxY: n}}
	}
	dLon := math.Asin(sinDLon) * 180 / math.Pi * 1.0001 // a hair more: the test is exact after
	w, e := lon-dLon, lon+dLon
	switch {
	case w < -180:
		return []rtree.Box{{MinX: w + 360, MinY: s, MaxX: 180, MaxY: n}, {MinX: -180, MinY: s, MaxX: e, MaxY: n}}
	case e > 180:
		return []rtree.Box{{MinX: w, MinY: s, MaxX: 180, MaxY: n}, {MinX: -180, MinY: s, MaxX: e - 360, MaxY: n}}
	}
	return []rtree.Box{{MinX: w, MinY: s, MaxX: e, MaxY: n}}
}

// less orders rows by $orderby, then by the default order: distance then
// entity ID for nearby, entity ID (as a string) otherwise.
func (t *Table) less(q *Query) func(a, b Row) bool {
	return func(a, b Row) bool {
		for _, k := range q.order {
			c := t.compareRows(k.col, a, b)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		if q.Spatial == Nearby && a.Distance != b.Distance {
			return a.Distance < b.Distance
		}
		return t.rank[a.Index] < t.rank[b.Index]
	}
}

// compareRows compares column col (-1: distance) of two rows; an omitted
// value sorts before every value, as in SQL Server.
func (t *Table) compareRows(col int, a, b Row) int {
	if col < 0 {
		return cmp.Compare(a.Distance, b.Distance)
	}
	d := &t.cols[col]
	na, nb := d.null[a.Index], d.null[b.Index]
	switch {
	case na && nb:
		return 0
	case na:
		return -1
	case nb:
		return 1
	}
	i, j := a.Index, b.Index
	switch t.Columns[col].Type {
	case dataset.Long:
		return cmp.Compare(d.ints[i], d.ints[j])
	case dataset.Double:
		return cmp.Compare(d.nums[i], d.nums[j])
	case dataset.Boolean:
		return cmpBool(d.bools[i], d.bools[j])
	case dataset.DateTime:
		return d.times[i].Compare(d.times[j])
	}
	return strings.Compare(d.str[i], d.str[j])
}

// page returns rows skip to skip+top of the n that row makes, in order, sorting only as
// much as it must: a small page of a large answer is selected with a
// bounded heap, without a Row for every candidate.
func page(n int, row func(k int) Row, skip, top int, less func(a, b Row) bool) []Row {
	if skip >= n || top == 0 {
		return []Row{}
	}
	k := skip + top
	if k >= n/4 {
		rows := make([]Row, n)
		for j := range rows {
			rows[j] = row(j)
		}
		sort.Slice(rows, func(i, j int) bool { return less(rows[i], rows[j]) })
		return rows[skip:min(k, len(rows))]
	}
	h := &rowHeap{less: less, rows: make([]Row, 0, k)}
	for j := 0; j < n; j++ {
		r := row(j)
		if len(h.rows) < k {
			heap.Push(h, r)
		} else if less(r, h.rows[0]) {
			h.rows[0] = r
			heap.Fix(h, 0)
		}
	}
	out := h.rows
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out[skip:]
}

// rowHeap is a max-heap under less: its root is the last row kept.
type rowHeap struct {
	rows []Row
	less func(a, b Row) bool
}

func (h *rowHeap) Len() int           { return len(h.rows) }
func (h *rowHeap) Less(i, j int) bool { return h.less(h.rows[j], h.rows[i]) }
func (h *rowHeap) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *rowHeap) Push(x any)         { h.rows = append(h.rows, x.(Row)) }
func (h *rowHeap) Pop() any {
	r := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return r
}

// Prop is one property of an entity in an answer.
type Prop struct {
	Name  string
	Type  dataset.Type
	Value Value
}

// Project returns the properties $select asks of a row, in its order:
// every column when it named none.
func (q *Query) Project(t *Table, r Row) []Prop {
	if q.sel == nil {
		props := make([]Prop, len(t.Columns))
		for c, col := range t.Columns {
			props[c] = Prop{Name: col.Name, Type: col.Type, Value: t.Value(r.Index, c)}
		}
		return props
	}
	props := make([]Prop, 0, len(q.sel))
	for _, s := range q.sel {
		switch s.kind {
		case selColumn:
			props = append(props, Prop{Name: t.Columns[s.col].Name, Type: t.Columns[s.col].Type, Value: t.Value(r.Index, s.col)})
		case selDistance:
			props = append(props, Prop{Name: "__Distance", Type: dataset.Double, Value: Value{Num: r.Distance}})
		case selIntersection:
			props = append(props, Prop{Name: "__IntersectedGeom", Type: dataset.Geography, Value: intersection(t.shapes[r.Index], s.with)})
		}
	}
	return props
}

// intersection computes __IntersectedGeom: the entity's shape (its
// geography, or its point) cut by the requested one, as SQL Server writes
// WKT ("POLYGON ((x y, x y))"). An entity without a shape, or a shape the
// overlay cannot process, gives null.
func intersection(shape, with geom.Geometry) Value {
	if shape.IsEmpty() {
		return Value{Null: true}
	}
	g, err := geom.Intersection(shape, with)
	if err != nil {
		return Value{Null: true}
	}
	return Value{Str: sqlWKT(g.AsText())}
}

// sqlWKT spaces WKT the way SQL Server (and so SDS) prints it: a space
// between a type name and its parenthesis and after every comma.
func sqlWKT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '(' && i > 0 && s[i-1] >= 'A' && s[i-1] <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteByte(c)
		if c == ',' {
			b.WriteByte(' ')
		}
	}
	return b.String()
}
