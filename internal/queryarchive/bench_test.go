package queryarchive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/query"
	"github.com/sdsops/sdsops/internal/query/querytest"
	"github.com/sdsops/sdsops/internal/testenv"
	"github.com/sdsops/sdsops/internal/testenv/cputime"
)

// BenchmarkFirstAnswer measures a cold start's load of the largest legal
// data source (200,000 entities, the 300 MB generated export) in moto:
// from the archive in S3 to the first answer of a nearby query, through
// the XML and then, once converted, through the GeoParquet. It reports
// the wall time, the CPU time, the peak Go heap and the peak resident
// memory of the process during the load.
func BenchmarkFirstAnswer(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b)
	id := catalog.ID{AccessID: querytest.AccessID, Name: "Bench"}
	d := datasettest.Fit(id.Name, dataset.MaxEntities, 300<<20)
	key := f.keyOf(id, "2026/12/06", "bench")
	mkey := key + archive.ManifestSuffix

	// The export goes to S3 from a file, so that this process never holds it.
	path := filepath.Join(b.TempDir(), "export.xml")
	fh, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	if _, err := d.WriteTo(io.MultiWriter(fh, h)); err != nil {
		b.Fatal(err)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if _, err := f.api.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: &key, Body: fh}); err != nil {
		b.Fatal(err)
	}
	fh.Close()
	manifest, _ := json.Marshal(archive.Manifest{FormatVersion: 1, AccessID: id.AccessID, DataSourceName: id.Name, JobID: "bench",
		SHA256: sum, Verified: true, Bucket: f.bucket, Key: key, Bytes: d.Size(), EntityCount: int64(d.Entities),
		EntityType: datasettest.EntityType, FinishedAt: f.finished})
	f.put(b, mkey, string(manifest))
	if _, err := f.store.Update(ctx, id, func(r *catalog.Record) error { r.Visibility = catalog.Public; return nil }); err != nil {
		b.Fatal(err)
	}

	measure := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var heap uint64
			rss := peakRSS()
			stop := testenv.PeakHeap(&heap)
			start, cpu0 := time.Now(), cputime.Used()
			cat := &Catalog{Records: f.store, Objects: f.api, Bucket: f.bucket, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			firstAnswer(b, cat, id)
			wall, cpu := time.Since(start), cputime.Used()-cpu0
			stop()
			b.ReportMetric(wall.Seconds(), "s-to-first-answer")
			b.ReportMetric(cpu.Seconds(), "cpu-s")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(rss())/(1<<20), "peak-RSS-MiB")
			runtime.KeepAlive(cat)
		}
	}
	b.Run("xml", measure)
	store, err := archive.New(f.api, archive.Config{Bucket: f.bucket})
	if err != nil {
		b.Fatal(err)
	}
	res, err := conversion.New(f.api, store).Convert(ctx, mkey)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("GeoParquet: %d bytes, %d row groups", res.Record.GeoParquet.Bytes, res.Record.GeoParquet.RowGroups)
	b.Run("geoparquet", measure)
}

// firstAnswer loads the data source through a new Catalog, as a cold
// start does, and answers one query.
func firstAnswer(b *testing.B, cat *Catalog, id catalog.ID) {
	src, err := cat.Source(context.Background(), id.AccessID, id.Name)
	if err != nil {
		b.Fatal(err)
	}
	p, err := query.ParseParams("spatialFilter=nearby(47.5,-122.5,5)&$top=25")
	if err != nil {
		b.Fatal(err)
	}
	q, err := query.Parse(src.Published, p)
	if err != nil {
		b.Fatal(err)
	}
	if res := src.Published.Run(q); len(res.Rows) == 0 {
		b.Fatal("no answer")
	}
}

// peakRSS resets the process's resident high-water mark (Linux) and
// returns a function that reads it, in bytes; 0 where it cannot.
func peakRSS() func() uint64 {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return func() uint64 {
		fh, err := os.Open("/proc/self/status")
		if err != nil {
			return 0
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				return kb << 10
			}
		}
		return 0
	}
}
