package sds_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/dataset/datasettest"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// newLoadEnv runs jobs to completion the first time they are looked at.
func newLoadEnv(t *testing.T, tweak func(*sdsemu.Config), opts ...sds.Option) *env {
	t.Helper()
	e := newEnv(t, func(c *sdsemu.Config) {
		c.Manual = false
		c.JobDuration = 0
		c.DownloadJobDuration = 0
		if tweak != nil {
			tweak(c)
		}
	}, opts...)
	t.Cleanup(func() { e.emu.Close() })
	return e
}

// shopsData builds an XML DataSet of n entities of a FourthCoffee-like schema with a geography
// column, non-ASCII text and omitted values; tag makes versions tell apart.
func shopsData(n int, tag string) []byte {
	var b bytes.Buffer
	shops := datasettest.Schema{Root: "ShopsData", Name: "Shops", EntityType: "Shop", Key: "EntityID", Columns: []datasettest.Column{
		{Name: "EntityID", Type: "string", Required: true},
		{Name: "Name", Type: "string"},
		{Name: "Seats", Type: "long"},
		{Name: "Open", Type: "boolean"},
		{Name: "Opened", Type: "dateTime"},
		{Name: "Latitude", Type: "double"},
		{Name: "Longitude", Type: "double"},
		{Name: "Layout", Type: "anyType"},
	}}
	b.WriteString(shops.Header())
	for i := range n {
		fmt.Fprintf(&b, "  <Shop>\n    <EntityID>%s-%d</EntityID>\n    <Name>Café &amp; Zoë №%d</Name>\n", tag, i, i)
		if i%3 != 0 { // omitted values stay omitted
			fmt.Fprintf(&b, "    <Seats>%d</Seats>\n    <Open>%t</Open>\n", 10+i, i%2 == 0)
		}
		fmt.Fprintf(&b, "    <Opened>2016-03-01T08:00:00.0000000Z</Opened>\n    <Latitude>47.6%d</Latitude>\n    <Longitude>-122.1%d</Longitude>\n", i, i)
		if i%2 == 1 {
			fmt.Fprintf(&b, "    <Layout>POLYGON((-122.1 47.6, -122.2 47.6, -122.2 47.7, -122.1 47.6), (-122.15 47.62, -122.16 47.62, -122.16 47.63, -122.15 47.62))</Layout>\n")
		}
		b.WriteString("  </Shop>\n")
	}
	b.WriteString(shops.Footer())
	return b.Bytes()
}

// entities reads a DataSet into key -> column -> value, the key being the first field of each
// entity (the schema's entity ID in our data sets).
func entities(t testing.TB, data []byte) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	r := dataset.NewReader(bytes.NewReader(data), "")
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		cols := map[string]string{}
		for i, c := range rec.Schema().Columns {
			if v := rec.Value(i); v.Present {
				cols[c.Name] = v.Text()
			}
		}
		out[cols["EntityID"]] = cols
	}
	if int64(len(out)) != r.Entities() {
		t.Fatalf("%d distinct entity IDs in %d entities", len(out), r.Entities())
	}
	return out
}

func sameEntities(t *testing.T, got, want map[string]map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entities, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("entity %q missing", k)
		}
		if len(g) != len(w) {
			t.Fatalf("entity %q has columns %v, want %v", k, g, w)
		}
		for c, v := range w {
			if g[c] != v {
				t.Fatalf("entity %q column %s = %q, want %q", k, c, g[c], v)
			}
		}
	}
}

// waitJob polls a job's status URL until it is done.
func waitJob(t *testing.T, c *sds.Client, job *sds.Job) *sds.Job {
	t.Helper()
	for range 50 {
		st, err := c.JobStatus(context.Background(), job.StatusURL())
		if err != nil {
			noKeyIn(t, err)
			t.Fatal(err)
		}
		if st.Status.Done() {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s never finished", job.ID)
	return nil
}

// download exports the published version (or version jobID) of ds.
func download(t *testing.T, e *env, ds sds.DataSource, jobID string) []byte {
	t.Helper()
	ctx := context.Background()
	job, err := e.client.CreateDownloadJob(ctx, ds, jobID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.client.DownloadJobStatus(ctx, job.StatusURL())
	if err != nil || st.Status != sds.StatusCompleted {
		t.Fatalf("download job %+v, %v", st, err)
	}
	exp, err := e.client.OpenExport(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	data, err := io.ReadAll(exp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func load(t *testing.T, e *env, name string, op sds.LoadOperation, data []byte) *sds.Job {
	t.Helper()
	sum, err := dataset.Verify(bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.client.Load(context.Background(), sds.LoadRequest{
		Name: name, Operation: op, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: sum.Entities,
	})
	if err != nil {
		noKeyIn(t, err)
		t.Fatal(err)
	}
	if job.Status != sds.StatusPending || job.StatusURL() == "" {
		t.Fatalf("new load job %+v: want Pending with a status URL", job)
	}
	return waitJob(t, e.client, job)
}

func TestLoadRoundTrip(t *testing.T) {
	for _, format := range []string{"json", "xml"} {
		t.Run(format, func(t *testing.T) {
			var opts []sds.Option
			if format == "xml" {
				opts = append(opts, sds.WithXML())
			}
			e := newLoadEnv(t, nil, opts...)
			export := download(t, e, coffee, "")

			st := load(t, e, "CoffeeRestored", sds.LoadComplete, export)
			if st.Status != sds.StatusCompleted || st.Err() != nil {
				t.Fatalf("load job %+v", st)
			}
			if st.TotalEntityCount != 350 || st.FailedEntityCount != 0 {
				t.Errorf("load counts total %d failed %d, want 350 and 0", st.TotalEntityCount, st.FailedEntityCount)
			}
			ds, err := st.LoadedDataSource()
			if err != nil {
				t.Fatal(err)
			}
			if ds.Name != "CoffeeRestored" || ds.AccessID == coffee.AccessID || len(ds.AccessID) != 32 {
				t.Fatalf("loaded data source %v: want a new 32-character access ID", ds)
			}
			restored := download(t, e, ds, "")
			sameEntities(t, entities(t, restored), entities(t, export))
			sum, err := dataset.Verify(bytes.NewReader(restored), "")
			if err != nil || sum.Schema.DataSetName != "CoffeeRestored" || sum.Schema.EntityType != "FourthCoffeeShops" {
				t.Errorf("restored export names %+v, %v", sum.Schema, err)
			}
			infos, err := e.client.DataSourceInfo(context.Background(), ds, false)
			if err != nil || len(infos) != 1 || infos[0].Name != "CoffeeRestored" || infos[0].IsPublic {
				t.Fatalf("information of the loaded data source: %+v, %v", infos, err)
			}
			// The original stays as it was.
			if again := download(t, e, coffee, ""); !bytes.Equal(again, export) {
				t.Error("the original data source changed")
			}
		})
	}
}

func TestLoadEveryType(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(30, "v1")
	st := load(t, e, "Shops_2026", sds.LoadComplete, data)
	if st.Status != sds.StatusCompleted {
		t.Fatalf("load job %+v", st)
	}
	ds, err := st.LoadedDataSource()
	if err != nil {
		t.Fatal(err)
	}
	sameEntities(t, entities(t, download(t, e, ds, "")), entities(t, data))
}

// The emulator takes plain XML as well as gzip, as application/xml or application/octet-stream.
func TestEmulatorLoadBodies(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(5, "p")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	for _, tc := range []struct {
		name, ctype string
		body        []byte
		want        int
	}{
		{"plain", "application/xml", data, http.StatusCreated},
		{"plainText", "text/xml; charset=utf-8", data, http.StatusCreated},
		{"gzip", "application/octet-stream", gz.Bytes(), http.StatusCreated},
		{"badType", "application/json", data, http.StatusBadRequest},
		{"badGzip", "application/octet-stream", gz.Bytes()[:20], http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := e.srv.URL + "/REST/v1/Dataflows/LoadDataSource?dataSourceName=Plain" + tc.name + "&loadOperation=complete&input=xml&key=" + masterKey
			resp, err := http.Post(u, tc.ctype, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if strings.Contains(string(body), masterKey) {
				t.Fatal("response repeats the key")
			}
			if tc.want != http.StatusCreated {
				return
			}
			r, err := sds.DecodeResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			if loc := resp.Header.Get("Location"); loc == "" || loc != r.Jobs[0].StatusURL() {
				t.Errorf("Location %q, self link %q", loc, r.Jobs[0].StatusURL())
			}
			st := waitJob(t, e.client, &r.Jobs[0])
			if st.Status != sds.StatusCompleted || st.TotalEntityCount != 5 {
				t.Fatalf("job %+v", st)
			}
		})
	}
}

func versionsOf(t *testing.T, e *env, ds sds.DataSource) (published, staged string, prior []string) {
	t.Helper()
	infos, err := e.client.DataSourceInfo(context.Background(), ds, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range infos {
		switch {
		case v.IsActive:
			published = v.JobID
		case v.IsStaging:
			staged = v.JobID
		default:
			prior = append(prior, v.JobID)
		}
	}
	return published, staged, prior
}

// formats runs f against the emulator answering in JSON and in XML.
func formats(t *testing.T, f func(t *testing.T, e *env)) {
	for _, format := range []string{"json", "xml"} {
		t.Run(format, func(t *testing.T) {
			var opts []sds.Option
			if format == "xml" {
				opts = append(opts, sds.WithXML())
			}
			f(t, newLoadEnv(t, nil, opts...))
		})
	}
}

func TestStageAndPublish(t *testing.T) { formats(t, stageAndPublish) }

func stageAndPublish(t *testing.T, e *env) {
	ctx := context.Background()
	v1 := load(t, e, "Shops", sds.LoadComplete, shopsData(3, "v1"))
	ds, err := v1.LoadedDataSource()
	if err != nil {
		t.Fatal(err)
	}
	v2data := shopsData(4, "v2")
	v2 := load(t, e, "Shops", sds.LoadCompleteStaging, v2data)
	if v2.Status != sds.StatusCompleted {
		t.Fatalf("staging job %+v", v2)
	}
	if got, _ := v2.LoadedDataSource(); got != ds {
		t.Fatalf("staging into an existing data source gave %v, want %v", got, ds)
	}
	pub, staged, _ := versionsOf(t, e, ds)
	if pub != v1.ID || staged != v2.ID {
		t.Fatalf("published %s staged %s, want %s and %s", pub, staged, v1.ID, v2.ID)
	}
	// The staged version can be downloaded by its job id before it is published.
	sameEntities(t, entities(t, download(t, e, ds, v2.ID)), entities(t, v2data))

	job, err := e.client.PublishStaged(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(job.StatusURL(), "/data/jobs/"+job.ID+"/$getstatus") {
		t.Errorf("publish status URL %q", job.StatusURL())
	}
	if st := waitJob(t, e.client, job); st.Status != sds.StatusCompleted {
		t.Fatalf("publish job %+v", st)
	}
	pub, staged, prior := versionsOf(t, e, ds)
	if pub != v2.ID || staged != "" || len(prior) != 1 || prior[0] != v1.ID {
		t.Fatalf("after publish: published %s staged %q prior %v", pub, staged, prior)
	}
	sameEntities(t, entities(t, download(t, e, ds, "")), entities(t, v2data))
	if _, err := e.client.PublishStaged(ctx, ds); !errors.Is(err, sds.ErrBadRequest) {
		t.Errorf("publishing with nothing staged: %v, want ErrBadRequest", err)
	}

	jobs, err := e.client.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, j := range jobs {
		kinds[j.Description]++
	}
	if kinds["DataSourceComplete"] != 1 || kinds["DataSourceCompleteStaging"] != 1 || kinds["DataSourcePublishFromStaged"] != 1 {
		t.Errorf("job list types %v", kinds)
	}
}

func TestRollbackToEachPriorVersion(t *testing.T) { formats(t, rollbackToEachPriorVersion) }

func rollbackToEachPriorVersion(t *testing.T, e *env) {
	ctx := context.Background()
	data := map[string][]byte{}
	var ids []string
	var ds sds.DataSource
	for i := 1; i <= 4; i++ {
		d := shopsData(i, fmt.Sprintf("v%d", i))
		st := load(t, e, "Shops", sds.LoadComplete, d)
		data[st.ID] = d
		ids = append(ids, st.ID)
		ds, _ = st.LoadedDataSource()
	}
	pub, _, prior := versionsOf(t, e, ds)
	if pub != ids[3] || len(prior) != 2 || prior[0] != ids[2] || prior[1] != ids[1] {
		t.Fatalf("published %s prior %v, want %s and [%s %s] (two kept)", pub, prior, ids[3], ids[2], ids[1])
	}
	if _, err := e.client.Rollback(ctx, "Shops", ids[0]); !errors.Is(err, sds.ErrBadRequest) {
		t.Errorf("rollback to a dropped version: %v, want ErrBadRequest", err)
	}
	for _, target := range []string{ids[1], ids[2]} {
		job, err := e.client.Rollback(ctx, "Shops", target)
		if err != nil {
			t.Fatal(err)
		}
		st := waitJob(t, e.client, job)
		if st.Status != sds.StatusCompleted {
			t.Fatalf("rollback job %+v", st)
		}
		if got, err := st.LoadedDataSource(); err != nil || got != ds {
			t.Fatalf("rollback names %v, %v", got, err)
		}
		pub, _, prior := versionsOf(t, e, ds)
		if pub != target || len(prior) != 2 {
			t.Fatalf("after rollback to %s: published %s prior %v", target, pub, prior)
		}
		sameEntities(t, entities(t, download(t, e, ds, "")), entities(t, data[target]))
	}
	jobs, _ := e.client.ListJobs(ctx)
	n := 0
	for _, j := range jobs {
		if j.Description == "DataSourceRollback" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d DataSourceRollback jobs listed, want 2", n)
	}
}

// countingReader records whether anything read it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.n++
	return c.r.Read(p)
}

func TestLoadLimitsRefusedBeforeSending(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(2, "x")
	utf16 := append([]byte{0xff, 0xfe}, data...)
	latin1 := bytes.Replace(data, []byte(`encoding="UTF-8"`), []byte(`encoding="ISO-8859-1"`), 1)
	for _, tc := range []struct {
		name string
		lr   sds.LoadRequest
	}{
		{"tooLarge", sds.LoadRequest{Size: sds.MaxLoadBytes + 1, Entities: 2}},
		{"tooMany", sds.LoadRequest{Size: int64(len(data)), Entities: sds.MaxLoadEntities + 1}},
		{"noSize", sds.LoadRequest{Entities: 2}},
		{"utf16", sds.LoadRequest{Size: int64(len(utf16)), Entities: 2, Body: bytes.NewReader(utf16)}},
		{"latin1", sds.LoadRequest{Size: int64(len(latin1)), Entities: 2, Body: bytes.NewReader(latin1)}},
		{"badName", sds.LoadRequest{Name: "no/slash", Size: int64(len(data)), Entities: 2}},
		{"publicStaged", sds.LoadRequest{Operation: sds.LoadCompleteStaging, Public: true, Size: int64(len(data)), Entities: 2}},
		{"incremental", sds.LoadRequest{Operation: "incremental", Size: int64(len(data)), Entities: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := tc.lr
			if lr.Name == "" {
				lr.Name = "Limits"
			}
			if lr.Operation == "" {
				lr.Operation = sds.LoadComplete
			}
			if lr.Body == nil {
				lr.Body = bytes.NewReader(data)
			}
			_, err := e.client.Load(context.Background(), lr)
			if !errors.Is(err, sds.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			noKeyIn(t, err)
			if n := e.requests(sdsemu.OpLoad); n != 0 {
				t.Fatalf("%d load requests sent", n)
			}
		})
	}
}

// A stream that turns out longer than declared, or not UTF-8, aborts the request: no job.
func TestLoadStreamChecks(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(50, "s")
	bad := bytes.Replace(data, []byte("Café"), []byte("Caf\xe9"), 1)
	for _, tc := range []struct {
		name string
		body []byte
		size int64
	}{
		{"longer", data, int64(len(data)) - 10},
		{"shorter", data, int64(len(data)) + 10},
		{"notUTF8", bad, int64(len(bad))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.Load(context.Background(), sds.LoadRequest{
				Name: "Stream" + tc.name, Operation: sds.LoadComplete, Body: bytes.NewReader(tc.body), Size: tc.size, Entities: 50,
			})
			if !errors.Is(err, sds.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			noKeyIn(t, err)
			for _, j := range e.emu.Jobs() {
				if j.DataSourceName == "Stream"+tc.name {
					t.Fatalf("a job was created: %+v", j)
				}
			}
		})
	}
}

func TestLoadAbortedWithFailedEntities(t *testing.T) {
	e := newLoadEnv(t, nil)
	ctx := context.Background()
	v1 := load(t, e, "Shops", sds.LoadComplete, shopsData(3, "v1"))
	ds, _ := v1.LoadedDataSource()
	before := download(t, e, ds, "")

	data := shopsData(6, "v2")
	data = bytes.Replace(data, []byte("<Latitude>47.64</Latitude>"), []byte("<Latitude>north</Latitude>"), 1)
	data = bytes.Replace(data, []byte("<Seats>15</Seats>"), []byte("<Seats>many</Seats>"), 1)
	st := load(t, e, "Shops", sds.LoadComplete, data)
	if st.Status != sds.StatusAborted || !errors.Is(st.Err(), sds.ErrJobAborted) {
		t.Fatalf("load job %+v: want Aborted", st)
	}
	if st.FailedEntityCount != 2 || st.TotalEntityCount != 6 || st.ErrorMessage == "" {
		t.Errorf("counts total %d failed %d, message %q", st.TotalEntityCount, st.FailedEntityCount, st.ErrorMessage)
	}
	if st.DataSourceURL() != "" {
		t.Error("an aborted load names a data source")
	}
	log := readFailedOutput(t, e.client, st)
	failed := entities(t, log)
	if len(failed) != 2 || failed["v2-4"]["Latitude"] != "north" || failed["v2-5"]["Seats"] != "many" {
		t.Errorf("failed output entities %v", failed)
	}
	if !strings.Contains(string(log), "Latitude") || !strings.Contains(string(log), "Seats") {
		t.Errorf("failed output gives no reasons:\n%s", log)
	}
	// Nothing changed.
	if pub, _, prior := versionsOf(t, e, ds); pub != v1.ID || len(prior) != 0 {
		t.Errorf("after the aborted load: published %s prior %v", pub, prior)
	}
	if after := download(t, e, ds, ""); !bytes.Equal(after, before) {
		t.Error("the data source changed after an aborted load")
	}
	if _, err := e.client.OpenFailedOutput(ctx, v1); !errors.Is(err, sds.ErrNotFound) {
		t.Errorf("failed output of a completed job: %v", err)
	}
}

func TestLoadAbortedSchema(t *testing.T) {
	e := newLoadEnv(t, nil)
	for _, tc := range []struct{ name, from, to, want string }{
		{"rootNamedLikeDataSet", "ShopsData>", "Shops>", "root"},
		{"noEntityID", `<xs:field xpath="EntityID"/>`, `<xs:field xpath="ShopKey"/>`, "ShopKey"},
		{"badType", `type="xs:long"`, `type="xs:int"`, "xs:int"},
		{"notWellFormed", "</Shop>\n</ShopsData>", "</Shop>\n", "entities"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.ReplaceAll(shopsData(2, "s"), []byte(tc.from), []byte(tc.to))
			job, err := e.client.Load(context.Background(), sds.LoadRequest{
				Name: "Schema" + tc.name, Operation: sds.LoadComplete, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			st := waitJob(t, e.client, job)
			if st.Status != sds.StatusAborted || !strings.Contains(st.ErrorMessage, tc.want) {
				t.Fatalf("job %+v: want Aborted mentioning %q", st, tc.want)
			}
			if log := readFailedOutput(t, e.client, st); !strings.Contains(string(log), tc.want) {
				t.Errorf("error log %q", log)
			}
			all, err := e.client.DataSources(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range all {
				if d.Name == "Schema"+tc.name {
					t.Error("a data source was created")
				}
			}
		})
	}
}

// 5xx and 429 answers to the upload are returned, never repeated: the body is gone and the job
// may exist.
func TestLoadNotRepeated(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  error
	}{
		{http.StatusServiceUnavailable, sds.ErrUnavailable},
		{http.StatusInternalServerError, sds.ErrUnavailable},
		{http.StatusTooManyRequests, sds.ErrThrottled},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			e := newLoadEnv(t, func(c *sdsemu.Config) {
				f := sdsemu.Fault{Op: sdsemu.OpLoad, Kind: sdsemu.FaultStatus, Status: tc.status, Times: -1}
				if tc.status == http.StatusTooManyRequests {
					f.RetryAfter = 1
				}
				c.Faults = []sdsemu.Fault{f}
			})
			data := shopsData(2000, "f")
			_, err := e.client.Load(context.Background(), sds.LoadRequest{
				Name: "Faulty", Operation: sds.LoadComplete, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: 2000,
			})
			if !errors.Is(err, tc.class) {
				t.Fatalf("err = %v, want %v", err, tc.class)
			}
			noKeyIn(t, err)
			if n := e.requests(sdsemu.OpLoad); n != 1 {
				t.Fatalf("%d load requests, want exactly 1", n)
			}
		})
	}
}

// When no connection can be made the body is never read, so the attempt may be repeated.
func TestLoadDialFailureLeavesBodyUnread(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := sds.New("http://"+addr, masterKey, sds.WithRetry(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	data := shopsData(2, "d")
	body := &countingReader{r: bytes.NewReader(data)}
	_, err = c.Load(context.Background(), sds.LoadRequest{Name: "Dial", Operation: sds.LoadComplete, Body: body, Size: int64(len(data)), Entities: 2})
	if !errors.Is(err, sds.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	noKeyIn(t, err)
	// Only the encoding check peeked at the head of the data.
	if body.n > 1 {
		t.Errorf("the body was read %d times though no connection was made", body.n)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(2, "k")
	// The query key of FourthCoffeeSample belongs to the account: it may create a data source,
	// but not overwrite one whose master key it is not.
	other := e.client2(t, queryKey)
	_, err := other.Load(context.Background(), sds.LoadRequest{Name: coffee.Name, Operation: sds.LoadComplete, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: 2})
	if !errors.Is(err, sds.ErrUnauthorized) {
		t.Fatalf("overwrite with another key: %v, want ErrUnauthorized", err)
	}
	noKeyIn(t, err)
	stranger := e.client2(t, "not-a-key-of-any-account")
	_, err = stranger.Load(context.Background(), sds.LoadRequest{Name: "New", Operation: sds.LoadComplete, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: 2})
	if !errors.Is(err, sds.ErrUnauthorized) {
		t.Fatalf("unknown key: %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), "not-a-key-of-any-account") {
		t.Fatal("error shows the key")
	}
}

func TestJobStatusLinksStayOnHost(t *testing.T) {
	e := newLoadEnv(t, nil)
	if _, err := e.client.JobStatus(context.Background(), "https://elsewhere.example/REST/v1/dataflows/LoadDataSource/abc"); !errors.Is(err, sds.ErrInvalidInput) {
		t.Fatalf("foreign status link: %v", err)
	}
	job := &sds.Job{ID: "x", Status: sds.StatusAborted, Links: []sds.Link{{Role: "output", Name: "failed", URL: "https://elsewhere.example/REST/v1/x/output/failed"}}}
	if _, err := e.client.OpenFailedOutput(context.Background(), job); !errors.Is(err, sds.ErrInvalidInput) {
		t.Fatalf("foreign failed link: %v", err)
	}
	if e.requests("") != 0 {
		t.Fatal("a request was sent")
	}
}

func TestParseDataSourceURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sds.DataSource
		ok   bool
	}{
		{"https://spatial.virtualearth.net/REST/v1/data/20181f26d9e94c81acdf9496133d4f23/FourthCoffeeSample", sds.DataSource{AccessID: "20181f26d9e94c81acdf9496133d4f23", Name: "FourthCoffeeSample"}, true},
		// One documented response doubles a slash.
		{"https://spatial.virtualearth.net/REST/v1/data/0edf86ad7e7042345323cb25af67916aa//FourthCoffeeSample", sds.DataSource{AccessID: "0edf86ad7e7042345323cb25af67916aa", Name: "FourthCoffeeSample"}, true},
		{"https://spatial.virtualearth.net/REST/v1/data/abc", sds.DataSource{}, false},
		{"/REST/v1/data/abc/Name", sds.DataSource{}, false},
		{"https://spatial.virtualearth.net/REST/v1/data/a%2Fb/Name", sds.DataSource{}, false},
	} {
		got, err := sds.ParseDataSourceURL(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDataSourceURL(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// A data source created by a staged load has no published version until it is published.
func TestStageNewDataSource(t *testing.T) {
	e := newLoadEnv(t, nil)
	ctx := context.Background()
	data := shopsData(3, "s")
	st := load(t, e, "StagedOnly", sds.LoadCompleteStaging, data)
	ds, err := st.LoadedDataSource()
	if err != nil {
		t.Fatal(err)
	}
	pub, staged, prior := versionsOf(t, e, ds)
	if pub != "" || staged != st.ID || len(prior) != 0 {
		t.Fatalf("published %q staged %q prior %v", pub, staged, prior)
	}
	if _, err := e.client.CreateDownloadJob(ctx, ds, ""); !errors.Is(err, sds.ErrBadRequest) {
		t.Errorf("download of the unpublished version: %v, want ErrBadRequest", err)
	}
	job, err := e.client.PublishStaged(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if waitJob(t, e.client, job).Status != sds.StatusCompleted {
		t.Fatal("publish did not complete")
	}
	sameEntities(t, entities(t, download(t, e, ds, "")), entities(t, data))
}

func TestLoadPublic(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(2, "p")
	job, err := e.client.Load(context.Background(), sds.LoadRequest{Name: "Open", Operation: sds.LoadComplete, Public: true, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: 2})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := waitJob(t, e.client, job).LoadedDataSource()
	if err != nil {
		t.Fatal(err)
	}
	infos, err := e.client.DataSourceInfo(context.Background(), ds, false)
	if err != nil || len(infos) != 1 || !infos[0].IsPublic {
		t.Fatalf("information %+v, %v: want public", infos, err)
	}
}

// failingReader breaks after some bytes with an error that quotes the key.
type failingReader struct {
	r    io.Reader
	left int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("archive stream broke, key=" + masterKey)
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}

// A source that breaks mid-upload fails the load with its cause, key removed, and no job.
func TestLoadSourceBreaks(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := shopsData(500, "b")
	_, err := e.client.Load(context.Background(), sds.LoadRequest{
		Name: "Broken", Operation: sds.LoadComplete, Body: &failingReader{r: bytes.NewReader(data), left: len(data) / 2}, Size: int64(len(data)), Entities: 500,
	})
	if !errors.Is(err, sds.ErrUnavailable) || !strings.Contains(err.Error(), "archive stream broke") {
		t.Fatalf("err = %v, want ErrUnavailable with the cause", err)
	}
	noKeyIn(t, err)
	for _, j := range e.emu.Jobs() {
		if j.DataSourceName == "Broken" {
			t.Fatalf("a job was created: %+v", j)
		}
	}
}

// TestFailedOutputHasNoKey: an error log that echoes the request URL, key
// and all, is handed out with the key removed, like every service text.
func TestFailedOutputHasNoKey(t *testing.T) {
	e := newLoadEnv(t, nil)
	data := bytes.Replace(shopsData(6, "v2"), []byte("<Latitude>47.64</Latitude>"), []byte("<Latitude>north</Latitude>"), 1)
	st := load(t, e, "EchoShops", sds.LoadComplete, data)
	if st.Status != sds.StatusAborted {
		t.Fatalf("load job %+v: want Aborted", st)
	}
	if err := e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpLoadFailed, Kind: sdsemu.FaultEchoKey}); err != nil {
		t.Fatal(err)
	}
	log := readFailedOutput(t, e.client, st)
	if bytes.Contains(log, []byte(masterKey)) || !bytes.Contains(log, []byte("key=REDACTED")) {
		t.Errorf("failed output with the echoed request:\n%s", log)
	}
	if len(entities(t, bytes.TrimSpace(log))) != 1 {
		t.Errorf("the failed entity is not kept:\n%s", log)
	}
}

// readFailedOutput reads an aborted job's whole error log.
func readFailedOutput(t *testing.T, c *sds.Client, job *sds.Job) []byte {
	t.Helper()
	out, err := c.OpenFailedOutput(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	log, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// A load refused because the account has its maximum of data sources is
// ErrDataSourceLimit, not a wrong key; any other 403 keeps meaning one.
func TestLoadDataSourceLimit(t *testing.T) {
	data := shopsData(2, "l")
	load := func(e *env, name string) error {
		_, err := e.client.Load(context.Background(), sds.LoadRequest{Name: name, Operation: sds.LoadComplete, Body: bytes.NewReader(data), Size: int64(len(data)), Entities: 2})
		return err
	}
	t.Run("account full", func(t *testing.T) {
		e := newLoadEnv(t, func(c *sdsemu.Config) { c.MaxDataSources = 5 }) // the sample account holds 5
		err := load(e, "OneTooMany")
		if !errors.Is(err, sds.ErrDataSourceLimit) || errors.Is(err, sds.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrDataSourceLimit only", err)
		}
		if strings.Contains(err.Error(), "master key") || !strings.Contains(err.Error(), "maximum of 5 data sources") {
			t.Errorf("error %q: want the service's reason, no talk of keys", err)
		}
		noKeyIn(t, err)
		// Overwriting an existing data source takes no new slot.
		if err := load(e, coffee.Name); err != nil {
			t.Fatalf("overwrite in a full account: %v", err)
		}
	})
	for _, msg := range []string{"", "Access to this resource is forbidden.", "The key may not create data sources."} {
		t.Run("other 403 "+msg, func(t *testing.T) {
			e := newLoadEnv(t, func(c *sdsemu.Config) {
				c.Faults = []sdsemu.Fault{{Op: sdsemu.OpLoad, Kind: sdsemu.FaultStatus, Status: 403, Message: msg}}
			})
			if err := load(e, "Forbidden"); !errors.Is(err, sds.ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
		})
	}
}
