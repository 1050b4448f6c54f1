package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/catalog"
	"github.com/sdsops/sdsops/internal/conversion"
	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
)

// Operations record knows.
const (
	RecordBackup    = "backup"
	RecordDelete    = "delete"
	RecordSetPublic = "setpublic"
	// RecordRestore: an archive was loaded and published; the data source
	// (perhaps under a new accessId) exists again with a version not yet
	// archived.
	RecordRestore = "restore"
	// RecordGate asks whether the run must stop starting backups: the job
	// limits answered 429 since it began.
	RecordGate = "gate"
)

// Outcomes of record, the status of a nightly item.
const (
	StatusArchived  = "Archived"
	StatusFailed    = "Failed"
	StatusThrottled = "Throttled" // 429: the night's remaining work is carried over
	StatusNeedsKey  = "NeedsKey"  // 401: recorded once, retried when the key source changes
	StatusSkipped   = "Skipped"   // after a 429: carried over
	StatusRecorded  = "Recorded"
)

type recordEvent struct {
	Operation         string          `json:"operation"`
	AccessID          string          `json:"accessId"`
	DataSourceName    string          `json:"dataSourceName"`
	MasterKeySecretID string          `json:"masterKeySecretId"`
	RunStartedAt      string          `json:"runStartedAt"`
	Result            json.RawMessage `json:"result"`
	Failure           *struct {
		Error string `json:"Error"`
		Cause string `json:"Cause"`
	} `json:"failure"`
}

// backupOutcome is what record reads of a backup's output.
type backupOutcome struct {
	JobID        string `json:"jobId"`
	VersionJobID string `json:"versionJobId"`
	CreatedDate  string `json:"createdDate"`
	Key          string `json:"key"`
	SHA256       string `json:"sha256"`
	EntityCount  int64  `json:"entityCount"`
	Verified     *bool  `json:"verified"`
	IsStaging    bool   `json:"isStaging"`
	Public       *bool  `json:"public"`
	// Conversion is the backup's Convert step output: the GeoJSON beside the archive.
	Conversion *struct {
		GeoJSONKey string `json:"geojsonKey"`
	} `json:"conversion"`
}

// RecordResult is record's output: small, it is one item of the night.
type RecordResult struct {
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
	Status         string `json:"status"`
	Error          string `json:"error,omitempty"`
	// DamagedRecordKeptAt is where the damaged record this write replaced
	// was copied to.
	DamagedRecordKeptAt string `json:"damagedRecordKeptAt,omitempty"`
}

// GateResult tells a nightly item whether to skip its backup.
type GateResult struct {
	Skip bool `json:"skip"`
}

// decodeCatalogEvent decodes the event of an operation that needs the
// catalog. Unknown fields are let through, as json.Unmarshal does.
func (s *Service) decodeCatalogEvent(raw []byte, what string, v any) error {
	if err := checkRaw(raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return invalid("%s event: %v", what, err)
	}
	return nil
}

// Record writes an operation's outcome into the catalog.
func (s *Service) Record(ctx context.Context, raw []byte) (any, error) {
	var ev recordEvent
	if err := s.decodeCatalogEvent(raw, "record", &ev); err != nil {
		return nil, err
	}
	id := catalog.ID{AccessID: ev.AccessID, Name: ev.DataSourceName}
	if err := (sds.DataSource{AccessID: id.AccessID, Name: id.Name}).Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	out := RecordResult{AccessID: id.AccessID, DataSourceName: id.Name, Status: StatusRecorded}
	now := s.now().UTC()
	var res backupOutcome
	if len(ev.Result) > 0 && string(ev.Result) != "null" {
		if err := json.Unmarshal(ev.Result, &res); err != nil {
			return nil, invalid("record: result: %v", err)
		}
	}
	var mutate func(*catalog.Record) error
	switch {
	case ev.Operation == RecordGate:
		return s.gate(ctx, ev.RunStartedAt)
	case ev.Failure != nil:
		mutate, out = s.failure(ctx, ev, out, now)
		if mutate == nil {
			return out, nil
		}
	case ev.Operation == RecordBackup:
		if res.Verified != nil && !*res.Verified {
			return nil, invalid("record: the archive %s is not verified", res.Key)
		}
		if res.Key == "" || (res.VersionJobID != "" && sds.ValidateJobID(res.VersionJobID) != nil) {
			return nil, invalid("record: a backup result needs a key and, when given, a valid versionJobId")
		}
		m, err := s.verifiedArchive(ctx, id, res)
		if err != nil {
			return nil, err
		}
		out.Status = StatusArchived
		mutate = func(r *catalog.Record) error {
			if res.JobID != "" {
				created, err := time.Parse(time.RFC3339, res.CreatedDate)
				if err != nil {
					created = now
				}
				r.StartJob(res.JobID, created)
				r.EndJob(res.JobID)
			}
			if res.IsStaging || res.VersionJobID == "" {
				// A staged version is not the current one; and a result
				// that names no version (startdownload names the published
				// one it pinned) cannot say which version it verified.
				return nil
			}
			a := catalog.Archive{Version: res.VersionJobID, At: now, ArchiveKey: m.Key, SHA256: m.SHA256, EntityCount: m.EntityCount}
			if res.Conversion != nil {
				a.GeoJSONKey = res.Conversion.GeoJSONKey
			}
			r.Verified(a)
			return nil
		}
	case ev.Operation == RecordDelete:
		if res.IsStaging {
			return out, nil // the published version, and so the record, stay
		}
		mutate = func(r *catalog.Record) error {
			r.DeletedAt, r.PendingSince = now, time.Time{}
			return nil
		}
	case ev.Operation == RecordSetPublic:
		if res.Public == nil {
			return nil, invalid("record: a setpublic result needs public")
		}
		mutate = func(r *catalog.Record) error {
			r.Visibility = visibility(*res.Public)
			return nil
		}
	case ev.Operation == RecordRestore:
		mutate = func(r *catalog.Record) error {
			r.DeletedAt, r.LastError, r.LastErrorAt = time.Time{}, "", time.Time{}
			if res.Public != nil {
				r.Visibility = visibility(*res.Public)
			}
			if r.PendingSince.IsZero() {
				r.PendingSince = now
			}
			return nil
		}
	default:
		return nil, invalid("record: operation %q: want backup, delete, setpublic, restore or gate", ev.Operation)
	}
	// A damaged record is replaced, never silently: Repair keeps a copy
	// first, and the result and the log say where.
	_, kept, err := s.dep.Catalog.Repair(ctx, id, mutate)
	if kept != "" {
		out.DamagedRecordKeptAt = kept
		s.log.WarnContext(ctx, "damaged catalog record replaced; the damaged one is kept", slog.String("keptAt", kept))
	}
	if err != nil && !errors.Is(err, catalog.ErrIndexNotUpdated) {
		return nil, catalogFailure(err)
	}
	return out, nil
}

// verifiedArchive returns the manifest of the archive a backup result
// names, when the key is an archive of id in the layout, its manifest
// exists, describes it and says verified, and the result agrees with it:
// only such an archive may make the catalog call the data source up to
// date.
func (s *Service) verifiedArchive(ctx context.Context, id catalog.ID, res backupOutcome) (*archive.Manifest, error) {
	l := s.layout()
	r, err := l.ParseKey(res.Key)
	if err != nil {
		return nil, invalid("record: the backup result's key: %v", err)
	}
	if !strings.EqualFold(r.AccessID, id.AccessID) || !strings.EqualFold(r.DataSourceName, id.Name) {
		return nil, invalid("record: %s is an archive of %s/%s, not of %s", res.Key, r.AccessID, r.DataSourceName, id)
	}
	if res.JobID != "" && !strings.EqualFold(res.JobID, r.JobID) {
		return nil, invalid("record: %s is the archive of job %s, the result names job %s", res.Key, r.JobID, truncate(res.JobID, 64))
	}
	mkey := l.ManifestKey(r)
	sm, err := archive.ReadManifest(ctx, s.dep.Objects, s.cfg.ArchiveBucket, mkey)
	switch {
	case errors.Is(err, archive.ErrNoManifest):
		return nil, invalid("record: %s has no manifest: it is not a complete archive", res.Key)
	case errors.Is(err, archive.ErrBadManifest):
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("record: %v", err), Err: err}
	case err != nil:
		return nil, &Error{Type: ArchiveUnavailable, Message: err.Error(), Err: err}
	}
	m := sm.Manifest
	if err := l.CheckManifest(m, s.cfg.ArchiveBucket, res.Key); err != nil {
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("record: manifest %s does not describe its archive: %v", mkey, err)}
	}
	switch {
	case !m.Verified:
		return nil, invalid("record: the archive %s is not verified (%s)", res.Key, strings.Join(m.Problems, "; "))
	case res.SHA256 != "" && !strings.EqualFold(res.SHA256, m.SHA256):
		return nil, &Error{Type: IntegrityError, Message: fmt.Sprintf("record: the result's sha256 of %s is not its manifest's", res.Key)}
	case res.VersionJobID != "" && m.VersionJobID != "" && !strings.EqualFold(res.VersionJobID, m.VersionJobID):
		return nil, invalid("record: %s archives version %s, the result names version %s", res.Key, m.VersionJobID, res.VersionJobID)
	case res.Conversion != nil && res.Conversion.GeoJSONKey != archive.Beside(res.Key, conversion.GeoJSONSuffix):
		return nil, invalid("record: %q is not the GeoJSON of %s", truncate(res.Conversion.GeoJSONKey, 200), res.Key)
	}
	return &m, nil
}

// failure records a failed operation. A 429 stops the night and costs the
// data source nothing: it is carried over.
func (s *Service) failure(ctx context.Context, ev recordEvent, out RecordResult, now time.Time) (func(*catalog.Record) error, RecordResult) {
	errType, cause := ev.Failure.Error, ev.Failure.Cause
	out.Error = errType
	switch errType {
	case Throttled:
		out.Status = StatusThrottled
		if err := s.dep.Catalog.MarkThrottled(ctx, now); err != nil {
			s.log.WarnContext(ctx, "throttle mark not written", "error", err.Error())
		}
		return nil, out
	case Unauthorized:
		out.Status = StatusNeedsKey
		secret := ev.MasterKeySecretID
		if secret == "" {
			secret = s.cfg.MasterKeySecretID
		}
		return func(r *catalog.Record) error {
			r.NeedsKey, r.KeyRef = true, keyRef(secret)
			r.Failed("no configured master key opens this data source ("+keyRef(secret)+")", now)
			return nil
		}, out
	}
	out.Status = StatusFailed
	msg := errType
	if cause != "" {
		msg += ": " + truncate(cause, 500)
	}
	return func(r *catalog.Record) error {
		if ev.Operation == RecordBackup && r.PendingSince.IsZero() {
			r.PendingSince = now
		}
		r.Failed(msg, now)
		return nil
	}, out
}

// gate tells an item whether to start its backup: not once the job limits
// answered 429 during this run.
func (s *Service) gate(ctx context.Context, runStarted string) (any, error) {
	started, err := time.Parse(time.RFC3339Nano, runStarted)
	if err != nil {
		return nil, invalid("record: gate needs runStartedAt (RFC 3339)")
	}
	at, err := s.dep.Catalog.ThrottledAt(ctx)
	if err != nil {
		return nil, catalogFailure(err)
	}
	return GateResult{Skip: !at.IsZero() && !at.Before(started)}, nil
}

// visibility is the catalog's word for a data source's public flag.
func visibility(public bool) string {
	if public {
		return catalog.Public
	}
	return catalog.Private
}

// observeAndRevive is plan.Observe that also clears a deletion mark: the
// data source exists again.
func observeAndRevive(plan *nightly.Plan, it nightly.Item) func(*catalog.Record) error {
	obs := plan.Observe(it)
	return func(r *catalog.Record) error {
		r.DeletedAt = time.Time{}
		return obs(r)
	}
}
