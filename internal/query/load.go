package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sdsops/sdsops/internal/dataset"
)

// A Loader reads one archived data source into a Table. The DataSet XML
// export is read by DataSetLoader; another archive format (GeoParquet)
// plugs in here without the rest of the package noticing.
type Loader interface {
	Load(ctx context.Context, r io.Reader) (*Table, error)
}

// DataSetLoader loads the DataSet XML export of the named data source
// ("" accepts any name).
type DataSetLoader struct{ DataSetName string }

// Load reads and verifies the whole export; an export that is not a
// complete DataSet, or whose values do not parse as their types, is an
// error and yields no table.
func (l DataSetLoader) Load(ctx context.Context, r io.Reader) (*Table, error) {
	rd := dataset.NewReader(r, l.DataSetName)
	s, err := rd.Schema()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	cols := make([]Column, len(s.Columns))
	for i, c := range s.Columns {
		cols[i] = Column{Name: c.Name, Type: c.Type}
	}
	b, err := NewBuilder(s.EntityType, cols, s.Key)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	vals := make([]Value, len(cols))
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for i := range cols {
			if vals[i], err = fromDataSet(rec.Value(i)); err != nil {
				return nil, fmt.Errorf("export: entity %d, %s: %w", rd.Entities(), cols[i].Name, err)
			}
		}
		if err := b.Add(vals); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	return b.Build()
}

func fromDataSet(v dataset.Value) (Value, error) {
	// An empty element of a non-string type has no value to parse: SDS
	// writes none, and a hand-made archive's <Open/> means the same as none.
	if !v.Present || v.Type != dataset.String && len(bytes.TrimSpace(v.Raw)) == 0 {
		return Value{Null: true}, nil
	}
	var (
		out Value
		err error
	)
	switch v.Type {
	case dataset.Long:
		out.Int, err = v.Long()
	case dataset.Double:
		out.Num, err = v.Double()
	case dataset.Boolean:
		out.Bool, err = v.Bool()
	case dataset.DateTime:
		out.Time, err = v.Time()
		out.Time = out.Time.UTC()
	default:
		out.Str = v.Text()
	}
	return out, err
}
