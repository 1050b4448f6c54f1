package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
)

// The largest legal data source: 200,000 entities in the 300 MB generated
// export, points spread over 47–48°N, 122–123°W.
var (
	benchOnce  sync.Once
	benchTable *Table
	benchErr   error
)

func benchExport() datasettest.Export { return datasettest.Fit("Bench", dataset.MaxEntities, 300<<20) }

func loadExport(ctx context.Context, d datasettest.Export) (*Table, error) {
	pr, pw := io.Pipe()
	go func() { _, err := d.WriteTo(pw); pw.CloseWithError(err) }()
	return DataSetLoader{}.Load(ctx, pr)
}

func largest(b *testing.B) *Table {
	benchOnce.Do(func() { benchTable, benchErr = loadExport(context.Background(), benchExport()) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchTable
}

// benchQueries are the queries of the benchmarks, randomized around the
// data source, as query strings and as DuckDB SQL over the same entities.
func benchQueries(kind string, n int) (odata, sql []string) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < n; i++ {
		lat, lon := 47.05+rng.Float64()*0.9, -122.95+rng.Float64()*0.9
		v := url.Values{}
		var q string
		switch kind {
		case "nearby":
			v.Set("spatialFilter", fmt.Sprintf("nearby(%.6f,%.6f,5)", lat, lon))
			d := fmt.Sprintf(sqlHaversine, f64(lat), f64(lon))
			q = "SELECT *, " + d + " AS d FROM s WHERE " + d + " <= 5 ORDER BY d, EntityID LIMIT 25"
		case "bbox":
			v.Set("spatialFilter", fmt.Sprintf("bbox(%.6f,%.6f,%.6f,%.6f)", lat, lon, lat+0.05, lon+0.07))
			q = fmt.Sprintf("SELECT * FROM s WHERE Latitude BETWEEN %.6f AND %.6f AND Longitude BETWEEN %.6f AND %.6f ORDER BY EntityID LIMIT 25", lat, lat+0.05, lon, lon+0.07)
		case "intersects":
			var pts []string
			for k := 0; k < 199; k++ {
				a := 2 * math.Pi * float64(k) / 199
				r := 0.03 + 0.02*rng.Float64()
				pts = append(pts, fmt.Sprintf("%.6f %.6f", lon+r*math.Cos(a), lat+r*math.Sin(a)))
			}
			wkt := "POLYGON((" + strings.Join(append(pts, pts[0]), ",") + "))"
			v.Set("spatialFilter", "intersects('"+wkt+"')")
			q = "SELECT * FROM s WHERE ST_Intersects(shape, ST_GeomFromText('" + wkt + "')) ORDER BY EntityID LIMIT 25"
		case "fullscan":
			open, id := 600+rng.IntN(200), fmt.Sprintf("%09d", rng.IntN(200000))
			v.Set("spatialFilter", "bbox(46,-124,49,-121)")
			v.Set("$filter", fmt.Sprintf("Open gt %d and IsWheelchairAccessible eq 1 or EntityID eq '%s'", open, id))
			q = fmt.Sprintf("SELECT * FROM s WHERE Latitude BETWEEN 46 AND 49 AND Longitude BETWEEN -124 AND -121 AND (Open > %d AND IsWheelchairAccessible OR EntityID = '%s') ORDER BY EntityID LIMIT 25", open, id)
		}
		v.Set("$top", "25")
		odata, sql = append(odata, v.Encode()), append(sql, q)
	}
	return odata, sql
}

var benchKinds = []string{"nearby", "bbox", "intersects", "fullscan"}

// answer parses and runs one query string, as the handler does.
func answer(b *testing.B, tb *Table, raw string) {
	p, err := ParseParams(raw)
	if err != nil {
		b.Fatal(err)
	}
	q, err := Parse(tb, p)
	if err != nil {
		b.Fatal(err)
	}
	res := tb.Run(q)
	for _, r := range res.Rows {
		q.Project(tb, r)
	}
}

// BenchmarkQuery reports p50 and p99 per query kind on the largest data
// source, in process.
func BenchmarkQuery(b *testing.B) {
	tb := largest(b)
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			qs, _ := benchQueries(kind, 200)
			lat := make([]time.Duration, 0, b.N)
			cpu := make([]time.Duration, 0, b.N)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start, startCPU := time.Now(), threadCPU()
				answer(b, tb, qs[i%len(qs)])
				lat = append(lat, time.Since(start))
				cpu = append(cpu, threadCPU()-startCPU)
			}
			p50, p99 := percentiles(lat)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(p99), "p99-ms")
			if c50, c99 := percentiles(cpu); c99 > 0 {
				b.ReportMetric(ms(c50), "cpu-p50-ms")
				b.ReportMetric(ms(c99), "cpu-p99-ms")
			}
		})
	}
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// BenchmarkLoad reads the largest export into a table and reports the
// heap it holds.
func BenchmarkLoad(b *testing.B) {
	d := benchExport()
	b.SetBytes(d.Size())
	for i := 0; i < b.N; i++ {
		tb, err := loadExport(context.Background(), d)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
		runtime.KeepAlive(tb)
	}
}

// BenchmarkVersusDuckDB answers the same 100 queries of each kind here
// and in DuckDB (in memory, with its spatial extension, same entities) and
// reports both medians, the p99s and the ratio of medians.
func BenchmarkVersusDuckDB(b *testing.B) {
	tb := largest(b)
	py := pythonWithDuckDB(b)
	dir := b.TempDir()
	var lines bytes.Buffer
	open, wc := tb.Column("Open"), tb.Column("IsWheelchairAccessible")
	for i := 0; i < tb.Len(); i++ {
		lat, lon, _ := tb.Point(i)
		row := map[string]any{"EntityID": tb.ID(i), "Latitude": lat, "Longitude": lon}
		if v := tb.Value(i, open); !v.Null {
			row["Open"] = v.Int
		}
		if v := tb.Value(i, wc); !v.Null {
			row["IsWheelchairAccessible"] = v.Bool
		}
		line, _ := json.Marshal(row)
		lines.Write(append(line, '\n'))
	}
	sqls := map[string][]string{}
	odata := map[string][]string{}
	for _, k := range benchKinds {
		odata[k], sqls[k] = benchQueries(k, 100)
	}
	qJSON, _ := json.Marshal(sqls)
	ents, qs, out := filepath.Join(dir, "e.jsonl"), filepath.Join(dir, "q.json"), filepath.Join(dir, "t.json")
	if err := os.WriteFile(ents, lines.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(qs, qJSON, 0o644); err != nil {
		b.Fatal(err)
	}
	if o, err := exec.Command(py, "testdata/duckdb_bench.py", ents, qs, out).CombinedOutput(); err != nil {
		b.Fatalf("duckdb: %v\n%s", err, o)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var duck map[string][]float64
	if err := json.Unmarshal(data, &duck); err != nil {
		b.Fatal(err)
	}
	for _, k := range benchKinds {
		b.Run(k, func(b *testing.B) {
			var ours []time.Duration
			for i := 0; i < b.N; i++ {
				for _, q := range odata[k] {
					start := time.Now()
					answer(b, tb, q)
					ours = append(ours, time.Since(start))
				}
			}
			var theirs []time.Duration
			for _, s := range duck[k] {
				theirs = append(theirs, time.Duration(s*float64(time.Second)))
			}
			o50, o99 := percentiles(ours)
			d50, d99 := percentiles(theirs)
			b.ReportMetric(ms(o50), "p50-ms")
			b.ReportMetric(ms(o99), "p99-ms")
			b.ReportMetric(ms(d50), "duckdb-p50-ms")
			b.ReportMetric(ms(d99), "duckdb-p99-ms")
			b.ReportMetric(float64(d50)/float64(o50), "x-faster")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
