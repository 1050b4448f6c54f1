package geoparquet

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/testenv/cputime"
)

// benchRow is one entity of the benchmarks: its values and geometries.
type benchRow struct {
	vals  []dataset.Value
	geoms []Geometry
}

// benchRows makes n entities of the test schema like those of a large
// export: a polygon of 20 to 120 positions with six decimals (about 1 KB
// of WKB), a name, a number, a flag and a time; a tenth without geometry.
func benchRows(b *testing.B, n int) (*dataset.Schema, []benchRow) {
	s := schemaOf(b, header)
	r := rand.New(rand.NewPCG(1, 1))
	round := func(v float64) float64 { return math.Round(v*1e6) / 1e6 }
	rows := make([]benchRow, n)
	for i := range rows {
		set := map[string]string{
			"ID": strconv.Itoa(i),
			"S":  "Site " + strconv.Itoa(r.IntN(1000)),
			"D":  strconv.FormatFloat(round(r.Float64()*1000), 'f', -1, 64),
			"B":  strconv.FormatBool(r.IntN(2) == 0),
			"T":  "2019-04-0" + strconv.Itoa(1+r.IntN(9)) + "T10:11:12.1234567Z",
		}
		geoms := make([]Geometry, 2)
		if i%10 != 0 {
			set["G"] = "POLYGON (...)"
			// A closed ring of np positions, each a step from the last.
			np := 20 + r.IntN(100)
			wkb := binary.LittleEndian.AppendUint32([]byte{1}, 3)
			wkb = binary.LittleEndian.AppendUint32(wkb, 1)
			wkb = binary.LittleEndian.AppendUint32(wkb, uint32(np))
			first := orb.Point{round(r.Float64()*360 - 180), round(r.Float64()*170 - 85)}
			p, bound := first, orb.Bound{Min: first, Max: first}
			for k := range np {
				if k == np-1 {
					p = first
				} else if k > 0 {
					p = orb.Point{round(p[0] + r.Float64()*0.01 - 0.005), round(p[1] + r.Float64()*0.01 - 0.005)}
				}
				bound = bound.Extend(p)
				wkb = binary.LittleEndian.AppendUint64(wkb, math.Float64bits(p[0]))
				wkb = binary.LittleEndian.AppendUint64(wkb, math.Float64bits(p[1]))
			}
			geoms[0] = Geometry{WKB: wkb, Type: "Polygon", Bound: bound}
		}
		rows[i] = benchRow{entity(s, set), geoms}
	}
	return s, rows
}

// fill adds rows to a new Writer and returns it and the bytes spilled.
func fill(b *testing.B, s *dataset.Schema, rows []benchRow) (*Writer, int64) {
	w, err := NewWriter(s, s.Index("G"), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for _, r := range rows {
		buf = w.AppendRow(buf[:0], r.vals, r.geoms)
		if err := w.Add(buf, r.geoms); err != nil {
			b.Fatal(err)
		}
	}
	return w, w.off
}

// BenchmarkWriter measures the writer's two halves on 50,000 entities
// (about 54 MB spilled) in MB spilled per CPU-second: "add" encodes and
// spills the rows, "finish" orders them and writes the Parquet file.
func BenchmarkWriter(b *testing.B) {
	s, rows := benchRows(b, 50_000)
	report := func(b *testing.B, cpu time.Duration, spilled int64) {
		b.ReportMetric(float64(spilled)/1e6/cpu.Seconds(), "MB/cpu-s")
		b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
	}
	b.Run("add", func(b *testing.B) {
		var cpu time.Duration
		var spilled int64
		for b.Loop() {
			c := cputime.Used()
			w, n := fill(b, s, rows)
			cpu += cputime.Used() - c
			spilled += n
			w.Close()
		}
		report(b, cpu, spilled)
	})
	b.Run("finish", func(b *testing.B) {
		var cpu time.Duration
		var spilled, size int64
		for b.Loop() {
			w, n := fill(b, s, rows)
			cw := &countWriter{}
			c := cputime.Used()
			if _, err := w.Finish(cw); err != nil {
				b.Fatal(err)
			}
			cpu += cputime.Used() - c
			spilled, size = spilled+n, cw.n
			w.Close()
		}
		report(b, cpu, spilled)
		b.ReportMetric(float64(size)/1e6, "parquet-MB")
	})
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
