package sdsemu

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
)

// Key errors. None of them, nor any other response, repeats the key.
func errNoKey() *apiError {
	return &apiError{status: http.StatusUnauthorized, auth: authNone,
		details: []string{"A Bing Maps key is required: set the key parameter."}}
}

func errUnknownKey() *apiError {
	return &apiError{status: http.StatusUnauthorized, auth: authInvalid,
		details: []string{"The Bing Maps key is not valid."}}
}

func errNotMasterKey() *apiError {
	return &apiError{status: http.StatusUnauthorized, auth: authInvalid,
		details: []string{"The key is not the master key of the data source."}}
}

func errNotAccountKey() *apiError {
	return &apiError{status: http.StatusUnauthorized, auth: authInvalid,
		details: []string{"The key does not belong to the account that manages the data source."}}
}

func errNoDataSource(accessID, name string) *apiError {
	return newError(http.StatusNotFound, fmt.Sprintf("The data source %s/%s was not found.", accessID, name))
}

// accountOf checks that a key was given and belongs to an account. It needs no lock.
func (s *Server) accountOf(key string) (*account, *apiError) {
	if key == "" {
		return nil, errNoKey()
	}
	ki, ok := s.keys[key]
	if !ok {
		// Before any lookup: a key of no account learns nothing about which data sources exist.
		return nil, errUnknownKey()
	}
	return ki.acct, nil
}

// masterDataSourceLocked authorizes a management operation: key present and known (401), data
// source exists (404), key is its master key (401).
func (s *Server) masterDataSourceLocked(key, accessID, name string) (*account, *DataSource, *apiError) {
	if _, e := s.accountOf(key); e != nil {
		return nil, nil, e
	}
	acct, d := s.findDataSourceLocked(accessID, name)
	if d == nil {
		return nil, nil, errNoDataSource(accessID, name)
	}
	if key != d.MasterKey {
		return nil, nil, errNotMasterKey()
	}
	return acct, d, nil
}

func dataSourceURL(base, accessID, name string) string {
	return base + "/REST/v1/data/" + accessID + "/" + name
}

// selfURL is a download job's status URL. The docs' example omits access ID and job ID; we keep
// both so that the URL names exactly one job.
func selfURL(base string, j Job) string {
	return base + "/REST/v1/dataflows/DataSourceDownload/" + j.AccessID + "/" + j.DataSourceName + "/" + j.ID
}

func downloadResource(base string, j Job) dataflowJob {
	self := selfURL(base, j)
	d := dataflowJob{job: j, self: link{role: "self", url: self}}
	switch j.Status {
	case StatusCompleted:
		d.output = &link{role: "output", name: "succeeded", url: self + "/output/succeeded"}
	case StatusAborted:
		d.output = &link{role: "output", name: "failed", url: self + "/output/failed"}
	}
	return d
}

// createDownload: GET /REST/v1/Dataflows/DataSourceDownload/{accessId}/{dataSourceName}.
func (s *Server) createDownload(q *request) {
	accessID, name, versionID := q.args[0], q.args[1], q.param("jobid")
	snap, e := func() (Job, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		acct, d, e := s.masterDataSourceLocked(q.key, accessID, name)
		if e != nil {
			return Job{}, e
		}
		v := d.Published
		if versionID == "" && v.JobID == "" {
			return Job{}, newError(http.StatusBadRequest, fmt.Sprintf("Data source %s has no published version: name the staged version with jobId.", d.Name))
		}
		if versionID != "" {
			i := slices.IndexFunc(d.versions(), func(v Version) bool { return strings.EqualFold(v.JobID, versionID) })
			if i < 0 {
				return Job{}, newError(http.StatusBadRequest, fmt.Sprintf(
					"The jobId parameter does not name the published, staged or a prior version of data source %s.", d.Name))
			}
			v = d.versions()[i]
		}
		j, e := s.createJobLocked(JobDownload, OpCreateDownload, q.r.URL.Path, acct, d, now)
		if e != nil {
			return Job{}, e
		}
		j.dataset = datasetFor(d, v)
		j.VersionJobID, j.EntityCount = v.JobID, v.EntityCount
		return j.snapshot(), nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	res := downloadResource(q.base, snap)
	if s.takeFault(OpCreateDownload, q.r.URL.Path, FaultLocationOnly) != nil {
		q.rec.addFault(FaultLocationOnly)
		res.noSelf = true
		q.w.Header().Set("Location", res.self.url)
	}
	q.respond(http.StatusCreated, []resource{res})
}

// downloadJobLocked finds a download job by the path of its self link.
func (s *Server) downloadJobLocked(key, accessID, name, id string) (*job, *apiError) {
	if _, e := s.accountOf(key); e != nil {
		return nil, e
	}
	j := s.findJobLocked(id)
	if j == nil || j.Kind != JobDownload || !strings.EqualFold(j.AccessID, accessID) || !strings.EqualFold(j.DataSourceName, name) {
		return nil, newError(http.StatusNotFound, "The download job was not found.")
	}
	if key != j.masterKey {
		return nil, errNotMasterKey()
	}
	return j, nil
}

// newestDownloadLocked serves the docs' short status URL, which names only the data source:
// the newest download job of a data source of that name whose master key is the key.
func (s *Server) newestDownloadLocked(key, name string) (*job, *apiError) {
	if _, e := s.accountOf(key); e != nil {
		return nil, e
	}
	var found bool
	for _, j := range slices.Backward(s.jobs) {
		if j.Kind != JobDownload || !strings.EqualFold(j.DataSourceName, name) {
			continue
		}
		found = true
		if j.masterKey == key {
			return j, nil
		}
	}
	if found {
		return nil, errNotMasterKey()
	}
	return nil, newError(http.StatusNotFound, fmt.Sprintf("No download job was found for data source %s.", name))
}

func (s *Server) findDownloadLocked(q *request) (*job, *apiError) {
	if len(q.args) == 1 {
		return s.newestDownloadLocked(q.key, q.args[0])
	}
	return s.downloadJobLocked(q.key, q.args[0], q.args[1], q.args[2])
}

// downloadStatus: GET a download job's self link (or the docs' short form).
func (s *Server) downloadStatus(q *request) {
	snap, e := func() (Job, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		j, e := s.findDownloadLocked(q)
		if e != nil {
			return Job{}, e
		}
		if j.Status == StatusPending {
			j.Polls++
			s.advanceLocked(now)
		}
		return j.snapshot(), nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	res := downloadResource(q.base, snap)
	var details []string
	if snap.Status == StatusAborted {
		if f := s.takeFault(OpDownloadStatus, q.r.URL.Path, FaultErrorDetailsOnly); f != nil {
			q.rec.addFault(f.Kind)
			res.noError, details = true, []string{snap.ErrorMessage}
		}
	}
	if snap.Status == StatusCompleted {
		if f := s.takeFault(OpDownloadStatus, q.r.URL.Path, FaultNoTotal); f != nil {
			q.rec.addFault(f.Kind)
			res.noTotal = true
		}
	}
	s.respondStatus(q, []resource{res}, details)
}

// respondStatus answers a job status request (200), or stalls part way
// through the answer when a stall fault aims at the request's operation.
func (s *Server) respondStatus(q *request, res []resource, details []string) {
	if f := s.takeFault(q.rec.Operation, q.r.URL.Path, FaultStall); f != nil {
		q.rec.addFault(f.Kind)
		rec := httptest.NewRecorder()
		writeEnvelope(rec, q.f, http.StatusOK, authValid, res, details)
		stall(q, rec.Header().Get("Content-Type"), rec.Body.Bytes(), f)
		return
	}
	writeEnvelope(q.w, q.f, http.StatusOK, authValid, res, details)
}

// parseFlag reads a 0/1 parameter; with words it also takes true/false. Empty means false.
func parseFlag(v string, words bool) (bool, bool) {
	switch strings.ToLower(v) {
	case "", "0":
		return false, true
	case "1":
		return true, true
	case "false":
		return false, words
	case "true":
		return true, words
	}
	return false, false
}

// deleteDataSource: DELETE /REST/v1/data/{accessId}/{dataSourceName}. It answers 202 with no
// body and creates a DataSourceDelete job; the data source (or its staged version) disappears
// when the job completes, which the job list and the information routes show.
func (s *Server) deleteDataSource(q *request) {
	e := func() *apiError {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		acct, d, e := s.masterDataSourceLocked(q.key, q.args[0], q.args[1])
		if e != nil {
			return e
		}
		staging, ok := parseFlag(q.param("isstaging"), true)
		if !ok {
			return newError(http.StatusBadRequest, "The isStaging parameter must be 0, 1, true or false.")
		}
		if staging && d.Staged == nil {
			return newError(http.StatusNotFound, fmt.Sprintf("Data source %s has no staged version.", d.Name))
		}
		j, e := s.createJobLocked(JobDelete, OpDelete, q.r.URL.Path, acct, d, now)
		if e != nil {
			return e
		}
		j.IsStaging = staging
		return nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusAccepted)
}

// setPublic: GET /REST/v1/data/{accessId}/{dataSourceName}/$updateDataSource?setPublic=1|0.
// The flag changes when the DataSourceAccess job completes.
func (s *Server) setPublic(q *request) {
	res, e := func() (createdServiceJob, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		acct, d, e := s.masterDataSourceLocked(q.key, q.args[0], q.args[1])
		if e != nil {
			return createdServiceJob{}, e
		}
		public, ok := parseFlag(q.param("setpublic"), false)
		if !ok {
			return createdServiceJob{}, newError(http.StatusBadRequest, "The setPublic parameter must be 1 or 0.")
		}
		j, e := s.createJobLocked(JobAccess, OpSetPublic, q.r.URL.Path, acct, d, now)
		if e != nil {
			return createdServiceJob{}, e
		}
		j.SetPublic = &public
		word := "private"
		if public {
			word = "public"
		}
		return createdServiceJob{
			id:          j.ID,
			description: fmt.Sprintf("Data source %q set %s", d.Name, word),
			created:     j.Created,
		}, nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	q.respond(http.StatusCreated, []resource{res})
}

// parseShowAllVersions takes true/false and 1/0; any other positive number means true, since
// the docs' own example sends showAllVersions=3.
func parseShowAllVersions(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "", "false", "0":
		return false, true
	case "true":
		return true, true
	}
	n, err := strconv.Atoi(v)
	return n > 0, err == nil && n > 0
}

// info: GET /REST/v1/data and /REST/v1/data/{accessId}/{dataSourceName}. Any key of the
// account will do. Success is 200: the page lists 201, but nothing is created.
func (s *Server) info(q *request) {
	single := len(q.args) == 2
	allVersions, ok := parseShowAllVersions(q.param("showallversions"))
	dss, e := func() ([]DataSource, *apiError) {
		acct, e := s.accountOf(q.key)
		if e != nil {
			return nil, e
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.pollAccountJobsLocked(acct)
		s.advanceLocked(now)
		if !single {
			out := make([]DataSource, 0, len(acct.dataSources))
			for _, d := range acct.dataSources {
				out = append(out, d.clone())
			}
			return out, nil
		}
		owner, d := s.findDataSourceLocked(q.args[0], q.args[1])
		if d == nil {
			return nil, errNoDataSource(q.args[0], q.args[1])
		}
		if owner != acct {
			return nil, errNotAccountKey()
		}
		if !ok {
			return nil, newError(http.StatusBadRequest, "The showAllVersions parameter must be true or false.")
		}
		return []DataSource{d.clone()}, nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	entries := infoEntries(dss, single && allVersions)
	var body []byte
	if q.f == formatJSON {
		body = infoJSON(entries, single && !allVersions)
		q.w.Header().Set("Content-Type", contentJSON)
	} else {
		body = infoAtom(q.base, entries)
		q.w.Header().Set("Content-Type", contentAtomSvc)
	}
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(body)
}

// listJobs: GET /REST/v1/Dataflows/ListJobs. Jobs of the key's account from the last 15 days,
// pending first, then newest first; download jobs are not listed.
func (s *Server) listJobs(q *request) {
	acct, e := s.accountOf(q.key)
	if e != nil {
		q.fail(e)
		return
	}
	var jobs []Job
	func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.pollAccountJobsLocked(acct)
		s.advanceLocked(now)
		for _, j := range s.jobs {
			if j.acct == acct && j.Kind != JobDownload && now.Sub(j.Created) <= jobListWindow {
				jobs = append(jobs, j.snapshot())
			}
		}
	}()
	slices.SortStableFunc(jobs, func(a, b Job) int {
		if pa, pb := a.Status == StatusPending, b.Status == StatusPending; pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return b.Created.Compare(a.Created)
	})
	res := make([]resource, 0, len(jobs))
	for _, j := range jobs {
		if j.Kind == JobLoadComplete || j.Kind == JobLoadCompleteStaging || j.Kind == JobRollback {
			r := s.loadResource(q.base, j)
			r.listed = true
			res = append(res, r)
			continue
		}
		l := listedServiceJob{job: j}
		if j.Kind == JobAccess {
			l.service = &link{role: "dataSource", name: "service", url: dataSourceURL(q.base, j.AccessID, j.DataSourceName)}
		}
		res = append(res, l)
	}
	q.respond(http.StatusOK, res)
}
