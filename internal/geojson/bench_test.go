package geojson

import (
	"bufio"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/testenv"
	"github.com/sdsops/sdsops/internal/testenv/cputime"
	"github.com/sdsops/sdsops/internal/wkt"
)

// benchExport is the largest export SDS holds: 200,000 entities, about
// 300 MB.
var benchExport = testExport{Name: "Sites", Entities: 200_000, Points: 128}

// BenchmarkConvert converts the 300 MB export from a file, reporting MB/s
// of XML read and the peak heap, which must stay within 64 MiB.
func BenchmarkConvert(b *testing.B) {
	benchConvert(b, benchExport, 64, false)
}

// BenchmarkConvertLargeGeographies converts an export of entities whose
// lines and rings hold the SDS maximum of 100,000 points, several
// megabytes of WKT each, reporting the peak heap: what is in flight is
// bounded in bytes, but each such entity also has its GeoJSON and WKB
// copies and the reader's, so the bound is twice that of BenchmarkConvert.
func BenchmarkConvertLargeGeographies(b *testing.B) {
	benchConvert(b, testExport{Name: "Sites", Entities: 40, Points: 100_000}, 128, false)
}

// BenchmarkConvertLargeGeographiesBoth is BenchmarkConvertLargeGeographies
// with the GeoParquet too, within the same bound as for both outputs of
// the 300 MB export.
func BenchmarkConvertLargeGeographiesBoth(b *testing.B) {
	benchConvert(b, testExport{Name: "Sites", Entities: 40, Points: 100_000}, 128, true)
}

// benchConvert converts the export d to GeoJSON, and GeoParquet if both,
// from a file, reporting the CPU time and the peak heap, which must stay
// within limit MiB.
func benchConvert(b *testing.B, d testExport, limit uint64, both bool) {
	path := writeBenchExport(b, &d)
	runtime.GC()
	var peak uint64
	cpu := cputime.Used()
	for b.Loop() {
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		var opts []Option
		if both {
			opts = append(opts, WithGeoParquet(io.Discard, b.TempDir()))
		}
		stop := testenv.PeakHeap(&peak)
		st, err := Convert(context.Background(), bufio.NewReaderSize(in, 64<<10), "Sites", io.Discard, io.Discard, opts...)
		stop()
		in.Close()
		if err != nil {
			b.Fatal(err)
		}
		if st.Features != int64(d.Entities) {
			b.Fatalf("%d features from %d entities", st.Features, d.Entities)
		}
	}
	b.ReportMetric((cputime.Used()-cpu).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	if peak > limit<<20 {
		b.Errorf("peak heap %d MiB, more than %d MiB", peak>>20, limit)
	}
}

// BenchmarkConvertDeepWKT converts an export holding one geography of
// GEOMETRYCOLLECTIONs nested 100,000 deep (2 MB), reporting the CPU time
// it costs.
func BenchmarkConvertDeepWKT(b *testing.B) {
	doc := mappingSchema + "<E><ID>1</ID><G>" + nestedCollections(100_000) + "</G></E>\n</Root>\n"
	b.SetBytes(int64(len(doc)))
	cpu := cputime.Used()
	for b.Loop() {
		st, err := Convert(context.Background(), strings.NewReader(doc), "", io.Discard, io.Discard)
		if err != nil || st.Invalid != 1 {
			b.Fatalf("stats %+v, err %v", st, err)
		}
	}
	b.ReportMetric((cputime.Used()-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkReadExport reads the same export as BenchmarkConvert with
// the dataset package alone, every value parsed by its type: the speed
// the conversion is measured against.
func BenchmarkReadExport(b *testing.B) {
	d := benchExport
	path := writeBenchExport(b, &d)
	cpu := cputime.Used()
	for b.Loop() {
		readExport(b, path, d.Entities)
	}
	b.ReportMetric((cputime.Used()-cpu).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkConvertBoth reads the 300 MB export with the dataset reader
// alone, then converts it to GeoJSON and GeoParquet in one pass, in the
// same run, and reports both speeds in MB of XML per CPU-second, their
// ratio, the conversion's peak heap (at most 128 MiB) and the outputs'
// sizes.
func BenchmarkConvertBoth(b *testing.B) {
	d := benchExport
	path := writeBenchExport(b, &d)
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(info.Size()) / 1e6
	var readCPU, convCPU time.Duration
	var peak uint64
	var st Stats
	for b.Loop() {
		cpu := cputime.Used()
		readExport(b, path, d.Entities)
		readCPU += cputime.Used() - cpu

		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		cpu = cputime.Used()
		stop := testenv.PeakHeap(&peak)
		st, err = Convert(context.Background(), bufio.NewReaderSize(in, 64<<10), "Sites", io.Discard, io.Discard, WithGeoParquet(io.Discard, b.TempDir()))
		stop()
		convCPU += cputime.Used() - cpu
		in.Close()
		if err != nil {
			b.Fatal(err)
		}
		if st.GeoParquet.Rows != int64(d.Entities) {
			b.Fatalf("%d rows from %d entities", st.GeoParquet.Rows, d.Entities)
		}
	}
	n := float64(b.N)
	reader, conv := mb*n/readCPU.Seconds(), mb*n/convCPU.Seconds()
	b.ReportMetric(reader, "reader-MB/cpu-s")
	b.ReportMetric(conv, "convert-MB/cpu-s")
	b.ReportMetric(100*conv/reader, "ratio-%")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(st.GeoJSON.Bytes)/1e6, "geojson-MB")
	b.ReportMetric(float64(st.GeoParquet.Bytes)/1e6, "parquet-MB")
	b.ReportMetric(float64(st.GeoParquet.RowGroups), "row-groups")
	// Costs no conversion avoids: reading the export, at the reader's own
	// speed; the sha256 the manifest records of both outputs; and making
	// each geography's GeoJSON and WKB. The ratio they alone would leave
	// bounds ratio-% from above, whatever the rest costs; bound-% adds
	// compressing the WKB, as the file chooses to for this export.
	read, hash := readCPU.Seconds()/n, hashCPU(st.GeoJSON.Bytes+st.GeoParquet.Bytes).Seconds()
	geo, squeeze := wktCPU(b, path)
	b.ReportMetric(hash, "sha256-cpu-s")
	b.ReportMetric(geo.Seconds(), "wkt-cpu-s")
	b.ReportMetric(squeeze.Seconds(), "wkb-snappy-cpu-s")
	b.ReportMetric(100*read/(read+hash), "read+sha256-bound-%")
	b.ReportMetric(100*read/(read+hash+geo.Seconds()), "bound-uncompressed-%")
	b.ReportMetric(100*read/(read+hash+geo.Seconds()+squeeze.Seconds()), "bound-%")
	if peak > 128<<20 {
		b.Errorf("peak heap %d MiB, more than 128 MiB", peak>>20)
	}
}

// hashCPU is the CPU time sha256 takes over n bytes.
func hashCPU(n int64) time.Duration {
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h := sha256.New()
	cpu := cputime.Used()
	for ; n > 0; n -= int64(len(buf)) {
		h.Write(buf[:min(n, int64(len(buf)))])
	}
	h.Sum(nil)
	return cputime.Used() - cpu
}

// wktCPU is the CPU time the WKT converter takes over the geography
// values of the export at path, read aside in batches so that reading
// them is not counted, and the time snappy takes over their WKB, in
// pages of parquet-go's default size.
func wktCPU(b *testing.B, path string) (convert, compress time.Duration) {
	rd, s, in := openExport(b, path)
	defer in.Close()
	var (
		cv       wkt.Converter
		gj, wkb  []byte
		pages    []byte
		texts    []byte
		ends     []int
		packed   []byte
		finished bool
	)
	for !finished {
		texts, ends = texts[:0], ends[:0]
		for len(texts) < 8<<20 {
			rec, err := rd.Next()
			if err == io.EOF {
				finished = true
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			for i, c := range s.Columns {
				if v := rec.Value(i); c.Type == dataset.Geography && v.Present {
					texts = append(texts, v.Raw...)
					ends = append(ends, len(texts))
				}
			}
		}
		start, prev := cputime.Used(), 0
		for _, end := range ends {
			gj, wkb, _, _ = cv.Convert(texts[prev:end], gj[:0], wkb[:0])
			prev = end
		}
		convert += cputime.Used() - start
		// Again, untimed, to have the batch's WKB in one piece.
		pages, prev = pages[:0], 0
		for _, end := range ends {
			gj, pages, _, _ = cv.Convert(texts[prev:end], gj[:0], pages)
			prev = end
		}
		start = cputime.Used()
		for page := range slices.Chunk(pages, parquet.DefaultPageBufferSize) {
			packed = s2.EncodeSnappy(packed[:cap(packed)], page)
		}
		compress += cputime.Used() - start
	}
	return convert, compress
}

// openExport opens the export at path and reads its schema.
func openExport(b *testing.B, path string) (*dataset.Reader, *dataset.Schema, *os.File) {
	in, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	rd := dataset.NewReader(in, "Sites")
	s, err := rd.Schema()
	if err != nil {
		in.Close()
		b.Fatal(err)
	}
	return rd, s, in
}

// readExport reads the export at path, every value parsed by its type.
func readExport(b *testing.B, path string, entities int) {
	rd, s, in := openExport(b, path)
	defer in.Close()
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			if rd.Entities() != int64(entities) {
				b.Fatalf("%d entities read of %d", rd.Entities(), entities)
			}
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		for i, c := range s.Columns {
			if v := rec.Value(i); v.Present {
				switch c.Type {
				case dataset.Long:
					_, err = v.Long()
				case dataset.Double:
					_, err = v.Double()
				case dataset.Boolean:
					_, err = v.Bool()
				case dataset.DateTime:
					_, err = v.Time()
				}
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// writeBenchExport writes the export to a temporary file and sets the
// benchmark's bytes per operation to its size.
func writeBenchExport(b *testing.B, d *testExport) string {
	path := filepath.Join(b.TempDir(), "export.xml")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	size, err := d.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	return path
}
