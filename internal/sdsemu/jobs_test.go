package sdsemu

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdsops/sdsops/internal/dataset"
)

// status polls a download job through its self link.
func (e *env) status(self string, extra ...string) *jnode {
	e.t.Helper()
	r := e.get(e.localPath(self) + "?key=" + fcMaster + strings.Join(append([]string{""}, extra...), "&"))
	mustStatus(e.t, r, http.StatusOK)
	return jsonResource(e.t, r.body, 0)
}

func countEntities(body []byte, entityType string) int {
	return bytes.Count(body, []byte("<"+entityType+">"))
}

func TestDownloadLifecycle(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Manual = false
		c.DownloadJobDuration = 10 * time.Second
	})
	res := e.createDownload(fcAccess, fcName, fcMaster)
	self := linkURL(t, res, "self", "")
	id := res.get("id").str()

	st := e.status(self)
	if st.get("status").str() != "Pending" || st.get("totalEntityCount").int() != 0 || len(st.get("links").items) != 1 || st.has("completedDate") {
		t.Fatalf("pending job: %v", st.shape())
	}
	r := e.get(e.localPath(self) + "/output/succeeded?key=" + fcMaster)
	mustStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "Pending") {
		t.Errorf("a download of a pending job should say why it failed: %s", r.body)
	}

	e.clock.Advance(10 * time.Second)
	st = e.status(self)
	if st.get("status").str() != "Completed" || st.get("totalEntityCount").int() != fcEntites ||
		st.get("completedDate").str() != "Mon, 03 Jun 2024 14:30:25 GMT" {
		t.Fatalf("completed job: %v %s", st.shape(), st.get("completedDate").str())
	}
	out := linkURL(t, st, "output", "succeeded")
	if out != self+"/output/succeeded" {
		t.Errorf("output link %q", out)
	}

	// The docs' short status form finds the newest download job of the data source.
	short := e.get("/REST/v1/dataflows/DataSourceDownload/" + strings.ToLower(fcName) + "?key=" + fcMaster)
	mustStatus(t, short, http.StatusOK)
	if got := jsonResource(t, short.body, 0).get("id").str(); got != id {
		t.Errorf("short form found job %s, want %s", got, id)
	}

	r = e.get(e.localPath(out) + "?key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	mustContentType(t, r, "application/xml")
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length %s, body %d bytes", cl, len(r.body))
	}
	sum, err := dataset.Verify(bytes.NewReader(r.body), fcName)
	if err != nil || sum.Schema.EntityType != "FourthCoffeeShops" || sum.Entities != fcEntites || !bytes.HasSuffix(bytes.TrimSpace(r.body), []byte("</MainRoot>")) {
		t.Errorf("data set: %d entities, %v", sum.Entities, err)
	}

	upper := strings.Replace(e.localPath(out), "/output/succeeded", "/OUTPUT/Succeeded", 1)
	mustStatus(t, e.get(upper+"?KEY="+fcMaster), http.StatusOK)

	// Output needs the master key, like everything about the job.
	mustStatus(t, e.get(e.localPath(out)+"?key="+fcQuery), http.StatusUnauthorized)
	mustStatus(t, e.get(e.localPath(out)), http.StatusUnauthorized)
}

func TestDownloadOfAVersion(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.DownloadJobDuration = 0 })
	for _, tc := range []struct {
		jobID string
		count int
	}{{"", 120}, {fcStaged, 125}, {strings.ToUpper(fcPrior1), 118}, {"c4b2a0f8e6d4c2b0a8f6e4d2c0b8a6f4", 110}} {
		res := e.createDownload(fcAccess, fcName, fcMaster, "jobId="+tc.jobID)
		st := e.status(linkURL(t, res, "self", ""))
		if st.get("totalEntityCount").int() != tc.count {
			t.Errorf("version %q: %d entities, want %d", tc.jobID, st.get("totalEntityCount").int(), tc.count)
		}
		r := e.get(e.localPath(linkURL(t, st, "output", "succeeded")) + "?key=" + fcMaster)
		mustStatus(t, r, http.StatusOK)
		if n := countEntities(r.body, "FourthCoffeeShops"); n != tc.count {
			t.Errorf("version %q: downloaded %d entities, want %d", tc.jobID, n, tc.count)
		}
	}
}

func TestCompleteAfterPolls(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Manual = false
		c.DownloadJobDuration = time.Hour
		c.CompleteAfterPolls = 3
	})
	self := linkURL(t, e.createDownload(fcAccess, fcName, fcMaster), "self", "")
	for i, want := range []string{"Pending", "Pending", "Completed", "Completed"} {
		if got := e.status(self).get("status").str(); got != want {
			t.Fatalf("poll %d: %s, want %s", i+1, got, want)
		}
	}
	if j := e.emu.Jobs()[0]; j.Polls != 3 || !j.Completed.Equal(e.clock.Now()) {
		t.Errorf("job after polls: %+v", j)
	}
}

func TestAbortedDownload(t *testing.T) {
	e := newEnv(t, nil)
	res := e.createDownload(fcAccess, fcName, fcMaster)
	self := linkURL(t, res, "self", "")
	if err := e.emu.AbortJob(res.get("id").str(), "The data source could not be read."); err != nil {
		t.Fatal(err)
	}
	st := e.status(self)
	if st.get("status").str() != "Aborted" || st.get("errorMessage").str() != "The data source could not be read." ||
		st.get("totalEntityCount").int() != 0 {
		t.Fatalf("aborted job: %v", st.shape())
	}
	// errorMessage sits where the service's alphabetical order puts it.
	assertShape(t, "aborted JSON resource", st.keys, []string{"__type", "id", "links", "completedDate", "createdDate",
		"errorMessage", "failedEntityCount", "processedEntityCount", "status", "totalEntityCount"})
	failed := linkURL(t, st, "output", "failed")

	r := e.get(e.localPath(self) + "?key=" + fcMaster + "&o=xml")
	job := parseXML(t, r.body).child("ResourceSets", "ResourceSet", "Resources", "DataflowJob")
	if job.child("ErrorMessage").value() != "The data source could not be read." || job.children[len(job.children)-1].name != "ErrorMessage" {
		t.Errorf("XML ErrorMessage: %s", r.body)
	}

	r = e.get(e.localPath(failed) + "?key=" + fcMaster)
	mustStatus(t, r, http.StatusOK)
	if string(r.body) != "The data source could not be read.\n" {
		t.Errorf("error log %q", r.body)
	}
	mustStatus(t, e.get(e.localPath(self)+"/output/succeeded?key="+fcMaster), http.StatusBadRequest)
	if err := e.emu.CompleteJob(res.get("id").str()); err == nil {
		t.Error("completing an aborted job should fail")
	}
}

func TestUnknownDownloadJob(t *testing.T) {
	e := newEnv(t, nil)
	res := e.createDownload(fcAccess, fcName, fcMaster)
	self := e.localPath(linkURL(t, res, "self", ""))
	bogus := strings.TrimSuffix(self, res.get("id").str()) + "00000000000000000000000000000000"
	tests := []struct {
		name, path string
		status     int
	}{
		{"unknown job", bogus + "?key=" + fcMaster, 404},
		{"unknown job output", bogus + "/output/succeeded?key=" + fcMaster, 404},
		{"job under another data source", strings.Replace(self, fcName, ppName, 1) + "?key=" + fcMaster, 404},
		{"unknown job, unknown key", bogus + "?key=" + unknownKey, 401},
		{"job, other data source's key", self + "?key=" + trMaster, 401},
		{"short form, no job yet", "/REST/v1/dataflows/DataSourceDownload/" + trName + "?key=" + trMaster, 404},
		{"short form, not the master key", "/REST/v1/dataflows/DataSourceDownload/" + fcName + "?key=" + trMaster, 401},
		{"output/other", self + "/output/other?key=" + fcMaster, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { mustStatus(t, e.get(tc.path), tc.status) })
	}
}

func listJobs(t *testing.T, e *env, key string) []*jnode {
	t.Helper()
	r := e.get("/REST/v1/Dataflows/ListJobs?key=" + key)
	mustStatus(t, r, http.StatusOK)
	root := parseJSON(t, r.body)
	items := root.get("resourceSets", 0, "resources").items
	if root.get("resourceSets", 0, "estimatedTotal").int() != len(items) {
		t.Errorf("estimatedTotal %d for %d jobs", root.get("resourceSets", 0, "estimatedTotal").int(), len(items))
	}
	return items
}

func TestDeleteLifecycle(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.JobDuration = time.Minute })
	r := e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster)
	mustStatus(t, r, http.StatusAccepted)
	if len(r.body) != 0 || r.header.Get("Content-Length") != "0" {
		t.Errorf("delete answered a body: %q", r.body)
	}

	jobs := listJobs(t, e, fcMaster)
	if len(jobs) != 1 || jobs[0].get("description").str() != "DataSourceDelete" || jobs[0].get("name").str() != fcName ||
		jobs[0].get("status").str() != "Pending" {
		t.Fatalf("job list: %v", jobs)
	}
	mustStatus(t, e.get("/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster), http.StatusOK)

	e.clock.Advance(time.Minute)
	jobs = listJobs(t, e, fcMaster)
	if jobs[0].get("status").str() != "Completed" || jobs[0].get("completedDate").str() != "Mon, 03 Jun 2024 14:31:15 GMT" {
		t.Errorf("completed delete job: %v", jobs[0].shape())
	}
	mustStatus(t, e.get("/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster), http.StatusNotFound)
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusNotFound)
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?key="+fcMaster), http.StatusNotFound)
	if _, ok := e.emu.DataSource(fcAccess, fcName); ok {
		t.Error("DataSource still reports the deleted data source")
	}
	// The account's other data sources remain, and the deleted one's keys still identify the
	// account.
	items := parseJSON(t, e.get("/REST/v1/data?$format=json&key="+fcQuery).body).get("d", "DataSources").items
	if len(items) != 2 {
		t.Errorf("%d data sources left, want 2", len(items))
	}
}

func TestDeleteStagedVersion(t *testing.T) {
	e := newEnv(t, nil)
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?isStaging=1&key="+fcMaster), http.StatusAccepted)
	job := e.emu.Jobs()[0]
	if job.Kind != JobDelete || !job.IsStaging {
		t.Fatalf("job %+v", job)
	}
	if err := e.emu.CompleteJob(job.ID); err != nil {
		t.Fatal(err)
	}
	ds, ok := e.emu.DataSource(strings.ToUpper(fcAccess), fcName)
	if !ok || ds.Staged != nil || len(ds.Prior) != 2 {
		t.Fatalf("after staged delete: %+v", ds)
	}
	r := e.get("/REST/v1/data/" + fcAccess + "/" + fcName + "?showAllVersions=true&key=" + fcMaster)
	if strings.Contains(string(r.body), fcStaged) || len(parseXML(t, r.body).all("app:workspace")) != 3 {
		t.Errorf("staged version still listed: %s", r.body)
	}
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster, "jobId="+fcStaged)), http.StatusBadRequest)
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+fcAccess+"/"+fcName+"?isStaging=true&key="+fcMaster), http.StatusNotFound)
	mustStatus(t, e.get(createPath(fcAccess, fcName, fcMaster)), http.StatusCreated)
}

func TestSetPublicLifecycle(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.JobDuration = time.Minute })
	isPublic := func() string {
		r := e.get("/REST/v1/data/" + fcAccess + "/" + fcName + "?$format=json&key=" + fcMaster)
		return parseJSON(t, r.body).get("d", "IsPublic").str()
	}
	r := e.get("/REST/v1/data/" + fcAccess + "/" + fcName + "/$updateDataSource?key=" + fcMaster) // setPublic defaults to 0
	mustStatus(t, r, http.StatusCreated)
	id := jsonResource(t, r.body, 0).get("id").str()
	if got := jsonResource(t, r.body, 0).get("description").str(); got != `Data source "FourthCoffeeSample" set private` {
		t.Errorf("description %q", got)
	}
	if isPublic() != "true" {
		t.Error("flag changed before the job completed")
	}
	e.clock.Advance(time.Minute)
	if isPublic() != "false" {
		t.Error("flag unchanged after the job completed")
	}
	jobs := listJobs(t, e, contosoAccountKey)
	if len(jobs) != 1 || jobs[0].get("id").str() != id || jobs[0].get("description").str() != "DataSourceAccess" ||
		jobs[0].get("status").str() != "Completed" {
		t.Fatalf("job list: %v", jobs)
	}
	if got := linkURL(t, jobs[0], "dataSource", "service"); got != e.srv.URL+"/REST/v1/data/"+fcAccess+"/"+fcName {
		t.Errorf("service link %q", got)
	}

	mustStatus(t, e.get("/REST/v1/data/"+fcAccess+"/"+fcName+"/$updateDataSource?setPublic=1&key="+fcMaster), http.StatusCreated)
	e.clock.Advance(time.Minute)
	if ds, _ := e.emu.DataSource(fcAccess, fcName); !ds.IsPublic {
		t.Error("not public again")
	}
}

func TestJobListOrderAndScope(t *testing.T) {
	e := newEnv(t, nil)
	setPublic := func(access, name, key string) string {
		r := e.get("/REST/v1/data/" + access + "/" + name + "/$updateDataSource?setPublic=1&key=" + key)
		mustStatus(t, r, http.StatusCreated)
		return jsonResource(t, r.body, 0).get("id").str()
	}
	old := setPublic(trAccess, trName, trMaster)
	if err := e.emu.CompleteJob(old); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(15*24*time.Hour + time.Second) // old leaves the 15-day window
	first := setPublic(fcAccess, fcName, fcMaster)
	e.clock.Advance(time.Minute)
	second := setPublic(fcAccess, ppName, fcMaster)
	e.clock.Advance(time.Minute)
	third := setPublic(trAccess, trName, trMaster)
	if err := e.emu.CompleteJob(third); err != nil {
		t.Fatal(err)
	}
	e.createDownload(fcAccess, fcName, fcMaster) // download jobs are not listed
	setPublic(fabAccess, fabName, fabMaster)     // nor other accounts' jobs

	var got []string
	for _, j := range listJobs(t, e, fcMaster) {
		got = append(got, j.get("id").str())
	}
	// Pending first, newest first within each group.
	assertShape(t, "job order", got, []string{second, first, third})
	if n := len(listJobs(t, e, fabMaster)); n != 1 {
		t.Errorf("Fabrikam lists %d jobs", n)
	}
}

func TestDeleteAndAccessJobsCompleteByPolls(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.JobDuration = -1; c.CompleteAfterPolls = 2 })
	mustStatus(t, e.do(http.MethodDelete, "/REST/v1/data/"+trAccess+"/"+trName+"?key="+trMaster), http.StatusAccepted)
	// Job-list and information requests of the account poll its delete and set-public jobs.
	mustStatus(t, e.get("/REST/v1/data/"+trAccess+"/"+trName+"?key="+trMaster), http.StatusOK)
	mustStatus(t, e.get("/REST/v1/data/"+trAccess+"/"+trName+"?key="+trMaster), http.StatusNotFound)
	if j := e.emu.Jobs()[0]; j.Status != StatusCompleted || j.Polls != 2 {
		t.Errorf("job %+v", j)
	}
}

func TestJobsWithTimeOnly(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Manual = false; c.JobDuration = 0; c.DownloadJobDuration = 0 })
	self := linkURL(t, e.createDownload(fcAccess, fcName, fcMaster), "self", "")
	if got := e.status(self).get("status").str(); got != "Completed" {
		t.Errorf("zero duration: first poll sees %s", got)
	}
}
