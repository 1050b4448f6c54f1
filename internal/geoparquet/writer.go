package geoparquet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/paulmach/orb"

	"github.com/sdsops/sdsops/internal/dataset"
)

// Version is the GeoParquet version written.
const Version = "1.1.0"

// Row groups end at whichever bound comes first. Small groups let a
// bounding-box query skip more; the byte bound keeps the writer's buffers,
// which hold one group, within the conversion's memory.
const (
	maxGroupRows  = 10_000
	maxGroupBytes = 16 << 20
)

// Geometry is one geography value of an entity, as the caller made it.
type Geometry struct {
	WKB   []byte // nil: null
	Type  string // "Point", "LineString", ... "GeometryCollection"
	Bound orb.Bound
	Empty bool // no positions: the bbox is null
}

// kind is how an output column's values are encoded.
type kind uint8

const (
	kString kind = iota
	kLong
	kDouble
	kBool
	kTime
	kWKB
	kBBox
	kRefused // a geography's text where it is not a geometry
)

// column is one top-level column of the file.
type column struct {
	name string
	kind kind
	src  int // the schema column; -1 for a derived geometry and the bbox
	// geom is the index among the geometry columns of a kWKB column, or
	// of the one whose refused text a kRefused column holds; -1 for others.
	geom int
	leaf int // first leaf column index
}

// Writer collects the rows of one data source and writes them as
// GeoParquet. AppendRow may be called concurrently; Add and Finish are
// called by one goroutine.
type Writer struct {
	cols  []column
	ngeom int

	spill *os.File
	bw    *bufio.Writer
	off   int64
	refs  []rowRef
	wide  bool // a time outside what nanoseconds hold
	// readRows has Finish read the spilled rows with a system call each,
	// as where the file cannot be mapped.
	readRows bool
	types    []map[string]bool
	bound    []orb.Bound
	any      []bool
}

type rowRef struct {
	off  int64
	n    uint32
	x, y float64
	geo  bool
}

// Stats describes a file written.
type Stats struct {
	Rows      int64 `json:"rows"`
	RowGroups int   `json:"rowGroups"`
}

// NewWriter returns a Writer for entities of s whose primary geometry
// is that of the schema column geo (-1: none, the geometry is derived from
// other columns), spilling rows to a temporary file in dir ("" for the
// system's). Close removes it.
func NewWriter(s *dataset.Schema, geo int, dir string) (*Writer, error) {
	w := &Writer{}
	w.cols, w.ngeom = layout(s, geo)
	w.types = make([]map[string]bool, w.ngeom)
	w.bound = make([]orb.Bound, w.ngeom)
	w.any = make([]bool, w.ngeom)
	for i := range w.types {
		w.types[i] = map[string]bool{}
	}
	f, err := os.CreateTemp(dir, "geoparquet-*.rows")
	if err != nil {
		return nil, fmt.Errorf("geoparquet spill file: %w", err)
	}
	// Spilling 248 MB of 0.6–2 KB rows took 80–90 ms of CPU with any
	// buffer from 64 KiB to 4 MiB (the kernel's copy into the page cache
	// is the cost, not the number of writes), and 100–105 ms copying the
	// rows into a mapping of the file grown by fallocate instead.
	w.spill, w.bw = f, bufio.NewWriterSize(f, 256<<10)
	return w, nil
}

// layout is the file's columns for entities of s whose primary geometry
// is that of column geo (-1: derived), and the number of geometry columns.
func layout(s *dataset.Schema, geo int) (cols []column, ngeom int) {
	// Lowercased: Athena, DuckDB and others fold names, so "Geometry"
	// would collide with "geometry".
	taken := map[string]bool{}
	for _, c := range s.Columns {
		taken[strings.ToLower(c.Name)] = true
	}
	primary := freeName("geometry", taken)
	bbox := freeName("bbox", taken)
	// The primary geometry is geometry 0, the further geography columns
	// 1, 2, ... in schema order.
	ngeom = 1
	for i, c := range s.Columns {
		switch {
		case i == geo:
			// The text of a value that is no geometry stays, as in the
			// GeoJSON, under the column's name.
			cols = append(cols, column{name: primary, kind: kWKB, src: i},
				column{name: c.Name, kind: kRefused, src: i, geom: 0})
		case c.Type == dataset.Geography:
			// The GeoJSON keeps a further geography's text as it is; here
			// the column's name holds the geometry, and the text of a
			// value that is no geometry stays beside it.
			cols = append(cols, column{name: c.Name, kind: kWKB, src: i, geom: ngeom},
				column{name: freeName(c.Name+"_text", taken), kind: kRefused, src: i, geom: ngeom})
			ngeom++
		default:
			cols = append(cols, column{name: c.Name, kind: kindOf(c.Type), src: i, geom: -1})
		}
	}
	if geo < 0 {
		cols = append(cols, column{name: primary, kind: kWKB, src: -1})
	}
	cols = append(cols, column{name: bbox, kind: kBBox, src: -1, geom: -1})
	leaf := 0
	for i := range cols {
		cols[i].leaf = leaf
		leaf++
		if cols[i].kind == kBBox {
			leaf += 3
		}
	}
	return cols, ngeom
}

// GeometryColumns returns the schema index of each geometry column, in
// the order AppendRow takes them: the primary geometry first (-1 when it
// is derived from other columns), then the further geography columns.
func (w *Writer) GeometryColumns() []int {
	out := make([]int, w.ngeom)
	for _, c := range w.cols {
		if c.kind == kWKB {
			out[c.geom] = c.src
		}
	}
	return out
}

func kindOf(t dataset.Type) kind {
	switch t {
	case dataset.Long:
		return kLong
	case dataset.Double:
		return kDouble
	case dataset.Boolean:
		return kBool
	case dataset.DateTime:
		return kTime
	}
	return kString
}

// freeName returns base, or base_1, base_2, ..., the first whose lower
// case is not taken, and takes it.
func freeName(base string, taken map[string]bool) string {
	name := base
	for n := 1; taken[strings.ToLower(name)]; n++ {
		name = fmt.Sprintf("%s_%d", base, n)
	}
	taken[strings.ToLower(name)] = true
	return name
}

// Nanoseconds since 1970 in an int64 reach from 1677-09-21 to 2262-04-11.
var minNanos, maxNanos = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// Row encoding, in the spill file: a flags byte, then each column in
// order: a presence byte and, when present, its value: 8 bytes for longs,
// doubles and times' seconds (times add 4 bytes of nanoseconds), 1 for
// booleans, a uvarint length and the bytes for strings and WKB, four
// doubles for the bbox.
const flagWide = 1

// AppendRow appends to dst the encoding of one entity: its values rec, in
// schema order, and its geometries in GeometryColumns' order.
func (w *Writer) AppendRow(dst []byte, rec []dataset.Value, geoms []Geometry) []byte {
	start := len(dst)
	dst = append(dst, 0)
	for _, c := range w.cols {
		switch c.kind {
		case kWKB:
			g := geoms[c.geom]
			if g.WKB == nil {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 1)
			dst = binary.AppendUvarint(dst, uint64(len(g.WKB)))
			dst = append(dst, g.WKB...)
			continue
		case kBBox:
			g := geoms[0]
			if g.WKB == nil || g.Empty {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 1)
			for _, f := range [4]float64{g.Bound.Min[0], g.Bound.Min[1], g.Bound.Max[0], g.Bound.Max[1]} {
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
			}
			continue
		}
		v := rec[c.src]
		if !v.Present || (c.kind == kRefused && (geoms[c.geom].WKB != nil || len(bytes.TrimSpace(v.Raw)) == 0)) {
			dst = append(dst, 0)
			continue
		}
		switch c.kind {
		case kString, kRefused:
			dst = append(dst, 1)
			dst = binary.AppendUvarint(dst, uint64(len(v.Raw)))
			dst = append(dst, v.Raw...)
		case kLong:
			n, err := v.Long()
			if err != nil {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 1)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(n))
		case kDouble:
			f, err := v.Double()
			if err != nil {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 1)
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		case kBool:
			t, err := v.Bool()
			if err != nil {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 1)
			if t {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		case kTime:
			t, err := v.Time()
			if err != nil {
				dst = append(dst, 0)
				continue
			}
			if t.Before(minNanos) || t.After(maxNanos) {
				dst[start] |= flagWide
			}
			dst = append(dst, 1)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(t.Unix()))
			dst = binary.LittleEndian.AppendUint32(dst, uint32(t.Nanosecond()))
		}
	}
	return dst
}

// Add spills one row made by AppendRow with the same geoms.
func (w *Writer) Add(row []byte, geoms []Geometry) error {
	if len(w.refs) >= math.MaxUint32 || len(row) > math.MaxUint32 {
		return errors.New("geoparquet: too many rows or too large a row")
	}
	if _, err := w.bw.Write(row); err != nil {
		return fmt.Errorf("geoparquet spill: %w", err)
	}
	r := rowRef{off: w.off, n: uint32(len(row))}
	w.off += int64(len(row))
	if row[0]&flagWide != 0 {
		w.wide = true
	}
	for i, g := range geoms {
		if g.WKB == nil {
			continue
		}
		w.types[i][g.Type] = true
		if g.Empty {
			continue
		}
		if w.any[i] {
			w.bound[i] = w.bound[i].Union(g.Bound)
		} else {
			w.bound[i], w.any[i] = g.Bound, true
		}
		if i == 0 {
			r.x, r.y, r.geo = (g.Bound.Min[0]+g.Bound.Max[0])/2, (g.Bound.Min[1]+g.Bound.Max[1])/2, true
		}
	}
	w.refs = append(w.refs, r)
	return nil
}

// Close removes the spill file.
func (w *Writer) Close() error {
	if w.spill == nil {
		return nil
	}
	err := w.spill.Close()
	if rerr := os.Remove(w.spill.Name()); err == nil {
		err = rerr
	}
	w.spill = nil
	return err
}

// Finish writes the file: the rows added, along the Hilbert curve of
// their bounding boxes' centres.
func (w *Writer) Finish(out io.Writer) (Stats, error) {
	if err := w.bw.Flush(); err != nil {
		return Stats{}, fmt.Errorf("geoparquet spill: %w", err)
	}
	order := w.order()
	unit := parquet.Nanosecond
	if w.wide {
		unit = parquet.Microsecond
	}
	meta, err := json.Marshal(w.metadata())
	if err != nil {
		return Stats{}, err
	}
	// The rows are read in curve order, all over the spill file: mapped,
	// each costs no system call and no copy.
	var (
		mapped []byte
		unmap  func() error
	)
	if !w.readRows {
		if mapped, unmap, err = mapSpill(w.spill, w.off); err == nil {
			defer unmap()
		}
	}
	// Each leaf's null, made once (the bbox, last, has four leaves).
	nulls := make([]parquet.Value, w.cols[len(w.cols)-1].leaf+4)
	for i := range nulls {
		nulls[i] = parquet.NullValue().Level(0, 0, i)
	}
	snappy, err := w.wkbShrinks(order, mapped, nulls, unit)
	if err != nil {
		return Stats{}, err
	}
	schema := parquet.NewSchema("schema", w.node(unit, snappy))
	// Snappy's faster level: on the 300 MB export the file is 144 MB
	// against 134 MB with the denser one, which took about 8 % more of the
	// conversion's CPU; zstd made it 115 MB for 35 % more CPU and twice
	// the heap (zstd's fastest level was between). Every column but WKB is
	// snappy: on that export all of them together cost 27 ms of CPU and
	// come to 11 MB instead of 25 (names 6.6 MB to 1.0, flags 0.2 to
	// 0.01, longs and doubles 1.5–2.1 MB to 0.3–1.1, the bbox's 1.2 MB to
	// 0.7–0.9 each; a column that does not shrink, such as times to the
	// nanosecond, costs next to nothing: 0.1 ms for 1.6 MB). WKB is 88 %
	// of the values and 87 % of snappy's CPU: see wkbShrinks.
	pw := parquet.NewWriter(out, schema,
		parquet.Compression(&fastSnappy{}),
		parquet.KeyValueMetadata("geo", string(meta)),
	)
	st := Stats{Rows: int64(len(order))}
	// Each leaf column's values of the rows in hand go to its writer
	// directly, chunkRows rows at a time, without assembling rows.
	cw := pw.ColumnWriters()
	var (
		vals   = make([][]parquet.Value, len(cw))
		arena  []byte // the spilled bytes of the rows in hand, when not mapped
		inHand int
		inRG   int
		rgSize int
	)
	flush := func() error {
		if inHand == 0 {
			return nil
		}
		for i, c := range cw {
			if _, err := c.WriteRowValues(vals[i]); err != nil {
				return fmt.Errorf("geoparquet: %w", err)
			}
			vals[i] = vals[i][:0]
		}
		arena, inHand = arena[:0], 0
		return nil
	}
	for _, i := range order {
		r := w.refs[i]
		var buf []byte
		if mapped == nil {
			if len(arena)+int(r.n) > cap(arena) {
				if err := flush(); err != nil {
					return st, err
				}
				if int(r.n) > cap(arena) {
					arena = make([]byte, 0, max(int(r.n), 1<<20))
				}
			}
			buf = arena[len(arena):]
			arena = arena[:len(arena)+int(r.n)]
		}
		buf, err := w.spilled(mapped, r, buf)
		if err != nil {
			return st, err
		}
		if err := w.decode(vals, nulls, buf, unit); err != nil {
			return st, err
		}
		inHand++
		inRG++
		rgSize += int(r.n)
		if inHand == chunkRows {
			if err := flush(); err != nil {
				return st, err
			}
		}
		if inRG == maxGroupRows || rgSize >= maxGroupBytes {
			if err := flush(); err != nil {
				return st, err
			}
			if err := pw.Flush(); err != nil {
				return st, fmt.Errorf("geoparquet: %w", err)
			}
			st.RowGroups++
			inRG, rgSize = 0, 0
		}
	}
	if err := flush(); err != nil {
		return st, err
	}
	if inRG > 0 {
		st.RowGroups++
	}
	if err := pw.Close(); err != nil {
		return st, fmt.Errorf("geoparquet: %w", err)
	}
	return st, nil
}

// spilled returns the spilled bytes of row r: in the mapping, else read
// into buf, which has room for them.
func (w *Writer) spilled(mapped []byte, r rowRef, buf []byte) ([]byte, error) {
	if mapped != nil {
		return mapped[r.off : r.off+int64(r.n)], nil
	}
	buf = buf[:r.n]
	if _, err := w.spill.ReadAt(buf, r.off); err != nil {
		return nil, fmt.Errorf("geoparquet spill: %w", err)
	}
	return buf, nil
}

// WKB's codec is judged on sampleRuns runs of sampleRows consecutive
// rows, evenly spread over the file's order, at most sampleBytes of each
// geometry column.
const (
	sampleRuns  = 4
	sampleRows  = 64
	sampleBytes = 1 << 20
)

// wkbShrinks reports for each geometry column whether snappy makes its
// WKB at least an eighth smaller, on a sample of the rows in the file's
// order (neighbours along the curve, as a page holds them, may share
// positions). Coordinates with irregular low digits, as digitised shapes
// have, do not shrink: on 50,000 such polygons (BenchmarkWriter) snappy
// took a fifth of Finish's CPU and saved nothing, so such WKB is written
// uncompressed. Regular shapes do: the 300 MB export's WKB, 182 MB, is
// 132 MB with snappy, which takes 0.19 CPU-s (the conversion takes 5 %
// more CPU than without), and stays compressed (uncompressed, the file
// would be 194 MB instead of 144).
func (w *Writer) wkbShrinks(order []int, mapped []byte, nulls []parquet.Value, unit parquet.TimeUnit) ([]bool, error) {
	sample := make([][]byte, w.ngeom)
	vals := make([][]parquet.Value, len(nulls))
	var buf []byte
	end := 0 // of the run before: in a small file, runs would overlap
	for k := range sampleRuns {
		start := max(len(order)*k/sampleRuns, end)
		end = min(len(order), start+sampleRows)
		for _, i := range order[start:end] {
			r := w.refs[i]
			if mapped == nil {
				buf = slices.Grow(buf[:0], int(r.n))
			}
			row, err := w.spilled(mapped, r, buf)
			if err != nil {
				return nil, err
			}
			for l := range vals {
				vals[l] = vals[l][:0]
			}
			if err := w.decode(vals, nulls, row, unit); err != nil {
				return nil, err
			}
			for _, c := range w.cols {
				if v := vals[c.leaf][0]; c.kind == kWKB && !v.IsNull() && len(sample[c.geom]) < sampleBytes {
					sample[c.geom] = append(sample[c.geom], v.ByteArray()...)
				}
			}
		}
	}
	shrinks := make([]bool, w.ngeom)
	for g, b := range sample {
		shrinks[g] = len(b) == 0 || 8*len(s2.EncodeSnappy(nil, b)) <= 7*len(b)
	}
	return shrinks, nil
}

// chunkRows is how many rows go to the column writers at once: a page
// ends only between such writes, and parquet-go's own row writes come in
// chunks of this many rows too.
const chunkRows = 64

// errCorrupt is a spilled row that does not decode.
var errCorrupt = errors.New("geoparquet: corrupt spill row")

// decode appends the values of a spilled row to those of its leaf
// columns, cols[leaf], a null in leaf being nulls[leaf].
func (w *Writer) decode(cols [][]parquet.Value, nulls []parquet.Value, b []byte, unit parquet.TimeUnit) error {
	p := 1
	for _, c := range w.cols {
		if p >= len(b) {
			return errCorrupt
		}
		present := b[p] == 1
		p++
		if !present {
			n := 1
			if c.kind == kBBox {
				n = 4
			}
			for k := range n {
				cols[c.leaf+k] = append(cols[c.leaf+k], nulls[c.leaf+k])
			}
			continue
		}
		var v parquet.Value
		switch c.kind {
		case kString, kWKB, kRefused:
			n, k := binary.Uvarint(b[p:])
			if k <= 0 || uint64(len(b)-p-k) < n {
				return errCorrupt
			}
			p += k
			v = parquet.ByteArrayValue(b[p : p+int(n)])
			p += int(n)
		case kLong:
			v = parquet.Int64Value(int64(binary.LittleEndian.Uint64(b[p:])))
			p += 8
		case kDouble:
			v = parquet.DoubleValue(math.Float64frombits(binary.LittleEndian.Uint64(b[p:])))
			p += 8
		case kBool:
			v = parquet.BooleanValue(b[p] == 1)
			p++
		case kTime:
			sec := int64(binary.LittleEndian.Uint64(b[p:]))
			ns := int64(binary.LittleEndian.Uint32(b[p+8:]))
			t := sec*1e9 + ns
			if unit == parquet.Microsecond {
				t = sec*1e6 + ns/1e3
			}
			v = parquet.Int64Value(t)
			p += 12
		case kBBox:
			for k := range 4 {
				cols[c.leaf+k] = append(cols[c.leaf+k], parquet.DoubleValue(math.Float64frombits(binary.LittleEndian.Uint64(b[p:]))).Level(0, 1, c.leaf+k))
				p += 8
			}
			continue
		}
		cols[c.leaf] = append(cols[c.leaf], v.Level(0, 1, c.leaf))
	}
	return nil
}

// node is the file's schema, columns in the Writer's order; the WKB of
// geometry column k is left uncompressed unless snappy[k].
func (w *Writer) node(unit parquet.TimeUnit, snappy []bool) parquet.Node {
	g := orderedGroup{Group: parquet.Group{}}
	for _, c := range w.cols {
		var n parquet.Node
		switch c.kind {
		case kString, kRefused:
			n = parquet.String()
		case kLong:
			n = parquet.Leaf(parquet.Int64Type)
		case kDouble:
			n = parquet.Leaf(parquet.DoubleType)
		case kBool:
			n = parquet.Leaf(parquet.BooleanType)
		case kTime:
			n = parquet.TimestampAdjusted(unit, true)
		case kWKB:
			n = parquet.Leaf(parquet.ByteArrayType)
			if !snappy[c.geom] {
				n = parquet.Compressed(n, &parquet.Uncompressed)
			}
		case kBBox:
			n = orderedGroup{Group: parquet.Group{
				"xmin": parquet.Leaf(parquet.DoubleType), "ymin": parquet.Leaf(parquet.DoubleType),
				"xmax": parquet.Leaf(parquet.DoubleType), "ymax": parquet.Leaf(parquet.DoubleType),
			}, order: []string{"xmin", "ymin", "xmax", "ymax"}}
		}
		g.Group[c.name] = parquet.Optional(n)
		g.order = append(g.order, c.name)
	}
	return g
}

// orderedGroup is a group whose fields keep the given order (a
// parquet.Group's are sorted by name).
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	fields := g.Group.Fields()
	rank := make(map[string]int, len(g.order))
	for i, n := range g.order {
		rank[n] = i
	}
	slices.SortFunc(fields, func(a, b parquet.Field) int { return rank[a.Name()] - rank[b.Name()] })
	return fields
}

// Metadata is the file's "geo" key-value metadata (GeoParquet 1.1.0).
type Metadata struct {
	Version       string                    `json:"version"`
	PrimaryColumn string                    `json:"primary_column"`
	Columns       map[string]ColumnMetadata `json:"columns"`
}

// ColumnMetadata describes one geometry column. The CRS is left out:
// OGC:CRS84, longitude and latitude, as in SDS's WKT.
type ColumnMetadata struct {
	Encoding      string    `json:"encoding"`
	GeometryTypes []string  `json:"geometry_types"`
	BBox          []float64 `json:"bbox,omitempty"`
	Covering      *Covering `json:"covering,omitempty"`
}

// Covering names the bbox struct's fields, each as a column path.
type Covering struct {
	BBox struct {
		XMin []string `json:"xmin"`
		YMin []string `json:"ymin"`
		XMax []string `json:"xmax"`
		YMax []string `json:"ymax"`
	} `json:"bbox"`
}

func (w *Writer) metadata() Metadata {
	m := Metadata{Version: Version, Columns: map[string]ColumnMetadata{}}
	bbox := w.cols[len(w.cols)-1].name
	for _, c := range w.cols {
		if c.kind != kWKB {
			continue
		}
		cm := ColumnMetadata{Encoding: "WKB", GeometryTypes: []string{}}
		for t := range w.types[c.geom] {
			cm.GeometryTypes = append(cm.GeometryTypes, t)
		}
		sort.Strings(cm.GeometryTypes)
		if w.any[c.geom] {
			b := w.bound[c.geom]
			cm.BBox = []float64{b.Min[0], b.Min[1], b.Max[0], b.Max[1]}
		}
		if c.geom == 0 {
			m.PrimaryColumn = c.name
			cv := &Covering{}
			cv.BBox.XMin, cv.BBox.YMin = []string{bbox, "xmin"}, []string{bbox, "ymin"}
			cv.BBox.XMax, cv.BBox.YMax = []string{bbox, "xmax"}, []string{bbox, "ymax"}
			cm.Covering = cv
		}
		m.Columns[c.name] = cm
	}
	return m
}
