package sds_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
)

// completedJob creates a download job of ds and completes it.
func (e *env) completedJob(t *testing.T, c *sds.Client, ds sds.DataSource) *sds.Job {
	t.Helper()
	ctx := context.Background()
	job, err := c.CreateDownloadJob(ctx, ds, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.emu.CompleteJob(job.ID); err != nil {
		t.Fatal(err)
	}
	if job, err = c.DownloadJobStatus(ctx, job.StatusURL()); err != nil {
		t.Fatal(err)
	}
	return job
}

func readExport(t *testing.T, c *sds.Client, job *sds.Job) (*sds.Export, []byte, error) {
	t.Helper()
	exp, err := c.OpenExport(context.Background(), job)
	if err != nil {
		return nil, nil, err
	}
	defer exp.Body.Close()
	body, err := io.ReadAll(exp.Body)
	return exp, body, err
}

// TestPackedDeliveries: a download delivered as a ZIP archive holding one
// XML file, or gzipped with Content-Encoding, reads as the same XML as a
// plain one; the Delivery describes the bytes received.
func TestPackedDeliveries(t *testing.T) {
	e := newEnv(t, nil)
	_, plain, err := readExport(t, e.client, e.completedJob(t, e.client, coffee))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []sdsemu.FaultKind{sdsemu.FaultZip, sdsemu.FaultGzip} {
		t.Run(string(kind), func(t *testing.T) {
			job := e.completedJob(t, e.client, coffee)
			if err := e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: kind}); err != nil {
				t.Fatal(err)
			}
			exp, body, err := readExport(t, e.client, job)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != string(plain) {
				t.Errorf("unpacked %d bytes differ from the plain export's %d", len(body), len(plain))
			}
			d := exp.Delivery
			if d == nil || d.Encoding != string(kind) || d.Bytes <= 0 || d.Bytes >= int64(len(plain)) || len(d.SHA256) != 64 {
				t.Errorf("delivery %+v", d)
			}
			if exp.ContentLength != -1 {
				t.Errorf("ContentLength %d, want -1 for a packed delivery", exp.ContentLength)
			}
		})
	}
}

// TestLocationOnlyAnswer: a create answer whose status URL is only in the
// Location header is followed there.
func TestLocationOnlyAnswer(t *testing.T) {
	e := newEnv(t, func(c *sdsemu.Config) {
		c.Faults = []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultLocationOnly}}
	})
	job, err := e.client.CreateDownloadJob(context.Background(), coffee, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !strings.Contains(job.StatusURL(), job.ID) {
		t.Fatalf("status URL %q", job.StatusURL())
	}
	e.emu.CompleteJob(job.ID)
	got, err := e.client.DownloadJobStatus(context.Background(), job.StatusURL())
	if err != nil || got.Status != sds.StatusCompleted || got.ID != job.ID {
		t.Fatalf("status %+v, %v", got, err)
	}
	if len(e.emu.Faults()) != 0 {
		t.Error("the fault did not fire")
	}
}

// TestErrorDetailsOnlyAbort: an aborted job whose reason is only in the
// envelope's errorDetails reports that reason, redacted.
func TestErrorDetailsOnlyAbort(t *testing.T) {
	e := newEnv(t, func(c *sdsemu.Config) {
		c.Faults = []sdsemu.Fault{{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultErrorDetailsOnly}}
	})
	for _, xmlAnswers := range []bool{false, true} {
		c := e.client
		if xmlAnswers {
			c = e.client2(t, masterKey, sds.WithXML())
			e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultErrorDetailsOnly})
		}
		job, err := c.CreateDownloadJob(context.Background(), coffee, "")
		if err != nil {
			t.Fatal(err)
		}
		e.emu.AbortJob(job.ID, "Export failed for https://spatial.virtualearth.net/REST/v1/x?key="+masterKey)
		got, err := c.DownloadJobStatus(context.Background(), job.StatusURL())
		if err != nil {
			t.Fatal(err)
		}
		jerr := got.Err()
		if !errors.Is(jerr, sds.ErrJobAborted) || !strings.Contains(jerr.Error(), "Export failed") || strings.Contains(got.ErrorMessage, masterKey) {
			t.Errorf("xml %v: job error %v (message %q)", xmlAnswers, jerr, got.ErrorMessage)
		}
	}
	if len(e.emu.Faults()) != 0 {
		t.Error("a fault did not fire")
	}
}

// TestStalledBodies: a body that stops arriving fails after the idle
// timeout with ErrUnavailable, for an export and for a status answer.
func TestStalledBodies(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := newEnv(t, nil, sds.WithTimeout(idle), sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1}))
	job := e.completedJob(t, e.client, coffee)

	e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: sdsemu.FaultStall, Bytes: 5000})
	start := time.Now()
	_, body, err := readExport(t, e.client, job)
	took := time.Since(start)
	if !errors.Is(err, sds.ErrUnavailable) || !strings.Contains(err.Error(), "no data for") {
		t.Fatalf("stalled export: %v after %d bytes", err, len(body))
	}
	if took > 10*idle {
		t.Errorf("the stall was noticed after %s (idle timeout %s)", took, idle)
	}
	t.Logf("stalled export: error after %s with SDS timeout %s: %v", took.Round(time.Millisecond), idle, err)

	e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultStall, Bytes: 20})
	start = time.Now()
	_, err = e.client.DownloadJobStatus(context.Background(), job.StatusURL())
	if !errors.Is(err, sds.ErrUnavailable) || time.Since(start) > 10*idle {
		t.Fatalf("stalled status answer: %v after %s", err, time.Since(start))
	}
	noKeyIn(t, err)
}

// TestStalledReadsEndBeforeTheDeadline: a status answer that stalls or
// trickles ends with ErrUnavailable before the caller's deadline, even when
// the client's timeout is longer than the time left: the caller (a Lambda
// function) can still report it instead of being stopped by its deadline.
func TestStalledReadsEndBeforeTheDeadline(t *testing.T) {
	const left = 2500 * time.Millisecond // the caller's deadline
	e := newLoadEnv(t, nil, sds.WithTimeout(sds.DefaultTimeout), sds.WithRetry(sds.DefaultRetry))
	download, err := e.client.CreateDownloadJob(context.Background(), coffee, "")
	if err != nil {
		t.Fatal(err)
	}
	lj, err := e.client.Load(context.Background(), sds.LoadRequest{Name: "Stalled", Operation: sds.LoadComplete,
		Body: bytes.NewReader(shopsData(2, "s")), Size: int64(len(shopsData(2, "s"))), Entities: 2})
	if err != nil {
		t.Fatal(err)
	}
	// A status answer that sends a byte every 200 ms is never idle for
	// the client's timeout, and would never end.
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		for r.Context().Err() == nil {
			w.Write([]byte(" "))
			http.NewResponseController(w).Flush()
			time.Sleep(200 * time.Millisecond)
		}
	}))
	defer trickle.Close()
	trickling, err := sds.New(trickle.URL, masterKey)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		fault *sdsemu.Fault
		read  func(context.Context) error
	}{
		{"download status stalls", &sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultStall, Bytes: 20, Times: -1},
			func(ctx context.Context) error {
				_, err := e.client.DownloadJobStatus(ctx, download.StatusURL())
				return err
			}},
		{"load status stalls", &sdsemu.Fault{Op: sdsemu.OpLoadStatus, Kind: sdsemu.FaultStall, Bytes: 20, Times: -1},
			func(ctx context.Context) error { _, err := e.client.JobStatus(ctx, lj.StatusURL()); return err }},
		{"status headers never come", &sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultLatency, Latency: time.Minute, Times: -1},
			func(ctx context.Context) error {
				_, err := e.client.DownloadJobStatus(ctx, download.StatusURL())
				return err
			}},
		{"status answer trickles", nil,
			func(ctx context.Context) error { _, err := trickling.ListJobs(ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.emu.ClearFaults()
			if tc.fault != nil {
				if err := e.emu.AddFault(*tc.fault); err != nil {
					t.Fatal(err)
				}
			}
			defer e.emu.ClearFaults()
			ctx, cancel := context.WithTimeout(context.Background(), left)
			defer cancel()
			start := time.Now()
			err := tc.read(ctx)
			took := time.Since(start)
			if !errors.Is(err, sds.ErrUnavailable) {
				t.Fatalf("err %v, want ErrUnavailable", err)
			}
			if ctx.Err() != nil {
				t.Fatalf("the read ended with the caller's deadline (%s), not before it: %v", took.Round(time.Millisecond), err)
			}
			noKeyIn(t, err)
			t.Logf("%s after %s (deadline %s, SDS timeout %s): %v", tc.name, took.Round(time.Millisecond), left, sds.DefaultTimeout, err)
		})
	}
}

// TestServiceTextRedacted: a key the service echoes in a job's error
// message, a job list entry or a link never reaches the caller.
func TestServiceTextRedacted(t *testing.T) {
	e := newEnv(t, nil)
	job, err := e.client.CreateDownloadJob(context.Background(), coffee, "")
	if err != nil {
		t.Fatal(err)
	}
	e.emu.AbortJob(job.ID, "GET /REST/v1/x?key="+masterKey+" failed; key="+masterKey)
	got, err := e.client.DownloadJobStatus(context.Background(), job.StatusURL())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.ErrorMessage, masterKey) || !strings.Contains(got.ErrorMessage, "REDACTED") {
		t.Errorf("error message %q", got.ErrorMessage)
	}
	if err := e.client.DeleteDataSource(context.Background(), sds.DataSource{AccessID: accessID, Name: "FourthCoffeeRoasteries"}, false); err != nil {
		t.Fatal(err)
	}
	for _, j := range e.emu.Jobs() {
		if j.Kind == sdsemu.JobDelete {
			e.emu.AbortJob(j.ID, "delete refused for key "+masterKey)
		}
	}
	jobs, err := e.client.ListJobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if strings.Contains(j.ErrorMessage+j.Name+j.Description, masterKey) {
			t.Errorf("listed job %+v shows the key", j)
		}
	}
}

// TestShapesExport: the sample account's Stores-2019 export is what
// Microsoft's tools write for a data source with geography.
func TestShapesExport(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client
	stores := sds.DataSource{AccessID: accessID, Name: "Stores-2019"}
	job := e.completedJob(t, c, stores)
	_, body, err := readExport(t, c, job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), "\ufeff<?xml") {
		t.Errorf("no byte order mark: %q", body[:20])
	}
	// A DataSet, with the typed and geography columns and every WKT type.
	sum, err := dataset.Verify(bytes.NewReader(body), "Stores-2019")
	if err != nil {
		t.Fatalf("not a DataSet: %v", err)
	}
	if sum.Entities != job.TotalEntityCount {
		t.Errorf("%d entities, job %d", sum.Entities, job.TotalEntityCount)
	}
	if root := strings.TrimSpace(string(body[bytes.LastIndex(body, []byte("</")):])); root != "</Stores-2019Data>" {
		t.Errorf("root ends with %s", root)
	}
	s := string(body)
	for _, want := range []string{`type="xs:anyType"`, `msdata:DateTimeMode="Utc" type="xs:dateTime"`, `type="xs:double"`, `type="xs:long"`, `type="xs:boolean"`,
		"<Shape>POINT (", "<Shape>LINESTRING (", "<Shape>POLYGON ((", "), (", "<Shape>MULTIPOINT (", "<Shape>MULTILINESTRING (",
		"<Shape>MULTIPOLYGON (((", "<Shape>GEOMETRYCOLLECTION (", "<DeliveryArea>POLYGON", "0000000Z</Opened>", "Cañon City"} {
		if !strings.Contains(s, want) {
			t.Errorf("export lacks %q", want)
		}
	}
	if n, phones := strings.Count(s, "<Stores>"), strings.Count(s, "<Phone>"); n != int(job.TotalEntityCount) || phones == n || phones == 0 {
		t.Errorf("%d entities (job %d), %d with a phone: want some values omitted", n, job.TotalEntityCount, phones)
	}
}

// cannedServer answers every request with body, as contentType.
func cannedServer(t *testing.T, contentType, body string, header map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestAnswersDecodedAsAsked: an XML body where JSON was asked for is
// refused without being parsed.
func TestAnswersDecodedAsAsked(t *testing.T) {
	xmlJob := `<Response xmlns="http://schemas.microsoft.com/search/local/ws/rest/v1"><StatusCode>201</StatusCode><ResourceSets><ResourceSet><Resources><DataflowJob><Id>j1</Id><Status>Pending</Status></DataflowJob></Resources></ResourceSet></ResourceSets></Response>`
	srv := cannedServer(t, "application/xml", xmlJob, nil)
	c, err := sds.New(srv.URL, masterKey, sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DownloadJobStatus(context.Background(), srv.URL+"/REST/v1/dataflows/x")
	if !errors.Is(err, sds.ErrDecode) || !strings.Contains(err.Error(), "JSON was asked for") {
		t.Fatalf("err %v", err)
	}
	cx, _ := sds.New(srv.URL, masterKey, sds.WithXML())
	if job, err := cx.DownloadJobStatus(context.Background(), srv.URL+"/REST/v1/dataflows/x"); err != nil || job.ID != "j1" {
		t.Fatalf("XML asked for: %v, %v", job, err)
	}
}

// TestLinkWithKeyInPathDropped: a link that carries the key in its path is
// neither followed nor handed out; the Location header is used instead.
func TestLinkWithKeyInPathDropped(t *testing.T) {
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `{"authenticationResultCode":"ValidCredentials","statusCode":201,"resourceSets":[{"estimatedTotal":1,"resources":[{"__type":"DataflowJob:x","id":"j1","status":"Pending",` +
			`"links":[{"role":"self","url":"` + srvURL + `/REST/v1/dataflows/` + masterKey + `/j1"}]}]}]}`
		if r.URL.Query().Get("loc") == "" {
			w.Header().Set("Location", "/REST/v1/dataflows/DataSourceDownload/a/n/j1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	srvURL = srv.URL
	c, _ := sds.New(srv.URL, masterKey)
	job, err := c.CreateDownloadJob(context.Background(), coffee, "")
	if err != nil {
		t.Fatal(err)
	}
	if u := job.StatusURL(); strings.Contains(u, masterKey) || u != srv.URL+"/REST/v1/dataflows/DataSourceDownload/a/n/j1" {
		t.Errorf("status URL %q", u)
	}
}

// TestStalledErrorBody: an error answer whose body stalls is reported
// after the idle timeout, with its status.
func TestStalledErrorBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"errorDetails":["busy`)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, _ := sds.New(srv.URL, masterKey, sds.WithTimeout(200*time.Millisecond), sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1}))
	start := time.Now()
	_, err := c.DownloadJobStatus(context.Background(), srv.URL+"/REST/v1/dataflows/x")
	if !errors.Is(err, sds.ErrUnavailable) || !strings.Contains(err.Error(), "503") || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
}
