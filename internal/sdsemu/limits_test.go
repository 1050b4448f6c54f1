package sdsemu

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConcurrentJobLimit(t *testing.T) {
	e := newEnv(t, nil) // Manual: jobs stay in process
	// Every kind of job counts.
	for i := range 8 {
		e.createDownload(fcAccess, fcName, fcMaster, "jobId="+[]string{"", fcStaged}[i%2])
	}
	mustStatus(t, e.get("/REST/v1/data/"+trAccess+"/"+trName+"/$updateDataSource?setPublic=1&key="+trMaster), http.StatusCreated)
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+ppName+"?key="+fcMaster), http.StatusAccepted)

	r := e.get(createPath(fcAccess, fcName, fcMaster))
	mustStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After %q, want 60 when no job finishes by itself", r.header.Get("Retry-After"))
	}
	if d := parseJSON(t, r.body).get("errorDetails", 0).str(); !strings.Contains(d, "10 jobs in process") {
		t.Errorf("error detail %q does not name the limit", d)
	}
	r = e.get(createPath(fcAccess, fcName, fcMaster, "o=xml"))
	mustStatus(t, r, http.StatusTooManyRequests)
	if !strings.Contains(parseXML(t, r.body).child("ErrorDetails", "string").value(), "10 jobs in process") {
		t.Errorf("XML error: %s", r.body)
	}
	// Another account is not affected.
	mustStatus(t, e.get(createPath(fabAccess, fabName, fabMaster)), http.StatusCreated)

	if err := e.emu.CompleteJob(e.emu.Jobs()[0].ID); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusTooManyRequests)
}

func TestConcurrentLimitRetryAfter(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Manual = false
		c.DownloadJobDuration = 30 * time.Second
		c.MaxConcurrentJobs = 2 // a basic account
	})
	e.createDownload(fcAccess, fcName, fcMaster)
	e.clock.Advance(10 * time.Second)
	e.createDownload(fcAccess, fcName, fcMaster)
	e.clock.Advance(500 * time.Millisecond)
	r := e.get(createPath(fcAccess, fcName, fcMaster))
	mustStatus(t, r, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "20" { // the first job is due in 19.5 s
		t.Errorf("Retry-After %q, want 20", got)
	}
	e.clock.Advance(20 * time.Second)
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
}

func TestDailyJobLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.JobDuration = 0; c.DownloadJobDuration = 0 })
	for i := range 50 {
		mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
		if i == 0 {
			e.clock.Advance(time.Hour)
		} else {
			e.clock.Advance(time.Minute)
		}
	}
	// 50 jobs in the last 24 hours: the first leaves the window in 24h - (1h + 49 min).
	for _, path := range []string{
		createPath(fcAccess, fcName, fcMaster),
		"/REST/v1/data/" + fcAccess + "/" + fcName + "/$updateDataSource?setPublic=1&key=" + fcMaster,
	} {
		r := e.get(path)
		mustStatus(t, r, http.StatusTooManyRequests)
		if got, want := r.header.Get("Retry-After"), "79860"; got != want {
			t.Errorf("Retry-After %s, want %s", got, want)
		}
		if d := parseJSON(t, r.body).get("errorDetails", 0).str(); !strings.Contains(d, "50 jobs in a 24 hour period") {
			t.Errorf("error detail %q does not name the limit", d)
		}
	}
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster), http.StatusTooManyRequests)

	e.clock.Advance(79860 * time.Second)
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusTooManyRequests)
}

func TestDataSourceLimitInConfig(t *testing.T) {
	cfg, err := LoadFixture("testdata/fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxDataSources = 2 // Contoso has 3
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "limit is 2") {
		t.Errorf("New with too many data sources: %v", err)
	}
}
