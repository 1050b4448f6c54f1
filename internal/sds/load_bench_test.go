package sds_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/testenv"
)

// BenchmarkLoad300MB streams a generated 200,000-entity export of just under 300 MB through
// the client into the emulator, which runs in its own process so that the heap measured here
// is the client's (plus the generator that stands in for the archive reader). Reports MB/s of
// uncompressed data and the peak Go heap.
func BenchmarkLoad300MB(b *testing.B) {
	ds := datasettest.Fit("BenchSource", sds.MaxLoadEntities, sds.MaxLoadBytes)
	size := ds.Size()

	b.Run("emulator", func(b *testing.B) { benchLoad(b, ds, size, testenv.EmulatorProcess(b), true) })
	b.Run("client-only", func(b *testing.B) { benchLoad(b, ds, size, startDiscardServer(b), false) })
}

// benchLoad streams ds into the service at url; with wait it also follows the job to its end
// (outside the timed part).
func benchLoad(b *testing.B, ds datasettest.Export, size int64, url string, wait bool) {
	c, err := sds.New(url, masterKey, sds.WithTimeout(5*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	var peak uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		stop := testenv.PeakHeap(&peak)
		pr, pw := io.Pipe()
		go func() { _, err := ds.WriteTo(pw); pw.CloseWithError(err) }()
		job, err := c.Load(ctx, sds.LoadRequest{Name: "BenchLoad", Operation: sds.LoadComplete, Body: pr, Size: size, Entities: int64(ds.Entities)})
		stop()
		pr.Close()
		if err != nil {
			b.Fatal(err)
		}
		if !wait {
			continue
		}
		b.StopTimer()
		for {
			st, err := c.JobStatus(ctx, job.StatusURL())
			if err != nil {
				b.Fatal(err)
			}
			if st.Status.Done() {
				if st.Status != sds.StatusCompleted || st.TotalEntityCount != int64(ds.Entities) {
					b.Fatalf("load job %+v", st)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	if peak > 64<<20 {
		b.Errorf("peak heap %.1f MiB, the budget is 64 MiB", float64(peak)/(1<<20))
	}
}

// startDiscardServer answers every upload with a Pending load job after reading and
// decompressing the body: the client's own throughput, without the emulator's XML parsing.
func startDiscardServer(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err == nil {
			_, err = io.Copy(io.Discard, zr)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"statusCode":201,"authenticationResultCode":"ValidCredentials","resourceSets":[{"estimatedTotal":1,"resources":[{"__type":"DataflowJob:http://schemas.microsoft.com/search/local/ws/rest/v1","id":"f8293dc72ac04942b7cb003c9608c547","links":[{"role":"self","url":"http://`+r.Host+`/REST/v1/dataflows/LoadDataSource/f8293dc72ac04942b7cb003c9608c547"}],"status":"Pending"}]}]}`)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}
