package query

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/peterstace/simplefeatures/geom"
	"github.com/peterstace/simplefeatures/rtree"

	"github.com/sdsops/sdsops/internal/dataset"
)

// Column is one property of a table: its name as the schema spells it and
// its SDS type.
type Column struct {
	Name string
	Type dataset.Type
}

// Value is one property value of an entity, as a Builder takes it and as
// Table.Value gives it back. Only the field of the column's type is used.
type Value struct {
	Null bool
	Str  string    // String, and Geography as WKT
	Int  int64     // Long
	Num  float64   // Double
	Bool bool      // Boolean
	Time time.Time // DateTime, UTC
}

// Table is one data source in memory. It is immutable once built, so any
// number of queries may read it at once.
type Table struct {
	EntityType string
	Columns    []Column

	key, lat, lon, geo int // column positions; geo is -1 without a geography column
	byName             map[string]int
	n                  int
	cols               []colData
	shapes             []geom.Geometry // per entity: its geography, or its point; empty without either
	ids                map[string]int
	rank               []int32 // each entity's place in entity ID order
	byID               []int32 // the entities in entity ID order
	points, areas      *rtree.RTree
}

// colData holds one column's values; only the slice of its type is set.
type colData struct {
	null  []bool
	str   []string
	ints  []int64
	nums  []float64
	bools []bool
	times []time.Time
}

// Len returns the number of entities.
func (t *Table) Len() int { return t.n }

// Column returns the position of the named column, matched without regard
// to case as the SDS examples do, or -1.
func (t *Table) Column(name string) int {
	if i, ok := t.byName[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

// Key returns the position of the entity ID column.
func (t *Table) Key() int { return t.key }

// ID returns the entity ID of entity i.
func (t *Table) ID(i int) string { return t.cols[t.key].str[i] }

// Lookup returns the entity with the given ID.
func (t *Table) Lookup(id string) (int, bool) {
	i, ok := t.ids[id]
	return i, ok
}

// Value returns the value of column c of entity i.
func (t *Table) Value(i, c int) Value {
	d := &t.cols[c]
	if d.null[i] {
		return Value{Null: true}
	}
	switch t.Columns[c].Type {
	case dataset.Long:
		return Value{Int: d.ints[i]}
	case dataset.Double:
		return Value{Num: d.nums[i]}
	case dataset.Boolean:
		return Value{Bool: d.bools[i]}
	case dataset.DateTime:
		return Value{Time: d.times[i]}
	}
	return Value{Str: d.str[i]}
}

// Point returns the Latitude and Longitude of entity i; ok is false when
// either is missing or not a coordinate.
func (t *Table) Point(i int) (lat, lon float64, ok bool) {
	la, lo := t.cols[t.lat], t.cols[t.lon]
	if la.null[i] || lo.null[i] {
		return 0, 0, false
	}
	lat, lon = la.nums[i], lo.nums[i]
	return lat, lon, validLatLon(lat, lon)
}

func validLatLon(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// Shape returns the shape intersects and intersection use for entity i:
// its geography where it has a valid one, its point otherwise.
func (t *Table) Shape(i int) geom.Geometry { return t.shapes[i] }

// Builder makes a Table from the entities of any archive format.
type Builder struct {
	t   *Table
	err error
}

// NewBuilder starts a table of the given entity type and columns; key
// names the entity ID column. Every SDS schema has Latitude and Longitude
// (Edm.Double); the first geography column, if any, is the entities' shape.
func NewBuilder(entityType string, cols []Column, key string) (*Builder, error) {
	t := &Table{EntityType: entityType, Columns: cols, byName: map[string]int{}, geo: -1, ids: map[string]int{}}
	for i, c := range cols {
		lc := strings.ToLower(c.Name)
		if _, dup := t.byName[lc]; dup {
			return nil, fmt.Errorf("column %q appears twice", c.Name)
		}
		t.byName[lc] = i
		if c.Type == dataset.Geography && t.geo < 0 {
			t.geo = i
		}
	}
	t.cols = make([]colData, len(cols))
	var ok bool
	if t.key, ok = t.byName[strings.ToLower(key)]; !ok || cols[t.key].Type != dataset.String {
		return nil, fmt.Errorf("entity ID column %q is not a string column of %s", key, entityType)
	}
	for _, p := range []struct {
		name string
		pos  *int
	}{{"Latitude", &t.lat}, {"Longitude", &t.lon}} {
		if *p.pos, ok = t.byName[strings.ToLower(p.name)]; !ok || cols[*p.pos].Type != dataset.Double {
			return nil, fmt.Errorf("%s has no %s column of type xs:double", entityType, p.name)
		}
	}
	return &Builder{t: t}, nil
}

// Add appends one entity; vals follow the columns. An entity without an
// ID, or with the ID of an earlier one, is an error of the archive.
func (b *Builder) Add(vals []Value) error {
	if b.err != nil {
		return b.err
	}
	t := b.t
	if len(vals) != len(t.Columns) {
		return fmt.Errorf("entity %d has %d values for %d columns", t.n+1, len(vals), len(t.Columns))
	}
	id := vals[t.key]
	if id.Null || id.Str == "" {
		b.err = fmt.Errorf("entity %d has no entity ID", t.n+1)
		return b.err
	}
	if _, dup := t.ids[id.Str]; dup {
		b.err = fmt.Errorf("entity ID %q appears twice", clip(id.Str))
		return b.err
	}
	t.ids[id.Str] = t.n
	for c, v := range vals {
		d := &t.cols[c]
		d.null = append(d.null, v.Null)
		switch t.Columns[c].Type {
		case dataset.Long:
			d.ints = append(d.ints, v.Int)
		case dataset.Double:
			d.nums = append(d.nums, v.Num)
		case dataset.Boolean:
			d.bools = append(d.bools, v.Bool)
		case dataset.DateTime:
			d.times = append(d.times, v.Time)
		default:
			d.str = append(d.str, v.Str)
		}
	}
	t.n++
	return nil
}

// Build indexes the entities and returns the table.
func (b *Builder) Build() (*Table, error) {
	if b.err != nil {
		return nil, b.err
	}
	t := b.t
	b.t, b.err = nil, errors.New("builder already built")
	t.shapes = make([]geom.Geometry, t.n)
	points := make([]rtree.BulkItem, 0, t.n)
	areas := make([]rtree.BulkItem, 0, t.n)
	for i := 0; i < t.n; i++ {
		lat, lon, ok := t.Point(i)
		if ok {
			points = append(points, rtree.BulkItem{Box: rtree.Box{MinX: lon, MinY: lat, MaxX: lon, MaxY: lat}, RecordID: i})
			t.shapes[i] = geom.NewPoint(geom.Coordinates{XY: geom.XY{X: lon, Y: lat}}).AsGeometry()
		}
		if t.geo >= 0 && !t.cols[t.geo].null[i] {
			// A shape SDS stored but that is not valid OGC geometry still
			// takes part, unvalidated, rather than vanish from intersects.
			if g, err := geom.UnmarshalWKT(t.cols[t.geo].str[i], geom.NoValidate{}); err == nil && !g.IsEmpty() {
				t.shapes[i] = g
			}
		}
		if box, ok := t.shapes[i].Envelope().AsBox(); ok {
			areas = append(areas, rtree.BulkItem{Box: box, RecordID: i})
		}
	}
	// The default order is by entity ID, as a string: ranking the IDs
	// once turns every later comparison into one of integers.
	order := make([]int32, t.n)
	for i := range order {
		order[i] = int32(i)
	}
	ids := t.cols[t.key].str
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(ids[a], ids[b]) })
	t.byID = order
	t.rank = make([]int32, t.n)
	for r, i := range order {
		t.rank[i] = int32(r)
	}
	t.points = rtree.BulkLoad(points)
	t.areas = rtree.BulkLoad(areas)
	return t, nil
}

// clip shortens text from an archive or a request for an error message.
func clip(s string) string {
	const max = 60
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// finite reports whether f is a number.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
