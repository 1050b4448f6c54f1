package archive

import (
	"io"
	"testing"
)

// benchmarkExports are about 32 MB each: entities padded like large real
// records, and plain ones (all markup, the checker's worst case).
var benchmarkExports = []struct {
	name string
	data testDataSet
}{
	{"padded", testDataSet{Name: "DS", Entities: 40_000, Padding: 400}},
	{"plain", testDataSet{Name: "DS", Entities: 60_000}},
}

// BenchmarkDataSetChecker measures the checks Copy runs on every export:
// package dataset's lenient Verifier, UTF-8 counting included, and the
// load rules checked on each entity in the same pass.
func BenchmarkDataSetChecker(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(e.data.Size())
			for b.Loop() {
				v, restore := newChecks(e.data.Name, int64(e.data.Entities))
				if _, err := e.data.WriteTo(v); err != nil {
					b.Fatal(err)
				}
				if err := v.Close(); err != nil {
					b.Fatal(err)
				}
				sum := v.Summary()
				if p := restore.Problems(sum.Schema, v.Root(), sum.Bytes, sum.Entities); len(p) > 0 {
					b.Fatal(p)
				}
			}
		})
	}
}

// BenchmarkGenerate is the cost of producing the exports, included in the
// figures above.
func BenchmarkGenerate(b *testing.B) {
	for _, e := range benchmarkExports {
		b.Run(e.name, func(b *testing.B) {
			b.SetBytes(e.data.Size())
			for b.Loop() {
				e.data.WriteTo(io.Discard)
			}
		})
	}
}
