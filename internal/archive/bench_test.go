package archive

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// BenchmarkCopy300MB copies a 300 MB export, generated on the fly by an
// httptest server and read through sds.Client, into moto S3 with the
// default PartSize and Concurrency. Besides throughput it reports the
// peak Go heap (HeapInuse sampled every 10 ms), which must stay below
// 64 MiB: the export is never held in memory.
//
//	go test -run '^$' -bench Copy300MB -benchtime 1x ./internal/archive/
func BenchmarkCopy300MB(b *testing.B) {
	api := newS3(b)
	bucket := newBucket(b, api)
	// 200,000 entities (the SDS maximum) of 1.5 kB each.
	data := testDataSet{Name: "MyDataSourceName", Entities: 200_000}
	data.Padding = 1500 - len(data.appendEntity(nil, 0))
	src := newTestSource(b, data, serveOK)
	store := newStore(b, api, bucket, Config{Now: time.Now})
	b.Logf("export %d bytes; PartSize %d MiB, Concurrency %d", data.Size(), store.cfg.PartSize>>20, store.cfg.Concurrency)

	runtime.GC()
	peak := sampleHeap(b)
	b.SetBytes(data.Size())
	ctx := context.Background()
	i := 0
	for b.Loop() {
		req := testRequest(int64(data.Entities))
		req.JobID = fmt.Sprintf("bench%d", i)
		i++
		res, err := store.Copy(ctx, req, src.open())
		if err != nil {
			b.Fatal(err)
		}
		if res.Bytes != data.Size() || res.EntityCount != int64(data.Entities) {
			b.Fatalf("copied %d bytes, %d entities", res.Bytes, res.EntityCount)
		}
		// moto keeps objects in memory; drop this one before the next.
		b.StopTimer()
		for _, k := range []string{res.Key, res.ManifestKey} {
			if _, err := api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
}

// sampleHeap samples HeapInuse every 10 ms until the benchmark ends; the
// returned function stops sampling and returns the peak.
func sampleHeap(b *testing.B) func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop := func() uint64 {
		once.Do(func() { close(done); wg.Wait() })
		return peak.Load()
	}
	b.Cleanup(func() { stop() })
	return stop
}
