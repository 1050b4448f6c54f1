package sds_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
	"github.com/sdsops/sdsops/internal/sds"
	"github.com/sdsops/sdsops/internal/sdsemu"
	"github.com/sdsops/sdsops/internal/testenv"
)

// Identities from the emulator's embedded sample account.
const (
	masterKey = "sdsemu-master-key-fourthcoffee"
	queryKey  = "sdsemu-query-key-fourthcoffeesample"
	accessID  = "20181f26d9e94c81acdf9496133d4f23"
)

var coffee = sds.DataSource{AccessID: accessID, Name: "FourthCoffeeSample"}

// fastRetry keeps retry tests quick while still exercising the backoff.
var fastRetry = sds.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxRetryAfter: 2 * time.Second}

type env struct {
	emu    *sdsemu.Server
	srv    *httptest.Server
	client *sds.Client
}

// newEnv starts the emulator over real HTTP with jobs frozen until told.
func newEnv(t *testing.T, tweak func(*sdsemu.Config), opts ...sds.Option) *env {
	t.Helper()
	cfg := sdsemu.DefaultConfig()
	cfg.Manual = true
	if tweak != nil {
		tweak(&cfg)
	}
	emu, srv := testenv.Emulator(t, cfg)
	c, err := sds.New(srv.URL, masterKey, append([]sds.Option{sds.WithRetry(fastRetry)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, srv: srv, client: c}
}

func (e *env) client2(t *testing.T, key string, opts ...sds.Option) *sds.Client {
	t.Helper()
	c, err := sds.New(e.srv.URL, key, append([]sds.Option{sds.WithRetry(fastRetry)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) requests(op string) int {
	n := 0
	for _, r := range e.emu.Requests() {
		if op == "" || r.Operation == op {
			n++
		}
	}
	return n
}

// noKeyIn fails the test when an error text shows the key.
func noKeyIn(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), masterKey) || strings.Contains(err.Error(), queryKey)) {
		t.Fatalf("error text leaks a key: %v", err)
	}
}

func TestDownloadFlow(t *testing.T) {
	for _, format := range []string{"json", "xml"} {
		t.Run(format, func(t *testing.T) {
			var opts []sds.Option
			if format == "xml" {
				opts = append(opts, sds.WithXML())
			}
			e := newEnv(t, nil, opts...)
			ctx := context.Background()

			job, err := e.client.CreateDownloadJob(ctx, coffee, "")
			if err != nil {
				t.Fatal(err)
			}
			if job.Status != sds.StatusPending || job.ID == "" || job.CreatedDate == nil {
				t.Fatalf("new job = %+v, want Pending with id and created date", job)
			}
			if !strings.HasPrefix(job.StatusURL(), e.srv.URL+"/REST/v1/") || strings.Contains(job.StatusURL(), "key=") {
				t.Fatalf("status URL %q: want the emulator's, without a key", job.StatusURL())
			}
			st, err := e.client.DownloadJobStatus(ctx, job.StatusURL())
			if err != nil || st.Status != sds.StatusPending || st.DownloadURL() != "" {
				t.Fatalf("status while pending = %+v, %v", st, err)
			}
			if _, err := e.client.OpenExport(ctx, st); err == nil {
				t.Fatal("opening a pending job's export succeeded")
			}

			if err := e.emu.CompleteJob(job.ID); err != nil {
				t.Fatal(err)
			}
			st, err = e.client.DownloadJobStatus(ctx, job.StatusURL())
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != sds.StatusCompleted || st.ID != job.ID || st.TotalEntityCount != 350 || st.DownloadURL() == "" || st.CompletedDate == nil {
				t.Fatalf("completed status = %+v", st)
			}
			// The same job, by the URL built from its ids.
			u, err := e.client.StatusURLFor(coffee, job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if byID, err := e.client.DownloadJobStatus(ctx, u); err != nil || byID.ID != job.ID || byID.Status != sds.StatusCompleted {
				t.Fatalf("status by ids = %+v, %v", byID, err)
			}

			exp, err := e.client.OpenExport(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Body.Close()
			if exp.ContentLength <= 0 || !strings.Contains(exp.ContentType, "xml") {
				t.Errorf("export length %d type %q", exp.ContentLength, exp.ContentType)
			}
			sum, err := dataset.Verify(exp.Body, "")
			if err != nil {
				t.Fatal(err)
			}
			if sum.Entities != st.TotalEntityCount || sum.Schema.EntityType != "FourthCoffeeShops" || sum.Schema.DataSetName != "FourthCoffeeSample" {
				t.Errorf("export summary %+v, want %d FourthCoffeeShops", sum, st.TotalEntityCount)
			}
		})
	}
}

func TestDownloadPriorVersion(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	versions, err := e.client.DataSourceInfo(ctx, coffee, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 4 {
		t.Fatalf("got %d versions, want published + staged + 2 prior", len(versions))
	}
	var prior sds.DataSourceInfo
	for _, v := range versions {
		if !v.IsActive && !v.IsStaging {
			prior = v
			break
		}
	}
	if prior.JobID == "" {
		t.Fatalf("no prior version with a job id in %+v", versions)
	}
	job, err := e.client.CreateDownloadJob(ctx, coffee, prior.JobID)
	if err != nil {
		t.Fatal(err)
	}
	e.emu.CompleteJob(job.ID)
	st, err := e.client.DownloadJobStatus(ctx, job.StatusURL())
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalEntityCount != 341 {
		t.Errorf("prior version has %d entities, want 341", st.TotalEntityCount)
	}
	if _, err := e.client.CreateDownloadJob(ctx, coffee, "0123456789abcdef0123456789abcdef"); !errors.Is(err, sds.ErrBadRequest) {
		t.Errorf("unknown version: %v, want ErrBadRequest", err)
	}
}

func TestSetPublicAndJobList(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	private := sds.DataSource{AccessID: accessID, Name: "FourthCoffeeRoasteries"}
	job, err := e.client.SetPublic(ctx, private, true)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != sds.StatusCreated || job.Type != "DataServiceJob" {
		t.Fatalf("set public job = %+v", job)
	}
	jobs, err := e.client.ListJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range jobs {
		if j.ID == job.ID {
			found = true
			if j.Description != "DataSourceAccess" || j.Name != private.Name || j.Status != sds.StatusPending {
				t.Errorf("listed job = %+v", j)
			}
		}
	}
	if !found {
		t.Fatalf("set-public job %s not in the job list %+v", job.ID, jobs)
	}
	e.emu.CompleteJob(job.ID)
	info, err := e.client.DataSourceInfo(ctx, private, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(info) != 1 || !info[0].IsPublic || info[0].AccessID != accessID {
		t.Errorf("after set public: %+v", info)
	}
	all, err := e.client.DataSources(ctx)
	if err != nil || len(all) < 2 {
		t.Fatalf("DataSources = %+v, %v", all, err)
	}
}

func TestDeleteDataSource(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	// The staged version only.
	if err := e.client.DeleteDataSource(ctx, coffee, true); err != nil {
		t.Fatal(err)
	}
	completeAll(t, e)
	versions, err := e.client.DataSourceInfo(ctx, coffee, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if v.IsStaging {
			t.Errorf("staged version still listed after its deletion: %+v", v)
		}
	}
	if err := e.client.DeleteDataSource(ctx, coffee, true); !errors.Is(err, sds.ErrNotFound) {
		t.Errorf("deleting a missing staged version: %v, want ErrNotFound", err)
	}

	// The whole data source.
	if err := e.client.DeleteDataSource(ctx, coffee, false); err != nil {
		t.Fatal(err)
	}
	jobs, _ := e.client.ListJobs(ctx)
	if len(jobs) == 0 || jobs[0].Description != "DataSourceDelete" || jobs[0].Name != coffee.Name || jobs[0].Status != sds.StatusPending {
		t.Fatalf("job list after delete = %+v, want a pending DataSourceDelete first", jobs)
	}
	if _, err := e.client.DataSourceInfo(ctx, coffee, false); err != nil {
		t.Fatalf("data source gone before its delete job completed: %v", err)
	}
	completeAll(t, e)
	if _, err := e.client.DataSourceInfo(ctx, coffee, false); !errors.Is(err, sds.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
	if _, err := e.client.CreateDownloadJob(ctx, coffee, ""); !errors.Is(err, sds.ErrNotFound) {
		t.Errorf("download after delete: %v, want ErrNotFound", err)
	}
}

func completeAll(t *testing.T, e *env) {
	t.Helper()
	for _, j := range e.emu.Jobs() {
		if j.Status == "Pending" {
			if err := e.emu.CompleteJob(j.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestErrorClasses(t *testing.T) {
	ctx := context.Background()
	other := sds.DataSource{AccessID: accessID, Name: "NoSuchSource"}
	tests := []struct {
		name   string
		faults []sdsemu.Fault
		key    string
		call   func(c *sds.Client) error
		want   error
		msg    string // expected in the error text
	}{
		{"unknown data source", nil, masterKey, func(c *sds.Client) error { _, err := c.CreateDownloadJob(ctx, other, ""); return err }, sds.ErrNotFound, ""},
		{"query key refused", nil, queryKey, func(c *sds.Client) error { _, err := c.CreateDownloadJob(ctx, coffee, ""); return err }, sds.ErrUnauthorized, "master key"},
		{"unknown key", nil, "not-a-key-of-anyone", func(c *sds.Client) error { return c.DeleteDataSource(ctx, coffee, false) }, sds.ErrUnauthorized, ""},
		{"wrong master key", nil, "sdsemu-master-key-transit", func(c *sds.Client) error { _, err := c.SetPublic(ctx, coffee, false); return err }, sds.ErrUnauthorized, ""},
		{"bad request with message", []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 400, Message: "The jobId parameter is not valid."}}, masterKey,
			func(c *sds.Client) error { _, err := c.CreateDownloadJob(ctx, coffee, ""); return err }, sds.ErrBadRequest, "jobId parameter is not valid"},
		{"500 on every delete", []sdsemu.Fault{{Op: sdsemu.OpDelete, Kind: sdsemu.FaultStatus, Status: 500, Times: -1}}, masterKey,
			func(c *sds.Client) error { return c.DeleteDataSource(ctx, coffee, false) }, sds.ErrUnavailable, ""},
		{"503 forever on job list", []sdsemu.Fault{{Op: sdsemu.OpListJobs, Kind: sdsemu.FaultStatus, Status: 503, Times: -1}}, masterKey,
			func(c *sds.Client) error { _, err := c.ListJobs(ctx); return err }, sds.ErrUnavailable, ""},
		{"429 beyond MaxRetryAfter", []sdsemu.Fault{{Op: sdsemu.OpSetPublic, Kind: sdsemu.FaultStatus, Status: 429, RetryAfter: 120, Times: -1}}, masterKey,
			func(c *sds.Client) error { _, err := c.SetPublic(ctx, coffee, true); return err }, sds.ErrThrottled, ""},
		{"503 with Retry-After is throttling", []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 503, RetryAfter: 60, Times: -1}}, masterKey,
			func(c *sds.Client) error { _, err := c.CreateDownloadJob(ctx, coffee, ""); return err }, sds.ErrThrottled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *sdsemu.Config) { c.Faults = tt.faults })
			err := tt.call(e.client2(t, tt.key))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not carry %q", err, tt.msg)
			}
			var se *sds.Error
			if !errors.As(err, &se) || se.StatusCode == 0 {
				t.Errorf("error has no HTTP status: %#v", err)
			}
			noKeyIn(t, err)
		})
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	t.Run("503 three times then status succeeds", func(t *testing.T) {
		e := newEnv(t, nil)
		job, err := e.client.CreateDownloadJob(ctx, coffee, "")
		if err != nil {
			t.Fatal(err)
		}
		e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadStatus, Kind: sdsemu.FaultStatus, Status: 503, Times: 3})
		e.emu.ResetRequests()
		if _, err := e.client.DownloadJobStatus(ctx, job.StatusURL()); err != nil {
			t.Fatal(err)
		}
		if n := e.requests(sdsemu.OpDownloadStatus); n != 4 {
			t.Errorf("%d status requests, want 4", n)
		}
	})
	t.Run("503 twice on delete and set public, then success", func(t *testing.T) {
		e := newEnv(t, func(c *sdsemu.Config) {
			c.Faults = []sdsemu.Fault{
				{Op: sdsemu.OpDelete, Kind: sdsemu.FaultStatus, Status: 503, Times: 2},
				{Op: sdsemu.OpSetPublic, Kind: sdsemu.FaultStatus, Status: 503, Times: 2},
			}
		})
		if err := e.client.DeleteDataSource(ctx, coffee, true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.SetPublic(ctx, coffee, false); err != nil {
			t.Fatal(err)
		}
		if d, s := e.requests(sdsemu.OpDelete), e.requests(sdsemu.OpSetPublic); d != 3 || s != 3 {
			t.Errorf("%d delete and %d set-public requests, want 3 each", d, s)
		}
	})
	t.Run("503 on create is not repeated", func(t *testing.T) {
		e := newEnv(t, func(c *sdsemu.Config) {
			c.Faults = []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 503, Times: 1}}
		})
		if _, err := e.client.CreateDownloadJob(ctx, coffee, ""); !errors.Is(err, sds.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if n := e.requests(sdsemu.OpCreateDownload); n != 1 {
			t.Errorf("%d create requests, want 1: a create may have taken effect", n)
		}
	})
	t.Run("429 with Retry-After is waited out, also for create", func(t *testing.T) {
		e := newEnv(t, func(c *sdsemu.Config) {
			c.Faults = []sdsemu.Fault{{Op: sdsemu.OpCreateDownload, Kind: sdsemu.FaultStatus, Status: 429, RetryAfter: 1, Times: 1}}
		})
		start := time.Now()
		if _, err := e.client.CreateDownloadJob(ctx, coffee, ""); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("retried after %v, before the 1 s Retry-After", waited)
		}
		if n := e.requests(sdsemu.OpCreateDownload); n != 2 {
			t.Errorf("%d create requests, want 2", n)
		}
	})
	t.Run("latency above the timeout", func(t *testing.T) {
		e := newEnv(t, func(c *sdsemu.Config) {
			c.Faults = []sdsemu.Fault{{Op: sdsemu.OpListJobs, Kind: sdsemu.FaultLatency, Latency: 300 * time.Millisecond, Times: -1}}
		}, sds.WithTimeout(50*time.Millisecond), sds.WithRetry(sds.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
		_, err := e.client.ListJobs(ctx)
		if !errors.Is(err, sds.ErrUnavailable) || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("err = %v, want ErrUnavailable timeout", err)
		}
	})
	t.Run("job limit", func(t *testing.T) {
		e := newEnv(t, func(c *sdsemu.Config) { c.MaxConcurrentJobs = 2 }, sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1}))
		for i := range 2 {
			if _, err := e.client.CreateDownloadJob(ctx, coffee, ""); err != nil {
				t.Fatalf("job %d: %v", i+1, err)
			}
		}
		_, err := e.client.CreateDownloadJob(ctx, coffee, "")
		var se *sds.Error
		if !errors.Is(err, sds.ErrThrottled) || !errors.As(err, &se) || se.RetryAfter <= 0 {
			t.Fatalf("third job: %v, want ErrThrottled with RetryAfter", err)
		}
	})
}

func TestAbortedJob(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	job, err := e.client.CreateDownloadJob(ctx, coffee, "")
	if err != nil {
		t.Fatal(err)
	}
	e.emu.AbortJob(job.ID, "The data source could not be read.")
	st, err := e.client.DownloadJobStatus(ctx, job.StatusURL())
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != sds.StatusAborted || st.ErrorMessage != "The data source could not be read." {
		t.Fatalf("aborted status = %+v", st)
	}
	if err := st.Err(); !errors.Is(err, sds.ErrJobAborted) || !strings.Contains(err.Error(), "could not be read") {
		t.Errorf("Err() = %v", err)
	}
	if _, err := e.client.OpenExport(ctx, st); !errors.Is(err, sds.ErrJobAborted) {
		t.Errorf("OpenExport of aborted job: %v", err)
	}
}

func TestBrokenExports(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		kind      sdsemu.FaultKind
		bytes     int64
		readErr   bool // reading the body itself fails
		structErr bool // the body reads but is not a complete DataSet
	}{
		{sdsemu.FaultTruncate, 4000, true, false},
		{sdsemu.FaultReset, 4000, true, false},
		{sdsemu.FaultOverlong, 4000, false, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			e := newEnv(t, nil)
			job, err := e.client.CreateDownloadJob(ctx, coffee, "")
			if err != nil {
				t.Fatal(err)
			}
			e.emu.CompleteJob(job.ID)
			st, err := e.client.DownloadJobStatus(ctx, job.StatusURL())
			if err != nil {
				t.Fatal(err)
			}
			e.emu.AddFault(sdsemu.Fault{Op: sdsemu.OpDownloadData, Kind: tt.kind, Bytes: tt.bytes})
			exp, err := e.client.OpenExport(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Body.Close()
			body, err := io.ReadAll(exp.Body)
			if tt.readErr {
				if !errors.Is(err, sds.ErrUnavailable) {
					t.Fatalf("read err = %v after %d bytes, want ErrUnavailable", err, len(body))
				}
				noKeyIn(t, err)
				return
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if _, err := dataset.Verify(strings.NewReader(string(body)), ""); err == nil && tt.structErr {
				t.Fatalf("a %d-byte cut export passed the DataSet check", len(body))
			}
		})
	}
}

func TestInvalidInputSendsNothing(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, name := range []string{"", "../x", "a/b", "a?b", "a#b", "%2F", "a b", "x\x00", "\xff\xfe", strings.Repeat("n", 51)} {
		ds := sds.DataSource{AccessID: accessID, Name: name}
		if _, err := e.client.CreateDownloadJob(ctx, ds, ""); !errors.Is(err, sds.ErrInvalidInput) || !strings.Contains(err.Error(), "dataSourceName") {
			t.Errorf("name %q: %v", name, err)
		}
		if err := e.client.DeleteDataSource(ctx, ds, false); !errors.Is(err, sds.ErrInvalidInput) {
			t.Errorf("delete %q: %v", name, err)
		}
	}
	if _, err := e.client.CreateDownloadJob(ctx, coffee, "bad/job"); !errors.Is(err, sds.ErrInvalidInput) {
		t.Errorf("bad jobId: %v", err)
	}
	if n := e.requests(""); n != 0 {
		t.Errorf("%d requests reached the service", n)
	}
}

// A link that points anywhere but the configured host is refused before a
// connection is made, and so is a redirect there: the key goes nowhere else.
func TestKeyStaysOnConfiguredHost(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	var hits atomic.Int32
	var gotKey atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if strings.Contains(r.URL.RawQuery, masterKey) {
			gotKey.Store(true)
		}
	}))
	defer elsewhere.Close()
	other := strings.Replace(elsewhere.URL, "127.0.0.1", "127.0.0.2", 1)

	for _, link := range []string{
		elsewhere.URL + "/REST/v1/dataflows/DataSourceDownload/x",
		other + "/REST/v1/dataflows/DataSourceDownload/x",
		strings.Replace(e.srv.URL, "http://", "https://", 1) + "/REST/v1/x",
	} {
		if _, err := e.client.DownloadJobStatus(ctx, link); !errors.Is(err, sds.ErrInvalidInput) {
			t.Errorf("status link %s: %v, want ErrInvalidInput", link, err)
		}
		if _, err := e.client.OpenExportURL(ctx, link); !errors.Is(err, sds.ErrInvalidInput) {
			t.Errorf("download link %s: %v, want ErrInvalidInput", link, err)
		}
	}

	// A service that redirects elsewhere.
	redirector := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/REST/v1/steal", http.StatusFound))
	defer redirector.Close()
	c, _ := sds.New(redirector.URL, masterKey, sds.WithRetry(sds.RetryPolicy{MaxAttempts: 1}))
	_, err := c.ListJobs(ctx)
	if err == nil {
		t.Error("redirect to another host was followed")
	}
	noKeyIn(t, err)
	if hits.Load() != 0 || gotKey.Load() {
		t.Errorf("the other host got %d requests (key seen: %v)", hits.Load(), gotKey.Load())
	}
}

// The emulator logs what it receives with keys redacted; the client never
// sends a key to a route other than the one asked.
func TestRequestLogRedactsKey(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.client.ListJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := e.emu.Requests()
	if len(reqs) != 1 || reqs[0].KeyClass != sdsemu.KeyMaster || strings.Contains(reqs[0].Query, masterKey) {
		t.Errorf("request log = %+v", reqs)
	}
}

// The docs' own link forms name only the data source: status and output
// links of that form are followed as given.
func TestDocumentedShortLinks(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	job, err := e.client.CreateDownloadJob(ctx, coffee, "")
	if err != nil {
		t.Fatal(err)
	}
	e.emu.CompleteJob(job.ID)
	short := e.srv.URL + "/REST/v1/dataflows/DataSourceDownload/FourthCoffeeSample"
	st, err := e.client.DownloadJobStatus(ctx, short)
	if err != nil || st.ID != job.ID || st.Status != sds.StatusCompleted {
		t.Fatalf("short status link: %+v, %v", st, err)
	}
	exp, err := e.client.OpenExportURL(ctx, short+"/output/succeeded")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	sum, err := dataset.Verify(exp.Body, "")
	if err != nil || sum.Entities != 350 {
		t.Fatalf("short output link: %+v, %v", sum, err)
	}
}
