package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/sdsops/sdsops/internal/dataset"
)

// ErrInexact: the GeoParquet file does not hold every value the Query API
// answers with, so a table loaded from it would differ from the archive's.
// The caller loads the archive's XML instead.
var ErrInexact = errors.New("the GeoParquet does not hold every value of the archive")

// GeoParquetLoader loads the GeoParquet file that package geoparquet wrote
// beside an archive, given the archive's schema (the file does not name
// the entity type or the key, and renames the first geography column).
//
// The file is exact for every column type but one: a geography value is
// kept as WKB, which loses the text the Query API answers with (its
// spelling; only a value the conversion refuses as a geometry keeps its
// text).
// A data source with a geography column is therefore refused with
// ErrInexact, as is a file whose times were written in microseconds
// (times beyond 1677–2262), which drops their seventh fraction digit.
type GeoParquetLoader struct {
	EntityType string
	Key        string
	Columns    []Column // in the schema's order
}

// Load reads the whole file from r (an io.ReaderAt with a Size method,
// such as a bytes.Reader, is read in place).
func (l GeoParquetLoader) Load(ctx context.Context, r io.Reader) (*Table, error) {
	for _, c := range l.Columns {
		if c.Type == dataset.Geography {
			return nil, fmt.Errorf("geography column %q: %w", c.Name, ErrInexact)
		}
	}
	ra, ok := r.(interface {
		io.ReaderAt
		Size() int64
	})
	if !ok {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("geoparquet: %w", err)
		}
		ra = bytes.NewReader(b)
	}
	// The page index and bloom filters serve lookups; a full read needs neither.
	f, err := parquet.OpenFile(ra, ra.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("geoparquet: %w", err)
	}
	leaf, err := l.leaves(f.Schema())
	if err != nil {
		return nil, err
	}
	b, err := NewBuilder(l.EntityType, l.Columns, l.Key)
	if err != nil {
		return nil, fmt.Errorf("geoparquet: %w", err)
	}
	// Column by column, reading only the schema's columns (not the
	// geometry and its bbox, which Build derives again from Latitude and
	// Longitude), a row group at a time.
	grid := make([][]Value, len(l.Columns))
	vals := make([]Value, len(l.Columns))
	for g, rg := range f.RowGroups() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunks := rg.ColumnChunks()
		for i, c := range l.Columns {
			if grid[i], err = readColumn(grid[i][:0], chunks[leaf[i]], c.Type); err != nil {
				return nil, fmt.Errorf("geoparquet: row group %d, %s: %w", g, c.Name, err)
			}
			if int64(len(grid[i])) != rg.NumRows() {
				return nil, fmt.Errorf("geoparquet: row group %d, %s: %d values for %d rows", g, c.Name, len(grid[i]), rg.NumRows())
			}
		}
		for r := range int(rg.NumRows()) {
			for i := range vals {
				vals[i] = grid[i][r]
			}
			if err := b.Add(vals); err != nil {
				return nil, fmt.Errorf("geoparquet: %w", err)
			}
		}
	}
	return b.Build()
}

// readColumn appends the values of one column chunk to dst. Strings are
// copied out of each page before the page's buffers go back to the pool.
func readColumn(dst []Value, cc parquet.ColumnChunk, t dataset.Type) ([]Value, error) {
	pages := cc.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				dst = append(dst, fromParquet(v, t))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return dst, err
			}
		}
		parquet.Release(p)
	}
}

// leaves finds each schema column's leaf in the file, checking that it
// holds the type package geoparquet writes for it.
func (l GeoParquetLoader) leaves(s *parquet.Schema) ([]int, error) {
	out := make([]int, len(l.Columns))
	for i, c := range l.Columns {
		lc, ok := s.Lookup(c.Name)
		if !ok || len(lc.Path) != 1 || !lc.Node.Leaf() {
			return nil, fmt.Errorf("geoparquet: no column %q", c.Name)
		}
		typ := lc.Node.Type()
		want := parquet.ByteArray
		switch c.Type {
		case dataset.Long, dataset.DateTime:
			want = parquet.Int64
		case dataset.Double:
			want = parquet.Double
		case dataset.Boolean:
			want = parquet.Boolean
		}
		if typ.Kind() != want {
			return nil, fmt.Errorf("geoparquet: column %q is %s, not what %s is written as", c.Name, typ, c.Type)
		}
		if c.Type == dataset.DateTime {
			if !nanos(typ.LogicalType()) {
				return nil, fmt.Errorf("times of column %q not in nanoseconds: %w", c.Name, ErrInexact)
			}
		}
		out[i] = lc.ColumnIndex
	}
	return out, nil
}

// nanos reports whether lt is a timestamp in nanoseconds.
func nanos(lt *format.LogicalType) bool {
	if lt == nil {
		return false
	}
	ts, ok := lt.Value.(*format.TimestampType)
	return ok && ts.Unit.Value != nil && ts.Unit.Value.Duration() == time.Nanosecond
}

func fromParquet(v parquet.Value, t dataset.Type) Value {
	if v.IsNull() {
		return Value{Null: true}
	}
	switch t {
	case dataset.Long:
		return Value{Int: v.Int64()}
	case dataset.Double:
		return Value{Num: v.Double()}
	case dataset.Boolean:
		return Value{Bool: v.Boolean()}
	case dataset.DateTime:
		return Value{Time: time.Unix(0, v.Int64()).UTC()}
	}
	return Value{Str: string(v.ByteArray())}
}
