package task

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/sds"
)

// Operations of the jobs a restore or rollback follows (LoadStatus).
const (
	OpLoad     = "load"
	OpPublish  = "publish"
	OpRollback = "rollback"
)

// Actions of the restore function.
const (
	ActionPrepare = "prepare"
	ActionLoad    = "load"
)

// maxManifestsScanned bounds the manifests read when an archive is chosen
// by data source and version or date.
const maxManifestsScanned = 1000

// ArchiveObjects is the part of S3 that restoring needs: reading archives
// and manifests, and keeping an aborted load's failed output beside them.
type ArchiveObjects interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	manager.UploadAPIClient
}

// Restorer runs the restore, publish, rollback and load status functions.
type Restorer struct {
	r  *Runner
	s3 ArchiveObjects
}

// NewRestorer wires a Restorer; the archive bucket and prefix are the
// Runner's (ARCHIVE_BUCKET, ARCHIVE_PREFIX).
func NewRestorer(r *Runner, api ArchiveObjects) *Restorer {
	return &Restorer{r: r, s3: api}
}

// StartRestorer runs one of the Restorer's functions under the Lambda
// runtime.
func StartRestorer(function string, pick func(*Restorer) Func) {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	slog.SetDefault(log.With(slog.String("function", function)))
	ctx := context.Background()
	r, err := NewRunnerFromEnv(ctx, log, false)
	if err == nil && r.cfg.ArchiveBucket == "" {
		err = errors.New("ARCHIVE_BUCKET is not set")
	}
	var awsCfg aws.Config
	if err == nil {
		awsCfg, err = config.LoadDefaultConfig(ctx)
	}
	if err != nil {
		log.Error("configuration", slog.String("function", function), slog.String("error", err.Error()))
		lambda.Start(func(context.Context, json.RawMessage) (any, error) {
			return nil, LambdaError(&Error{Type: Internal, Message: "configuration: " + err.Error()})
		})
		return
	}
	pathStyle := strings.EqualFold(os.Getenv("S3_USE_PATH_STYLE"), "true")
	rs := NewRestorer(r, s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = pathStyle }))
	lambda.StartHandler(r.Handler(function, pick(rs)))
}

// RestoreEvent is the restore function's event. The archive is named by
// its key, or by accessId and dataSourceName with optionally versionJobId
// (the SDS version or the download job) or date (YYYY-MM-DD); without
// either, the newest archive is taken.
type RestoreEvent struct {
	Action            string `json:"action"` // prepare or load
	ArchiveKey        string `json:"archiveKey,omitempty"`
	AccessID          string `json:"accessId,omitempty"`
	DataSourceName    string `json:"dataSourceName,omitempty"`
	VersionJobID      string `json:"versionJobId,omitempty"`
	Date              string `json:"date,omitempty"`
	TargetName        string `json:"targetName,omitempty"` // default: the archived name
	Staging           bool   `json:"staging,omitempty"`
	Public            bool   `json:"public,omitempty"`
	Force             bool   `json:"force,omitempty"` // restore an unverified archive
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
	// Load only: the state machine's retry number and when the state was
	// entered, so that a retried load adopts the job an earlier attempt
	// may have created instead of loading twice.
	RetryCount int    `json:"retryCount,omitempty"`
	EnteredAt  string `json:"enteredAt,omitempty"`
}

// ArchiveRef describes the archive chosen for a restore.
type ArchiveRef struct {
	Bucket         string   `json:"bucket"`
	Key            string   `json:"key"`
	ManifestKey    string   `json:"manifestKey"`
	AccessID       string   `json:"accessId"`
	DataSourceName string   `json:"dataSourceName"`
	JobID          string   `json:"jobId"`
	Bytes          int64    `json:"bytes"`
	EntityCount    int64    `json:"entityCount"`
	SHA256         string   `json:"sha256"`
	Verified       bool     `json:"verified"`
	Problems       []string `json:"verificationProblems,omitempty"`
}

// RestorePlan is what prepare returns: the archive, and whether the target
// exists (then its published version is backed up before the load).
type RestorePlan struct {
	Archive        ArchiveRef `json:"archive"`
	TargetName     string     `json:"targetName"`
	TargetExists   bool       `json:"targetExists"`
	TargetAccessID string     `json:"targetAccessId,omitempty"`
}

// JobState is the chained state of a load, publish or rollback job: what
// restore (load), publish and rollback return and loadstatus reads and
// returns updated.
type JobState struct {
	Operation         string `json:"operation"` // load, publish or rollback
	DataSourceName    string `json:"dataSourceName"`
	AccessID          string `json:"accessId,omitempty"` // known once a load completes
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
	JobID             string `json:"jobId"`
	StatusURL         string `json:"statusUrl"`
	Status            string `json:"status"`
	RequestedAt       string `json:"requestedAt"`
	// ArchiveKey: the archive a load streams; an aborted load's failed
	// output is kept beside it, at FailedOutputKey.
	ArchiveKey           string `json:"archiveKey,omitempty"`
	TotalEntityCount     int64  `json:"totalEntityCount"`
	ProcessedEntityCount int64  `json:"processedEntityCount"`
	FailedEntityCount    int64  `json:"failedEntityCount"`
	ErrorMessage         string `json:"errorMessage,omitempty"`
	FailedOutputKey      string `json:"failedOutputKey,omitempty"`
	PollCount            int    `json:"pollCount"`
	NextWaitSeconds      int    `json:"nextWaitSeconds"`
	DeadlinePassed       bool   `json:"deadlinePassed"`
}

// Restore prepares a restore (action prepare: choose the archive, check it,
// look up the target; nothing is sent) or starts its load (action load).
func (rs *Restorer) Restore(ctx context.Context, raw []byte) (any, error) {
	var ev RestoreEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	if ev.Staging && ev.Public {
		return nil, invalid("a staged restore cannot be made public; publish it, then set it public")
	}
	switch ev.Action {
	case ActionPrepare:
		return rs.prepare(ctx, ev)
	case ActionLoad:
		return rs.load(ctx, ev)
	}
	return nil, invalid("field \"action\" must be %q or %q, got %q", ActionPrepare, ActionLoad, truncate(ev.Action, 40))
}

func (rs *Restorer) prepare(ctx context.Context, ev RestoreEvent) (*RestorePlan, error) {
	ref, err := rs.resolve(ctx, ev)
	if err != nil {
		return nil, err
	}
	target := ev.TargetName
	if target == "" {
		target = ref.DataSourceName
	}
	if err := sds.ValidateName(target); err != nil {
		return nil, invalid("field \"targetName\": %v", err)
	}
	plan := &RestorePlan{Archive: *ref, TargetName: target}
	err = rs.r.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) error {
		all, err := c.DataSources(ctx)
		if err != nil {
			return err
		}
		for _, d := range all {
			if strings.EqualFold(d.Name, target) && d.AccessID != "" {
				plan.TargetExists, plan.TargetAccessID = true, d.AccessID
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// resolve finds the archive an event names and checks it may be restored:
// its manifest is in place and describes it, and it is verified unless
// force is set.
func (rs *Restorer) resolve(ctx context.Context, ev RestoreEvent) (*ArchiveRef, error) {
	var m *archive.Manifest
	var mkey string
	var err error
	switch {
	case ev.ArchiveKey != "":
		if ev.AccessID != "" || ev.DataSourceName != "" || ev.VersionJobID != "" || ev.Date != "" {
			return nil, invalid("give archiveKey, or accessId and dataSourceName (with versionJobId or date), not both")
		}
		if !strings.HasPrefix(ev.ArchiveKey, rs.r.cfg.ArchivePrefix) || !strings.HasSuffix(ev.ArchiveKey, ".xml") || strings.Contains(ev.ArchiveKey, "..") {
			return nil, invalid("field \"archiveKey\" %q is not an archive under %q (…/<jobId>.xml)", truncate(ev.ArchiveKey, 200), rs.r.cfg.ArchivePrefix)
		}
		mkey = ev.ArchiveKey + ".manifest.json"
		if m, err = rs.manifest(ctx, mkey); err != nil {
			return nil, err
		}
	default:
		if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
			return nil, err
		}
		if ev.VersionJobID != "" && ev.Date != "" {
			return nil, invalid("give versionJobId or date, not both")
		}
		if ev.VersionJobID != "" {
			if err := validateJobID(ev.VersionJobID); err != nil {
				return nil, err
			}
		}
		if ev.Date != "" {
			if _, err := time.Parse(time.DateOnly, ev.Date); err != nil {
				return nil, invalid("field \"date\" %q: want YYYY-MM-DD", truncate(ev.Date, 40))
			}
		}
		if m, mkey, err = rs.find(ctx, ev); err != nil {
			return nil, err
		}
	}
	ref := &ArchiveRef{Bucket: rs.r.cfg.ArchiveBucket, Key: m.Key, ManifestKey: mkey, AccessID: m.AccessID,
		DataSourceName: m.DataSourceName, JobID: m.JobID, Bytes: m.Bytes, EntityCount: m.EntityCount,
		SHA256: m.SHA256, Verified: m.Verified, Problems: m.Problems}
	sum, herr := hex.DecodeString(m.SHA256)
	switch {
	case m.Key != strings.TrimSuffix(mkey, ".manifest.json") || m.Bucket != rs.r.cfg.ArchiveBucket:
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s names s3://%s/%s, not its own archive; nothing was loaded", mkey, m.Bucket, m.Key)}
	case herr != nil || len(sum) != sha256.Size || m.Bytes <= 0:
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s has no usable sha256 or size; nothing was loaded", mkey)}
	case sds.ValidateName(m.DataSourceName) != nil:
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s names no valid data source; nothing was loaded", mkey)}
	case !m.Verified && !ev.Force:
		return nil, &Error{Type: ArchiveUnverified, Message: fmt.Sprintf("archive s3://%s/%s is not verified (%s); nothing was loaded. Pass force: true to restore it anyway",
			ref.Bucket, ref.Key, strings.Join(m.Problems, "; "))}
	}
	return ref, nil
}

func (rs *Restorer) manifest(ctx context.Context, mkey string) (*archive.Manifest, error) {
	out, err := rs.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &rs.r.cfg.ArchiveBucket, Key: &mkey})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || strings.Contains(err.Error(), "StatusCode: 404") {
			return nil, &Error{Type: InvalidInput, Message: fmt.Sprintf("no archive manifest at s3://%s/%s", rs.r.cfg.ArchiveBucket, mkey), Err: err}
		}
		return nil, &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("reading manifest %s: %v", mkey, err), Err: err}
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 1<<20+1))
	if err != nil {
		return nil, &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("reading manifest %s: %v", mkey, err), Err: err}
	}
	var m archive.Manifest
	if len(data) > 1<<20 || json.Unmarshal(data, &m) != nil {
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s is not a manifest; nothing was loaded", mkey)}
	}
	if m.FormatVersion != archive.ManifestFormatVersion {
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s has format version %d, want %d", mkey, m.FormatVersion, archive.ManifestFormatVersion)}
	}
	return &m, nil
}

var archiveDate = regexp.MustCompile(`/(\d{4})/(\d{2})/(\d{2})/[^/]+\.xml\.manifest\.json$`)

// find chooses among a data source's archives: the newest one matching the
// version or date; verified ones first unless force is set.
func (rs *Restorer) find(ctx context.Context, ev RestoreEvent) (*archive.Manifest, string, error) {
	prefix := rs.r.cfg.ArchivePrefix + ev.AccessID + "/" + ev.DataSourceName + "/"
	if ev.Date != "" {
		prefix += strings.ReplaceAll(ev.Date, "-", "/") + "/"
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(rs.s3, &s3.ListObjectsV2Input{Bucket: &rs.r.cfg.ArchiveBucket, Prefix: &prefix})
	for p.HasMorePages() && len(keys) < maxManifestsScanned {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, "", &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("listing s3://%s/%s: %v", rs.r.cfg.ArchiveBucket, prefix, err), Err: err}
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); archiveDate.MatchString(k) {
				keys = append(keys, k)
			}
		}
	}
	var best *archive.Manifest
	var bestKey string
	for _, k := range keys {
		m, err := rs.manifest(ctx, k)
		if err != nil {
			var te *Error
			if errors.As(err, &te) && te.Type == ArchiveUnavailable {
				return nil, "", err
			}
			continue // a broken manifest is no candidate
		}
		if ev.VersionJobID != "" && !strings.EqualFold(m.VersionJobID, ev.VersionJobID) && !strings.EqualFold(m.JobID, ev.VersionJobID) {
			continue
		}
		better := best == nil ||
			(m.Verified && !best.Verified && !ev.Force) ||
			(m.Verified == best.Verified || ev.Force) && m.FinishedAt.After(best.FinishedAt)
		if better {
			best, bestKey = m, k
		}
	}
	if best == nil {
		what := "any version"
		if ev.VersionJobID != "" {
			what = "version " + ev.VersionJobID
		} else if ev.Date != "" {
			what = "date " + ev.Date
		}
		return nil, "", &Error{Type: InvalidInput, Message: fmt.Sprintf("no archive of %s/%s for %s under s3://%s/%s", ev.AccessID, ev.DataSourceName, what, rs.r.cfg.ArchiveBucket, prefix)}
	}
	return best, bestKey, nil
}

// load streams the archive into a Load Data Source job. The bytes are
// hashed on the way: if they do not match the manifest's sha256 the
// stream fails at its end, before the upload completes, so SDS never
// receives a whole body and creates no job.
func (rs *Restorer) load(ctx context.Context, ev RestoreEvent) (*JobState, error) {
	ref, err := rs.resolve(ctx, ev)
	if err != nil {
		return nil, err
	}
	target := ev.TargetName
	if target == "" {
		target = ref.DataSourceName
	}
	if err := sds.ValidateName(target); err != nil {
		return nil, invalid("field \"targetName\": %v", err)
	}
	op := sds.LoadComplete
	desc := "DataSourceComplete"
	if ev.Staging {
		op, desc = sds.LoadCompleteStaging, "DataSourceCompleteStaging"
	}
	now := rs.r.now()
	st := &JobState{Operation: OpLoad, DataSourceName: target, MasterKeySecretID: ev.MasterKeySecretID,
		Status: StatusPending, RequestedAt: formatTime(now), ArchiveKey: ref.Key, NextWaitSeconds: rs.r.nextWait(0)}
	err = rs.r.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) error {
		if ev.RetryCount > 0 {
			// An earlier attempt may have sent the whole body and lost the
			// answer: adopt its job rather than load a second time.
			since, err := parseStateTime("enteredAt", ev.EnteredAt)
			if err != nil {
				return err
			}
			jobs, err := c.ListJobs(ctx)
			if err != nil {
				return err
			}
			if j := loadJobSince(jobs, desc, target, since); j != nil {
				st.JobID, st.Status = j.ID, reportStatus(j.Status)
				st.StatusURL = sds.StripLink(j.StatusURL())
				if st.StatusURL == "" {
					st.StatusURL = strings.TrimRight(rs.r.cfg.SDSBaseURL, "/") + "/Dataflows/LoadDataSource/" + j.ID
				}
				return nil
			}
		}
		obj, err := rs.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &ref.Bucket, Key: &ref.Key})
		if err != nil {
			return &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("reading s3://%s/%s: %v", ref.Bucket, ref.Key, err), Err: err}
		}
		defer obj.Body.Close()
		if n := aws.ToInt64(obj.ContentLength); obj.ContentLength != nil && n != ref.Bytes {
			return &Error{Type: IntegrityError, Message: fmt.Sprintf("archive s3://%s/%s has %d bytes, its manifest %d; nothing was loaded", ref.Bucket, ref.Key, n, ref.Bytes)}
		}
		body := &hashedReader{r: obj.Body, h: sha256.New(), want: ref.SHA256}
		job, err := c.Load(ctx, sds.LoadRequest{Name: target, Operation: op, Public: ev.Public,
			Body: body, Size: ref.Bytes, Entities: ref.EntityCount})
		if body.mismatch.Load() {
			return &Error{Type: IntegrityError, Message: fmt.Sprintf("archive s3://%s/%s does not match its manifest's sha256; the upload was abandoned before it completed, nothing was loaded", ref.Bucket, ref.Key)}
		}
		if err != nil {
			return err
		}
		st.JobID, st.Status = job.ID, reportStatus(job.Status)
		st.StatusURL = sds.StripLink(job.StatusURL())
		st.TotalEntityCount = job.TotalEntityCount
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// loadJobSince returns the newest listed load job of the given type for
// name created at or after since. No margin for clock skew: adopting an
// earlier restore's job would report a load that did not happen.
func loadJobSince(jobs []sds.Job, desc, name string, since time.Time) *sds.Job {
	var best *sds.Job
	for i := range jobs {
		j := &jobs[i]
		if !strings.EqualFold(j.Description, desc) || !strings.EqualFold(strings.TrimSpace(j.Name), name) ||
			j.CreatedDate == nil || j.CreatedDate.Before(since.Truncate(time.Second)) {
			continue
		}
		if best == nil || j.CreatedDate.After(*best.CreatedDate) {
			best = j
		}
	}
	return best
}

// hashedReader passes the archive through and, at its end, fails instead
// of reporting io.EOF when the bytes read do not hash to want.
type hashedReader struct {
	r        io.Reader
	h        hash.Hash
	want     string
	mismatch atomic.Bool // read by the caller after the upload ends
}

func (h *hashedReader) Read(p []byte) (int, error) {
	if h.mismatch.Load() {
		return 0, errors.New("archive does not match its manifest")
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(h.h.Sum(nil)) != strings.ToLower(h.want) {
		h.mismatch.Store(true)
		return 0, errors.New("archive does not match its manifest")
	}
	return n, err
}

// VersionEvent asks to publish a data source's staged version (publish) or
// to roll it back to a prior version (rollback; jobId names the version).
type VersionEvent struct {
	AccessID          string `json:"accessId,omitempty"` // publish only
	DataSourceName    string `json:"dataSourceName"`
	JobID             string `json:"jobId,omitempty"` // rollback only
	Confirm           string `json:"confirm,omitempty"`
	MasterKeySecretID string `json:"masterKeySecretId,omitempty"`
}

// Publish starts publishing a data source's staged version.
func (rs *Restorer) Publish(ctx context.Context, raw []byte) (any, error) {
	var ev VersionEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
		return nil, err
	}
	if ev.JobID != "" {
		return nil, invalid("publish takes no jobId: it publishes the staged version")
	}
	return rs.startVersionJob(ctx, ev, OpPublish, func(c *sds.Client) (*sds.Job, error) {
		return c.PublishStaged(ctx, sds.DataSource{AccessID: ev.AccessID, Name: ev.DataSourceName})
	})
}

// Rollback starts a rollback to one of a data source's prior versions.
// confirm must repeat the name: the published version is replaced.
func (rs *Restorer) Rollback(ctx context.Context, raw []byte) (any, error) {
	var ev VersionEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := sds.ValidateName(ev.DataSourceName); err != nil {
		return nil, invalid("field \"dataSourceName\": %v", err)
	}
	if ev.Confirm != ev.DataSourceName {
		return nil, invalid("field \"confirm\" must repeat dataSourceName exactly; nothing was rolled back")
	}
	if err := validateJobID(ev.JobID); err != nil {
		return nil, err
	}
	return rs.startVersionJob(ctx, ev, OpRollback, func(c *sds.Client) (*sds.Job, error) {
		return c.Rollback(ctx, ev.DataSourceName, ev.JobID)
	})
}

func (rs *Restorer) startVersionJob(ctx context.Context, ev VersionEvent, op string, start func(*sds.Client) (*sds.Job, error)) (*JobState, error) {
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	var job *sds.Job
	err := rs.r.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) (err error) {
		job, err = start(c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &JobState{Operation: op, DataSourceName: ev.DataSourceName, AccessID: ev.AccessID,
		MasterKeySecretID: ev.MasterKeySecretID, JobID: job.ID, StatusURL: sds.StripLink(job.StatusURL()),
		Status: reportStatus(job.Status), RequestedAt: formatTime(rs.r.now()), NextWaitSeconds: rs.r.nextWait(0)}, nil
}

// LoadStatus reads the status of a load, publish or rollback job. A
// completed load or rollback names the data source's accessId (a data
// source created by the load has a new one); an aborted load's failed
// output is copied into S3 beside its archive.
func (rs *Restorer) LoadStatus(ctx context.Context, raw []byte) (any, error) {
	var st JobState
	if err := decodeStrict(raw, &st); err != nil {
		return nil, err
	}
	if !slices.Contains([]string{OpLoad, OpPublish, OpRollback}, st.Operation) {
		return nil, invalid("field \"operation\" must be %q, %q or %q, got %q", OpLoad, OpPublish, OpRollback, truncate(st.Operation, 40))
	}
	if err := sds.ValidateName(st.DataSourceName); err != nil {
		return nil, invalid("field \"dataSourceName\": %v", err)
	}
	if err := validateJobID(st.JobID); err != nil {
		return nil, err
	}
	if err := validateSecretID(st.MasterKeySecretID); err != nil {
		return nil, err
	}
	if st.StatusURL == "" {
		return nil, invalid("field \"statusUrl\" is missing")
	}
	requested, err := parseStateTime("requestedAt", st.RequestedAt)
	if err != nil {
		return nil, err
	}
	if st.ArchiveKey != "" && (!strings.HasPrefix(st.ArchiveKey, rs.r.cfg.ArchivePrefix) || strings.Contains(st.ArchiveKey, "..")) {
		return nil, invalid("field \"archiveKey\" is not under %q", rs.r.cfg.ArchivePrefix)
	}
	err = rs.r.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) error {
		job, err := c.JobStatus(ctx, st.StatusURL)
		if err != nil {
			return err
		}
		if !strings.EqualFold(job.ID, st.JobID) {
			return &Error{Type: JobAborted, Message: fmt.Sprintf("the status link reports job %s, not %s job %s", job.ID, st.Operation, st.JobID)}
		}
		st.Status = reportStatus(job.Status)
		st.TotalEntityCount, st.ProcessedEntityCount, st.FailedEntityCount = job.TotalEntityCount, job.ProcessedEntityCount, job.FailedEntityCount
		switch st.Status {
		case StatusCompleted:
			// A load must name the data source (its accessId may be new);
			// for publish and rollback the link is taken when given.
			ds, err := job.LoadedDataSource()
			switch {
			case err == nil:
				st.AccessID = ds.AccessID
			case st.Operation == OpLoad:
				return err
			}
		case StatusAborted:
			st.ErrorMessage = job.ErrorMessage
			if st.ErrorMessage == "" {
				st.ErrorMessage = "the service gave no error message"
			}
			if st.Operation == OpLoad && st.ArchiveKey != "" && job.FailedURL() != "" {
				key, err := rs.keepFailed(ctx, c, job, st.ArchiveKey)
				if err != nil {
					return err
				}
				st.FailedOutputKey = key
				st.ErrorMessage += "; the failed entities are kept at s3://" + rs.r.cfg.ArchiveBucket + "/" + key
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.PollCount++
	st.NextWaitSeconds, st.DeadlinePassed = 0, false
	if st.Status == StatusPending {
		st.NextWaitSeconds = rs.r.nextWait(st.PollCount)
		st.DeadlinePassed = rs.r.now().Sub(requested) > rs.r.cfg.JobDeadline
	}
	return &st, nil
}

// keepFailed streams an aborted load's failed output into S3 beside the
// archive: <archive without .xml>.load-<jobId>.failed.xml (or .txt).
func (rs *Restorer) keepFailed(ctx context.Context, c *sds.Client, job *sds.Job, archiveKey string) (string, error) {
	out, err := c.OpenFailedOutput(ctx, job)
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	ext, ctype := ".txt", "text/plain; charset=utf-8"
	if strings.Contains(out.ContentType, "xml") {
		ext, ctype = ".xml", "application/xml"
	}
	key := path.Clean(strings.TrimSuffix(archiveKey, ".xml")) + ".load-" + strings.ToLower(job.ID) + ".failed" + ext
	in := &s3.PutObjectInput{Bucket: &rs.r.cfg.ArchiveBucket, Key: &key, Body: out.Body, ContentType: &ctype}
	if kms := rs.r.cfg.ArchiveKMSKeyID; kms != "" {
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, &kms
	} else {
		in.ServerSideEncryption = types.ServerSideEncryptionAes256
	}
	up := manager.NewUploader(rs.s3, func(u *manager.Uploader) { u.Concurrency = 1 })
	if _, err := up.Upload(ctx, in); err != nil {
		return "", &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("keeping the failed output at s3://%s/%s: %v", rs.r.cfg.ArchiveBucket, key, c.Redact(err.Error())), Err: err}
	}
	return key, nil
}
