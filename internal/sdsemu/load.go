package sdsemu

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Job kinds of the load, publish and rollback dataflows, as the job list names them.
const (
	JobLoadComplete        JobKind = "DataSourceComplete"
	JobLoadCompleteStaging JobKind = "DataSourceCompleteStaging"
	JobPublishStaged       JobKind = "DataSourcePublishFromStaged"
	JobRollback            JobKind = "DataSourceRollback"
)

// Operation names of the load routes.
const (
	OpLoad          = "load"
	OpLoadStatus    = "loadStatus"
	OpLoadFailed    = "loadFailed"
	OpPublish       = "publish"
	OpPublishStatus = "publishStatus"
	OpRollback      = "rollback"
	OpRollbackStat  = "rollbackStatus"
)

// loadNamePattern: the documented characters of a data source name plus "-", which
// Microsoft's own client accepts.
var loadNamePattern = regexp.MustCompile("^[A-Za-z0-9~`!$^_={}-]{1,50}$")

// storedData is an uploaded version kept on disk in its download form.
type storedData struct {
	path       string
	size       int64
	entityType string
}

// fileStore holds uploaded versions and failed-entity logs in one temporary directory, made on
// first use and removed by Close.
type fileStore struct {
	mu  sync.Mutex
	dir string
}

func (f *fileStore) create(prefix string) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dir == "" {
		dir, err := os.MkdirTemp("", "sdsemu-load-")
		if err != nil {
			return nil, err
		}
		f.dir = dir
	}
	return os.CreateTemp(f.dir, prefix)
}

// Close removes the files of uploaded data sources. The server keeps serving generated data.
func (s *Server) Close() error {
	s.files.mu.Lock()
	defer s.files.mu.Unlock()
	if s.files.dir == "" {
		return nil
	}
	err := os.RemoveAll(s.files.dir)
	s.files.dir = ""
	return err
}

// loadJob is what a load job carries until it finishes.
type loadJob struct {
	operation string // complete or completeStaging
	public    bool
	queryKey  string
	data      *storedData // nil when the job aborts
	failed    *storedData // failed entities, or nil
	failedMsg string      // error log of an abort without entity failures
}

func matchLoadRoute(rest []string) ([]endpoint, []string) {
	is := func(i int, name string) bool { return i < len(rest) && strings.EqualFold(rest[i], name) }
	get := func(op string, h func(*Server, *request)) endpoint { return endpoint{http.MethodGet, op, h} }
	switch {
	case len(rest) == 2 && is(0, "Dataflows") && is(1, "LoadDataSource"):
		return []endpoint{{http.MethodPost, OpLoad, (*Server).load}}, nil
	case len(rest) == 3 && is(0, "Dataflows") && is(1, "LoadDataSource"):
		return []endpoint{get(OpLoadStatus, (*Server).loadStatus)}, rest[2:]
	case len(rest) == 5 && is(0, "Dataflows") && is(1, "LoadDataSource") && is(3, "output") && is(4, "failed"):
		return []endpoint{get(OpLoadFailed, (*Server).loadFailed)}, rest[2:3]
	case len(rest) == 4 && is(0, "Dataflows") && is(1, "DataSourceRollback"):
		return []endpoint{get(OpRollback, (*Server).rollback)}, rest[2:]
	case len(rest) == 3 && is(0, "Dataflows") && is(1, "DataSourceRollback"):
		return []endpoint{get(OpRollbackStat, (*Server).versionJobStatus)}, rest[2:]
	case len(rest) == 4 && is(0, "data") && is(1, "jobs") && is(3, "$getstatus"):
		return []endpoint{get(OpPublishStatus, (*Server).versionJobStatus)}, rest[2:3]
	case len(rest) == 4 && is(0, "data") && is(3, "$commit"):
		return []endpoint{get(OpPublish, (*Server).publish)}, rest[1:3]
	}
	return nil, nil
}

func (a *account) byNameLocked(name string) *DataSource {
	for _, d := range a.dataSources {
		if strings.EqualFold(d.Name, name) {
			return d
		}
	}
	return nil
}

// load: POST /REST/v1/Dataflows/LoadDataSource. Parameters and key are checked first, then the
// job limits, then the body is read to its end: a body over 300 MB is refused with 400; anything
// wrong inside it becomes an Aborted job with a failed output.
func (s *Server) load(q *request) {
	name := q.param("datasourcename")
	op := strings.ToLower(q.param("loadoperation"))
	var kind JobKind
	switch op {
	case "complete":
		kind = JobLoadComplete
	case "completestaging":
		kind = JobLoadCompleteStaging
	case "incremental", "incrementalstaging":
		q.fail(newError(http.StatusBadRequest, "The emulator supports loadOperation complete and completeStaging only."))
		return
	default:
		q.fail(newError(http.StatusBadRequest, "The loadOperation parameter is required: complete, completeStaging, incremental or incrementalStaging."))
		return
	}
	public, ok := parseFlag(q.param("setpublic"), false)
	switch {
	case !loadNamePattern.MatchString(name):
		q.fail(newError(http.StatusBadRequest, "The dataSourceName parameter is required: up to 50 letters, digits or ~ ` ! $ ^ _ = { }."))
		return
	case !strings.EqualFold(q.param("input"), "xml"):
		q.fail(newError(http.StatusBadRequest, "The input parameter must be xml: the emulator takes XML data only."))
		return
	case q.param("datalocation") != "":
		q.fail(newError(http.StatusBadRequest, "The emulator takes the data in the request body only, not from dataLocation."))
		return
	case !ok:
		q.fail(newError(http.StatusBadRequest, "The setPublic parameter must be 1 or 0."))
		return
	case public && kind == JobLoadCompleteStaging:
		q.fail(newError(http.StatusBadRequest, "The setPublic parameter is not valid for a staged data source."))
		return
	}
	ct, _, _ := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	switch ct {
	case "application/octet-stream", "application/xml", "text/xml":
	default:
		q.fail(newError(http.StatusBadRequest, "The Content-Type must be application/xml or text/xml, or application/octet-stream for compressed data."))
		return
	}
	acct, e := s.accountOf(q.key)
	if e != nil {
		q.fail(e)
		return
	}
	queryKey := q.param("querykey")
	if queryKey != "" {
		if ki, ok := s.keys[queryKey]; !ok || ki.acct != acct || queryKey == q.key {
			q.fail(newError(http.StatusBadRequest, "The queryKey must be another Bing Maps key of the same account as the master key."))
			return
		}
	}
	if e := s.loadPreconditions(acct, q.key, name); e != nil {
		q.fail(e)
		return
	}

	up, e := s.readLoadBody(q.r.Body, name)
	if e != nil {
		q.fail(e)
		return
	}
	up.operation, up.public, up.queryKey = op, public, queryKey
	snap, e := func() (Job, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		if e := s.loadPreconditionsLocked(acct, q.key, name); e != nil {
			return Job{}, e
		}
		target := acct.byNameLocked(name)
		if target == nil {
			// A new data source gets a fresh random access ID, also when the name was used
			// by a data source deleted before.
			target = &DataSource{AccessID: newID(), Name: name, MasterKey: q.key}
		}
		j, e := s.createJobLocked(kind, OpLoad, q.r.URL.Path, acct, target, now)
		if e != nil {
			return Job{}, e
		}
		j.DataSourceName = name
		j.load = &up.loadJob
		if j.abortWith == "" {
			j.abortWith = up.abort
		}
		j.EntityCount, j.FailedEntityCount = up.entities, up.failedCount
		return j.snapshot(), nil
	}()
	if e != nil {
		up.remove()
		q.fail(e)
		return
	}
	res := s.loadResource(q.base, snap)
	q.w.Header().Set("Location", res.self.url)
	q.respond(http.StatusCreated, []resource{res})
}

func (s *Server) loadPreconditions(acct *account, key, name string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.advanceLocked(now)
	if e := s.loadPreconditionsLocked(acct, key, name); e != nil {
		return e
	}
	return s.checkLimitsLocked(acct, now)
}

// loadPreconditionsLocked: the master key of an existing data source; for a new one, room in
// the account and no delete of that name still running (the documented 403 and 400).
func (s *Server) loadPreconditionsLocked(acct *account, key, name string) *apiError {
	for _, j := range s.jobs {
		if j.acct == acct && j.Kind == JobDelete && j.Status == StatusPending && !j.IsStaging && strings.EqualFold(j.DataSourceName, name) {
			return newError(http.StatusBadRequest, fmt.Sprintf("The data source %s is being deleted: wait for the delete job to complete.", name))
		}
	}
	if d := acct.byNameLocked(name); d != nil {
		if d.MasterKey != key {
			return errNotMasterKey()
		}
		return nil
	}
	if len(acct.dataSources) >= s.cfg.MaxDataSources {
		return newError(http.StatusForbidden, fmt.Sprintf("The account already has the maximum of %d data sources.", s.cfg.MaxDataSources))
	}
	return nil
}

// uploadResult is an upload read to its end.
type uploadResult struct {
	loadJob
	entities    int
	failedCount int
	abort       string
}

func (u *uploadResult) remove() {
	for _, sd := range []*storedData{u.data, u.failed} {
		if sd != nil {
			_ = os.Remove(sd.path)
		}
	}
}

// readLoadBody decompresses (gzip is recognised by its magic bytes, whatever the content type)
// and validates the upload, keeping the stored form on disk.
func (s *Server) readLoadBody(body io.Reader, name string) (*uploadResult, *apiError) {
	br := bufio.NewReaderSize(bodyReader{body}, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, newError(http.StatusBadRequest, "The compressed data cannot be read: "+err.Error())
		}
		defer zr.Close()
		r = bodyReader{zr}
	}
	out, err := s.files.create("data-*.xml")
	if err != nil {
		return nil, newError(http.StatusInternalServerError, "The data cannot be stored.")
	}
	failed, err := s.files.create("failed-*.xml")
	if err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, newError(http.StatusInternalServerError, "The data cannot be stored.")
	}
	ow, fw := bufio.NewWriterSize(out, 64<<10), bufio.NewWriterSize(failed, 16<<10)
	o, rerr := readUpload(r, name, s.cfg.MaxLoadEntities, ow, fw)
	werr := errors.Join(ow.Flush(), fw.Flush(), out.Close(), failed.Close())
	res := &uploadResult{entities: o.entities, failedCount: o.failed, abort: o.abort}
	res.data = &storedData{path: out.Name()}
	res.failed = &storedData{path: failed.Name()}
	switch {
	case errors.Is(rerr, errTooLarge):
		res.remove()
		return nil, newError(http.StatusBadRequest, fmt.Sprintf("The data exceeds the limit of %d bytes of uncompressed data.", MaxUploadBytes))
	case rerr != nil:
		res.remove()
		return nil, newError(http.StatusBadRequest, "The data could not be read: "+truncateText(rerr.Error(), 200))
	case werr != nil:
		res.remove()
		return nil, newError(http.StatusInternalServerError, "The data cannot be stored.")
	}
	if o.abort == "" {
		_ = os.Remove(failed.Name())
		res.failed = nil
		res.data.entityType = o.schema.EntityType
		if fi, err := os.Stat(out.Name()); err == nil {
			res.data.size = fi.Size()
		}
		return res, nil
	}
	_ = os.Remove(out.Name())
	res.data = nil
	if !o.failedLog {
		_ = os.Remove(failed.Name())
		res.failed = nil
		res.failedMsg = o.abort + "\n"
	} else if fi, err := os.Stat(failed.Name()); err == nil {
		res.failed.size = fi.Size()
	}
	return res, nil
}

// versionJobLocked finds a job of one of kinds by id for key: 404 for no such job, 401 for a key
// that is not the master key it was created with.
func (s *Server) versionJobLocked(key, id string, kinds ...JobKind) (*job, *apiError) {
	if _, e := s.accountOf(key); e != nil {
		return nil, e
	}
	j := s.findJobLocked(id)
	if j == nil || !containsKind(kinds, j.Kind) {
		return nil, newError(http.StatusNotFound, "The job was not found.")
	}
	if key != j.masterKey {
		return nil, errNotMasterKey()
	}
	return j, nil
}

func containsKind(kinds []JobKind, k JobKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// loadStatus: GET /REST/v1/dataflows/LoadDataSource/{jobId}.
func (s *Server) loadStatus(q *request) {
	snap, e := s.pollVersionJob(q.key, q.args[0], JobLoadComplete, JobLoadCompleteStaging)
	if e != nil {
		q.fail(e)
		return
	}
	s.respondStatus(q, []resource{s.loadResource(q.base, snap)}, nil)
}

// versionJobStatus: the status URLs of publish (/data/jobs/{id}/$getstatus) and rollback
// (/dataflows/DataSourceRollback/{id}) jobs.
func (s *Server) versionJobStatus(q *request) {
	kind := JobRollback
	if q.rec.Operation == OpPublishStatus {
		kind = JobPublishStaged
	}
	snap, e := s.pollVersionJob(q.key, q.args[0], kind)
	if e != nil {
		q.fail(e)
		return
	}
	if kind == JobPublishStaged {
		s.respondStatus(q, []resource{publishResource{job: snap, base: q.base}}, nil)
		return
	}
	s.respondStatus(q, []resource{s.loadResource(q.base, snap)}, nil)
}

func (s *Server) pollVersionJob(key, id string, kinds ...JobKind) (Job, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.advanceLocked(now)
	j, e := s.versionJobLocked(key, id, kinds...)
	if e != nil {
		return Job{}, e
	}
	if j.Status == StatusPending {
		j.Polls++
		s.advanceLocked(now)
	}
	return j.snapshot(), nil
}

// loadFailed: GET {load self link}/output/failed, the error log of an aborted load: the failed
// entities as an XML data set (each preceded by a comment giving the reason), or, when the
// data could not be read at all, the error message as text.
func (s *Server) loadFailed(q *request) {
	var lj *loadJob
	var status JobStatus
	var msg string
	e := func() *apiError {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advanceLocked(s.cfg.Now())
		j, e := s.versionJobLocked(q.key, q.args[0], JobLoadComplete, JobLoadCompleteStaging)
		if e != nil {
			return e
		}
		lj, status, msg = j.load, j.Status, j.ErrorMessage
		return nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	if status != StatusAborted {
		q.fail(newError(http.StatusBadRequest, fmt.Sprintf("The load job has not aborted (status %s): there is no error log.", status)))
		return
	}
	// An echoKey fault ends the log with the request URL, key and all, as a
	// service that logs its requests would.
	var echo string
	if f := s.takeFault(OpLoadFailed, q.r.URL.Path, FaultEchoKey); f != nil {
		q.rec.addFault(f.Kind)
		echo = "Request: GET " + q.base + q.r.URL.RequestURI()
	}
	if lj == nil || lj.failed == nil {
		if lj != nil && lj.failedMsg != "" {
			msg = strings.TrimSuffix(lj.failedMsg, "\n")
		}
		body := msg + "\n"
		if echo != "" {
			body += echo + "\n"
		}
		q.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		q.w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(q.w, body)
		return
	}
	f, err := os.Open(lj.failed.path)
	if err != nil {
		q.fail(newError(http.StatusNotFound, "The error log is no longer available."))
		return
	}
	defer f.Close()
	if echo != "" {
		echo = "\n<!-- " + echo + " -->\n" // after the root element: still well-formed
	}
	q.w.Header().Set("Content-Type", contentXML)
	q.w.Header().Set("Content-Length", strconv.FormatInt(lj.failed.size+int64(len(echo)), 10))
	q.w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(q.w, f)
	_, _ = io.WriteString(q.w, echo)
}

// publish: GET /REST/v1/data/{accessId}/{name}/$commit. 202 with a DataServiceJob whose self
// link is the $getstatus URL.
func (s *Server) publish(q *request) {
	snap, e := func() (Job, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		acct, d, e := s.masterDataSourceLocked(q.key, q.args[0], q.args[1])
		if e != nil {
			return Job{}, e
		}
		if d.Staged == nil {
			return Job{}, newError(http.StatusBadRequest, fmt.Sprintf("Data source %s has no staged version to publish.", d.Name))
		}
		j, e := s.createJobLocked(JobPublishStaged, OpPublish, q.r.URL.Path, acct, d, now)
		if e != nil {
			return Job{}, e
		}
		j.VersionJobID = d.Staged.JobID
		return j.snapshot(), nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	res := publishResource{job: snap, base: q.base, accepted: true}
	q.w.Header().Set("Location", res.selfURL())
	q.respond(http.StatusAccepted, []resource{res})
}

// rollback: GET /REST/v1/Dataflows/DataSourceRollback/{previousVersionJobId}/{name}. The
// version must be one of the (at most two) prior versions.
func (s *Server) rollback(q *request) {
	versionID, name := q.args[0], q.args[1]
	snap, e := func() (Job, *apiError) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.cfg.Now()
		s.advanceLocked(now)
		acct, e := s.accountOf(q.key)
		if e != nil {
			return Job{}, e
		}
		d := acct.byNameLocked(name)
		if d == nil {
			return Job{}, newError(http.StatusNotFound, fmt.Sprintf("The data source %s was not found.", name))
		}
		if d.MasterKey != q.key {
			return Job{}, errNotMasterKey()
		}
		if priorIndex(d, versionID) < 0 {
			return Job{}, newError(http.StatusBadRequest, fmt.Sprintf("%s is not the job ID of a prior version of data source %s.", truncateText(versionID, 64), d.Name))
		}
		j, e := s.createJobLocked(JobRollback, OpRollback, q.r.URL.Path, acct, d, now)
		if e != nil {
			return Job{}, e
		}
		j.VersionJobID = versionID
		return j.snapshot(), nil
	}()
	if e != nil {
		q.fail(e)
		return
	}
	res := s.loadResource(q.base, snap)
	q.w.Header().Set("Location", res.self.url)
	q.respond(http.StatusCreated, []resource{res})
}

func priorIndex(d *DataSource, versionID string) int {
	for i, v := range d.Prior {
		if strings.EqualFold(v.JobID, versionID) {
			return i
		}
	}
	return -1
}

// applyVersionJobLocked makes a completing load, publish or rollback job take effect. It
// returns a non-empty message when the job must abort instead (its data source changed
// meanwhile).
func (s *Server) applyVersionJobLocked(j *job, at time.Time) string {
	switch j.Kind {
	case JobLoadComplete, JobLoadCompleteStaging:
		lj := j.load
		if lj == nil || lj.data == nil {
			return "The data could not be loaded."
		}
		v := Version{JobID: j.ID, EntityCount: j.EntityCount, Updated: at, data: lj.data, entityType: lj.data.entityType}
		d := j.acct.byNameLocked(j.DataSourceName)
		if d == nil {
			if len(j.acct.dataSources) >= s.cfg.MaxDataSources {
				return fmt.Sprintf("The account already has the maximum of %d data sources.", s.cfg.MaxDataSources)
			}
			d = &DataSource{AccessID: j.AccessID, Name: j.DataSourceName, EntityTypeName: v.entityType, MasterKey: j.masterKey, QueryKey: lj.queryKey}
			j.acct.dataSources = append(j.acct.dataSources, d)
		}
		j.AccessID = d.AccessID
		if lj.queryKey != "" {
			d.QueryKey = lj.queryKey
		}
		if j.Kind == JobLoadCompleteStaging {
			if d.Staged != nil {
				dropVersion(*d.Staged)
			}
			d.Staged = &v
			return ""
		}
		publishVersion(d, v)
		d.IsPublic = lj.public
	case JobPublishStaged:
		_, d := s.findDataSourceLocked(j.AccessID, j.DataSourceName)
		if d == nil || d.Staged == nil || !strings.EqualFold(d.Staged.JobID, j.VersionJobID) {
			return "The staged version to publish no longer exists."
		}
		v := *d.Staged
		d.Staged = nil
		v.Updated = at
		publishVersion(d, v)
	case JobRollback:
		_, d := s.findDataSourceLocked(j.AccessID, j.DataSourceName)
		i := -1
		if d != nil {
			i = priorIndex(d, j.VersionJobID)
		}
		if i < 0 {
			return "The version to roll back to is no longer a prior version of the data source."
		}
		v := d.Prior[i]
		d.Prior = append(d.Prior[:i:i], d.Prior[i+1:]...)
		v.Updated = at
		publishVersion(d, v)
	}
	return ""
}

// publishVersion makes v the published version; the previous one becomes the newest prior
// version and the oldest beyond two is dropped.
func publishVersion(d *DataSource, v Version) {
	if d.Published.JobID != "" {
		old := d.Published
		if old.entityType == "" {
			old.entityType = d.EntityTypeName
		}
		d.Prior = append([]Version{old}, d.Prior...)
	}
	for len(d.Prior) > maxPriorVersions {
		dropVersion(d.Prior[len(d.Prior)-1])
		d.Prior = d.Prior[:len(d.Prior)-1]
	}
	d.Published = v
	if v.entityType != "" {
		d.EntityTypeName = v.entityType
	}
}

// dropVersion deletes a version's file once SDS no longer keeps the version.
func dropVersion(v Version) {
	if v.data != nil {
		_ = os.Remove(v.data.path)
	}
}

func (sd *storedData) writeTo(w io.Writer) (int64, error) {
	f, err := os.Open(sd.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, f)
}

// discardUpload deletes the data of a load job that aborted; its failed output stays.
func discardUpload(j *job) {
	if j.load != nil && j.load.data != nil {
		_ = os.Remove(j.load.data.path)
		j.load.data = nil
	}
}
