package task

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/sds"
)

// Actions of the restore function.
const (
	ActionPrepare = "prepare"
	ActionLoad    = "load"
)

// maxManifestsScanned bounds the manifests read when an archive is chosen
// by data source (newest first) and version or date.
const maxManifestsScanned = 1000

// RestoreEvent is the restore function's event. The archive is named by
// its key, or by accessId and dataSourceName with optionally versionJobId
// (the SDS version or the download job) or date (YYYY-MM-DD); without
// either, the newest archive is taken.
type RestoreEvent struct {
	Action         string `json:"action"` // prepare or load
	ArchiveKey     string `json:"archiveKey,omitempty"`
	AccessID       string `json:"accessId,omitempty"`
	DataSourceName string `json:"dataSourceName,omitempty"`
	VersionJobID   string `json:"versionJobId,omitempty"`
	Date           string `json:"date,omitempty"`
	TargetName     string `json:"targetName,omitempty"` // default: the archived name
	Staging        bool   `json:"staging,omitempty"`
	// Public, when given, is the visibility of the restored data source;
	// without it prepare takes the data source's own (RestorePlan.Public).
	Public *bool `json:"public,omitempty"`
	Force  bool  `json:"force,omitempty"` // restore an unverified or unrestorable archive
	// Drill: a restore drill's load, into a scratch data source (its
	// target must carry drill.ScratchPrefix, which other restores may not
	// use), never public, never staged.
	Drill             bool   `json:"drill,omitempty"`
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
	// Restorable is the manifest's: nil (unknown) for an archive made
	// before restorability was checked.
	Restorable      *bool    `json:"restorable,omitempty"`
	RestoreProblems []string `json:"restoreProblems,omitempty"`
}

// RestorePlan is what prepare returns: the archive, whether the target
// exists (then its published version is backed up before the load), and
// the visibility the restored data source ends with, with where that came
// from. A staged load cannot be public (SDS refuses it), so LoadPublic is
// what the load sets; a staged restore of a new data source that is to be
// public is made public after its publish.
type RestorePlan struct {
	Archive        ArchiveRef `json:"archive"`
	TargetName     string     `json:"targetName"`
	TargetExists   bool       `json:"targetExists"`
	TargetAccessID string     `json:"targetAccessId,omitempty"`
	Public         bool       `json:"public"`
	PublicFrom     string     `json:"publicFrom"`
	LoadPublic     bool       `json:"loadPublic"`
}

// Where a restore's visibility comes from (RestorePlan.PublicFrom).
const (
	PublicFromRequest    = "request"    // the event's public field
	PublicFromDataSource = "dataSource" // the existing target, as SDS lists it
	PublicFromCatalog    = "catalog"    // the archived data source's catalog record
	PublicFromNone       = "none"       // nothing recorded: private, SDS's default
)

// Restore prepares a restore (action prepare: choose the archive, check it,
// look up the target; nothing is sent) or starts its load (action load).
func (s *Service) Restore(ctx context.Context, raw []byte) (any, error) {
	var ev RestoreEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	if ev.Staging && ev.Public != nil && *ev.Public {
		return nil, invalid("a staged restore cannot be made public; publish it, then set it public")
	}
	switch ev.Action {
	case ActionPrepare:
		return s.prepare(ctx, ev)
	case ActionLoad:
		return s.load(ctx, ev)
	}
	return nil, invalid("field \"action\" must be %q or %q, got %q", ActionPrepare, ActionLoad, truncate(ev.Action, 40))
}

func (s *Service) prepare(ctx context.Context, ev RestoreEvent) (*RestorePlan, error) {
	ref, target, err := s.resolveTarget(ctx, ev)
	if err != nil {
		return nil, err
	}
	plan := &RestorePlan{Archive: *ref, TargetName: target}
	var targetPublic bool
	err = s.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) error {
		all, err := c.DataSources(ctx)
		if err != nil {
			return err
		}
		if d, ok := byName(all, target); ok {
			plan.TargetExists, plan.TargetAccessID, targetPublic = true, d.AccessID, d.IsPublic
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case ev.Public != nil:
		plan.Public, plan.PublicFrom = *ev.Public, PublicFromRequest
	case ev.Drill:
		// A drill's scratch data source is private, whatever it restores.
		plan.PublicFrom = PublicFromNone
	case plan.TargetExists:
		// A complete load sets the visibility afresh (SDS's default is
		// private): keep what the data source has now. A publish of a
		// staged version keeps it anyway.
		plan.Public, plan.PublicFrom = targetPublic, PublicFromDataSource
	case strings.EqualFold(target, ref.DataSourceName):
		if plan.Public, plan.PublicFrom, err = s.recordedPublic(ctx, ref); err != nil {
			return nil, err
		}
	default:
		// A copy under another name is a new data source: private unless asked.
		plan.PublicFrom = PublicFromNone
	}
	plan.LoadPublic = plan.Public && !ev.Staging
	return plan, nil
}

// recordedPublic is the visibility the catalog recorded for the archived
// data source (discover sees it every night, set public records it). A
// catalog that cannot be read fails the restore rather than silently
// restoring a public data source as private.
func (s *Service) recordedPublic(ctx context.Context, ref *ArchiveRef) (bool, string, error) {
	if s.dep.Catalog == nil {
		return false, "", &Error{Type: Internal, Message: "restore: no catalog configured to read the recorded visibility from"}
	}
	rec, err := s.dep.Catalog.Get(ctx, catalog.ID{AccessID: ref.AccessID, Name: ref.DataSourceName})
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return false, PublicFromNone, nil
	case err != nil:
		e := catalogFailure(err)
		e.Message += `; nothing was loaded. Give "public": true or false to restore without the recorded visibility`
		return false, "", e
	case rec.Visibility == "":
		return false, PublicFromNone, nil
	}
	return rec.Visibility == catalog.Public, PublicFromCatalog, nil
}

// resolveTarget resolves the archive and names the data source it goes
// to: the archived one unless the event names another. Every precondition
// of the load is checked here, so that prepare refuses a restore that is
// certain to fail before the target is backed up.
func (s *Service) resolveTarget(ctx context.Context, ev RestoreEvent) (*ArchiveRef, string, error) {
	ref, err := s.resolve(ctx, ev)
	if err != nil {
		return nil, "", err
	}
	target := ev.TargetName
	if target == "" {
		target = ref.DataSourceName
	}
	if err := sds.ValidateName(target); err != nil {
		return nil, "", invalid("field \"targetName\": %v", err)
	}
	switch {
	case ev.Drill && !drill.IsScratch(target):
		return nil, "", invalid("a drill restores into a scratch data source (a name starting with %s), not %s", drill.ScratchPrefix, target)
	case ev.Drill && (ev.Public != nil && *ev.Public || ev.Staging):
		return nil, "", invalid("a drill's scratch data source is loaded published and private: public and staging must be false")
	case !ev.Drill && drill.IsScratch(target):
		return nil, "", invalid("field \"targetName\": names starting with %s are reserved for restore drills", drill.ScratchPrefix)
	}
	if err := loadRequest(ev, target, ref).Check(); err != nil {
		msg := err.Error()
		var se *sds.Error
		if errors.As(err, &se) {
			msg = se.Message
		}
		return nil, "", invalid("archive s3://%s/%s cannot be loaded into %s: %s; nothing was sent", ref.Bucket, ref.Key, target, msg)
	}
	return ref, target, nil
}

// loadRequest is the load ev asks for of ref, without its body.
func loadRequest(ev RestoreEvent, target string, ref *ArchiveRef) sds.LoadRequest {
	op := sds.LoadComplete
	if ev.Staging {
		op = sds.LoadCompleteStaging
	}
	return sds.LoadRequest{Name: target, Operation: op, Public: ev.Public != nil && *ev.Public, Size: ref.Bytes, Entities: ref.EntityCount}
}

// layout is the key layout of the archive bucket.
func (s *Service) layout() archive.Layout { return archive.NewLayout(s.cfg.ArchivePrefix) }

// resolve finds the archive an event names and checks it may be restored:
// its manifest is in place and describes it, and it is verified and not
// known to be unrestorable unless force is set.
func (s *Service) resolve(ctx context.Context, ev RestoreEvent) (*ArchiveRef, error) {
	var m *archive.Manifest
	var mkey string
	var err error
	switch {
	case ev.ArchiveKey != "":
		if ev.AccessID != "" || ev.DataSourceName != "" || ev.VersionJobID != "" || ev.Date != "" {
			return nil, invalid("give archiveKey, or accessId and dataSourceName (with versionJobId or date), not both")
		}
		r, err := s.layout().ParseKey(ev.ArchiveKey)
		if err != nil {
			return nil, invalid("field \"archiveKey\": %v", err)
		}
		mkey = s.layout().ManifestKey(r)
		if m, err = s.manifest(ctx, mkey); err != nil {
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
		if m, mkey, err = s.find(ctx, ev); err != nil {
			return nil, err
		}
	}
	ref := &ArchiveRef{Bucket: s.cfg.ArchiveBucket, Key: m.Key, ManifestKey: mkey, AccessID: m.AccessID,
		DataSourceName: m.DataSourceName, JobID: m.JobID, Bytes: m.Bytes, EntityCount: m.EntityCount,
		SHA256: m.SHA256, Verified: m.Verified, Problems: m.Problems, Restorable: m.Restorable, RestoreProblems: m.RestoreProblems}
	key := strings.TrimSuffix(mkey, archive.ManifestSuffix)
	if err := s.layout().CheckManifest(*m, s.cfg.ArchiveBucket, key); err != nil {
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s does not describe its archive (%v); nothing was loaded", mkey, err)}
	}
	if !m.Verified && !ev.Force {
		return nil, &Error{Type: ArchiveUnverified, Message: fmt.Sprintf("archive s3://%s/%s is not verified (%s); nothing was loaded. Pass force: true to restore it anyway",
			ref.Bucket, ref.Key, strings.Join(m.Problems, "; "))}
	}
	if m.Restorable != nil && !*m.Restorable && !ev.Force {
		return nil, &Error{Type: ArchiveUnrestorable, Message: fmt.Sprintf("archive s3://%s/%s breaks the documented load rules, so SDS would refuse it (%s); nothing was loaded. Pass force: true to send it to the load anyway",
			ref.Bucket, ref.Key, strings.Join(m.RestoreProblems, "; "))}
	}
	return ref, nil
}

func (s *Service) manifest(ctx context.Context, mkey string) (*archive.Manifest, error) {
	sm, err := archive.ReadManifest(ctx, s.dep.Objects, s.cfg.ArchiveBucket, mkey)
	switch {
	case errors.Is(err, archive.ErrNoManifest):
		return nil, &Error{Type: InvalidInput, Message: fmt.Sprintf("no archive manifest at s3://%s/%s", s.cfg.ArchiveBucket, mkey), Err: err}
	case errors.Is(err, archive.ErrBadManifest):
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s is not a manifest; nothing was loaded", mkey), Err: err}
	case err != nil:
		return nil, &Error{Type: ArchiveUnavailable, Message: err.Error(), Err: err}
	}
	if sm.FormatVersion != archive.ManifestFormatVersion {
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("manifest %s has format version %d, want %d", mkey, sm.FormatVersion, archive.ManifestFormatVersion)}
	}
	return &sm.Manifest, nil
}

// find chooses among a data source's archives: the newest one matching the
// version or date; verified and restorable ones first unless force is set,
// so that the newest archive that would be refused gives way to the newest
// one that would not. The days are walked newest first and the walk stops
// at the first day that holds such a match (any match with force), so the newest archive costs a few
// listings whatever the number of archives; at most maxManifestsScanned
// manifests are read.
func (s *Service) find(ctx context.Context, ev RestoreEvent) (*archive.Manifest, string, error) {
	l := s.layout()
	var best *archive.Manifest
	var bestKey string
	read := 0
	consider := func(_ time.Time, keys []string) (bool, error) {
		for _, k := range keys {
			if read == maxManifestsScanned {
				return true, nil
			}
			read++
			m, err := s.manifest(ctx, k)
			if err != nil {
				var te *Error
				if errors.As(err, &te) && te.Type == ArchiveUnavailable {
					return false, err
				}
				continue // a broken manifest is no candidate
			}
			if ev.VersionJobID != "" && !strings.EqualFold(m.VersionJobID, ev.VersionJobID) && !strings.EqualFold(m.JobID, ev.VersionJobID) {
				continue
			}
			// A staged version was never what the data source answered:
			// it is restored only when named by its version.
			if m.Staging && ev.VersionJobID == "" {
				continue
			}
			if better(m, best, ev.Force) {
				best, bestKey = m, k
			}
		}
		return best != nil && (ev.Force || usable(best)), nil
	}
	var err error
	prefix := l.DataSourcePrefix(ev.AccessID, ev.DataSourceName)
	if ev.Date != "" {
		day, _ := time.Parse(time.DateOnly, ev.Date)
		prefix = l.DayPrefix(ev.AccessID, ev.DataSourceName, day)
		var keys []string
		if keys, err = l.ManifestsOf(ctx, s.dep.Objects, s.cfg.ArchiveBucket, ev.AccessID, ev.DataSourceName, day); err == nil {
			_, err = consider(day, keys)
		}
	} else {
		_, err = l.NewestFirst(ctx, s.dep.Objects, s.cfg.ArchiveBucket, ev.AccessID, ev.DataSourceName, consider)
	}
	if err != nil {
		return nil, "", err
	}
	if best == nil {
		what := "any version"
		if ev.VersionJobID != "" {
			what = "version " + ev.VersionJobID
		} else if ev.Date != "" {
			what = "date " + ev.Date
		}
		among := ""
		if read == maxManifestsScanned {
			among = fmt.Sprintf(" among the newest %d archives (name it by date or archiveKey)", maxManifestsScanned)
		}
		return nil, "", &Error{Type: InvalidInput, Message: fmt.Sprintf("no archive of %s/%s for %s under s3://%s/%s%s", ev.AccessID, ev.DataSourceName, what, s.cfg.ArchiveBucket, prefix, among)}
	}
	return best, bestKey, nil
}

// usable: an archive a restore takes without force, verified and not
// known to be unrestorable.
func usable(m *archive.Manifest) bool {
	return m.Verified && (m.Restorable == nil || *m.Restorable)
}

// better says whether m is preferred to best as the archive to restore:
// without force, a usable archive over one that is not (so that a restore
// that names no archive falls back to the newest usable one), then the
// newer; with force, the newer.
func better(m, best *archive.Manifest, force bool) bool {
	switch {
	case best == nil:
		return true
	case !force && usable(m) != usable(best):
		return usable(m)
	case !force && m.Verified != best.Verified:
		return m.Verified
	}
	return m.FinishedAt.After(best.FinishedAt)
}

// load streams the archive into a Load Data Source job. The bytes are
// hashed on the way: if they do not match the manifest's sha256 the
// stream fails at its end, before the upload completes, so SDS never
// receives a whole body and creates no job.
func (s *Service) load(ctx context.Context, ev RestoreEvent) (*JobState, error) {
	ref, target, err := s.resolveTarget(ctx, ev)
	if err != nil {
		return nil, err
	}
	desc := "DataSourceComplete"
	if ev.Staging {
		desc = "DataSourceCompleteStaging"
	}
	now := s.now()
	st := &JobState{Operation: OpLoad, DataSourceName: target, MasterKeySecretID: ev.MasterKeySecretID,
		Status: StatusPending, RequestedAt: formatTime(now), ArchiveKey: ref.Key, NextWaitSeconds: s.nextWait(0)}
	err = s.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) error {
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
					st.StatusURL = strings.TrimRight(s.cfg.SDSBaseURL, "/") + "/Dataflows/LoadDataSource/" + j.ID
				}
				return nil
			}
		}
		obj, err := s.dep.Objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &ref.Bucket, Key: &ref.Key})
		if err != nil {
			return &Error{Type: ArchiveUnavailable, Message: fmt.Sprintf("reading s3://%s/%s: %v", ref.Bucket, ref.Key, err), Err: err}
		}
		defer obj.Body.Close()
		if n := aws.ToInt64(obj.ContentLength); obj.ContentLength != nil && n != ref.Bytes {
			return &Error{Type: IntegrityError, Message: fmt.Sprintf("archive s3://%s/%s has %d bytes, its manifest %d; nothing was loaded", ref.Bucket, ref.Key, n, ref.Bytes)}
		}
		body := &hashedReader{r: obj.Body, h: sha256.New(), want: ref.SHA256}
		lr := loadRequest(ev, target, ref)
		lr.Body = body
		job, err := c.Load(ctx, lr)
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
