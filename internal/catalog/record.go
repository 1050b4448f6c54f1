// Package catalog keeps one JSON record per SDS data source in S3, plus an
// index of all records: what sdsops knows about each data source (its last
// verified archive, visibility, errors, the download jobs it started).
//
// Every write is conditional: a record or the index is replaced only if it
// still has the ETag it had when read (If-Match), and created only if it does
// not exist yet (If-None-Match: *). A write that loses a race reads again and
// reapplies its change, so concurrent runs never lose each other's updates.
//
// Layout under the store's prefix:
//
//	catalog/v1/sources/{accessid}/{name}.json   one Record (lower-cased path)
//	catalog/v1/index.json                       the Index
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/sds"
)

// SchemaVersion is the version of the record and index formats written. A
// reader refuses a newer one rather than dropping fields it does not know.
const SchemaVersion = 1

// Visibility values of Record.Visibility. Empty means not known yet.
const (
	Public  = "public"
	Private = "private"
)

// jobHistory is how long started download jobs are kept in a record: longer
// than SDS's 24 h job window, so that a planner always sees every job that
// still counts against it.
const jobHistory = 48 * time.Hour

// maxJobs bounds the job list of one record whatever happens.
const maxJobs = 64

// Record is the catalog entry of one data source. Its JSON form is the
// documented, stable format: field names do not change within a
// SchemaVersion, and new fields are optional.
type Record struct {
	Schema   int    `json:"schema"`
	AccessID string `json:"accessId"`
	Name     string `json:"name"`

	// VerifiedVersion is the SDS job id of the published version whose
	// archive was verified; VerifiedAt is when.
	VerifiedVersion string    `json:"verifiedVersion,omitempty"`
	VerifiedAt      time.Time `json:"verifiedAt,omitzero"`
	ArchiveKey      string    `json:"archiveKey,omitempty"`
	GeoJSONKey      string    `json:"geojsonKey,omitempty"`
	SHA256          string    `json:"sha256,omitempty"` // of the archived export, lower-case hex
	EntityCount     int64     `json:"entityCount"`

	// Visibility is Public or Private as last seen or set; empty if unknown.
	Visibility string `json:"visibility,omitempty"`

	// LastError is the last failure of an operation on this data source,
	// cleared by the next success. It never holds a key.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`

	// NeedsKey: no configured master key opened the data source (401).
	// KeyRef names the key source that failed (a secret and its version,
	// never the key), so that the data source is retried once it changes.
	NeedsKey bool   `json:"needsKey"`
	KeyRef   string `json:"keyRef,omitempty"`

	// PendingSince is when the data source's current, not yet archived
	// state began (its first unarchived version); zero when up to date.
	PendingSince time.Time `json:"pendingSince,omitzero"`

	// Jobs are the SDS download jobs sdsops started for this data source
	// recently. SDS does not list download jobs, yet they count against the
	// account's job limits: this is where they are counted from.
	Jobs []Job `json:"jobs,omitempty"`

	FirstSeen time.Time `json:"firstSeen,omitzero"`
	LastSeen  time.Time `json:"lastSeen,omitzero"`
	// DeletedAt is when sdsops deleted the data source; cleared when it is
	// discovered again. Its archives stay.
	DeletedAt time.Time `json:"deletedAt,omitzero"`
	// LastDrill is the data source's last restore drill, if any.
	LastDrill *Drill `json:"lastDrill,omitempty"`
	// LastNight is what the last nightly run that saw the data source did
	// with it, as its report says.
	LastNight *Night `json:"lastNight,omitempty"`
	// Updated and Revision are set by the store on every write; Revision
	// grows by one per write.
	Updated  time.Time `json:"updated"`
	Revision int64     `json:"revision"`

	// etag is the stored object's ETag when the record was read or
	// written, for UpdateFrom.
	etag string
}

// Job is one SDS download job started by sdsops.
type Job struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Done: the job reached Completed or Aborted, or was given up on.
	Done bool `json:"done,omitempty"`
}

// Night is a data source's line of a nightly run's report.
type Night struct {
	Report string    `json:"report"` // the report's key
	At     time.Time `json:"at"`     // the run's start
	Status string    `json:"status"` // the report's status: Archived, UpToDate, Failed, CarriedOver, ...
	Error  string    `json:"error,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Outcomes of a restore drill (Drill.Outcome).
const (
	DrillSucceeded = "succeeded"
	DrillFailed    = "failed"
	// DrillSkipped: the drill did not start (no free data source slot, or
	// no room in the job budget); nothing was sent to SDS.
	DrillSkipped = "skipped"
)

// Drill is the record of a data source's last restore drill: its archive
// loaded into a scratch data source, checked, and the scratch deleted.
type Drill struct {
	At         time.Time `json:"at"`
	ArchiveKey string    `json:"archiveKey,omitempty"`
	// Jobs is the number of SDS jobs the drill started (its load and the
	// scratch data source's delete).
	Jobs    int      `json:"jobs"`
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons,omitempty"`
	// SucceededAt is when a drill of this data source last succeeded, and
	// TriedAt when one last started (succeeded or failed), this one or an
	// earlier one; zero if never. The next drills take the data sources
	// tried longest ago.
	SucceededAt time.Time `json:"succeededAt,omitzero"`
	TriedAt     time.Time `json:"triedAt,omitzero"`
}

// Drilled records a drill's result, carrying the time of the last
// successful one forward.
func (r *Record) Drilled(d Drill) {
	d.At = d.At.UTC()
	if r.LastDrill != nil {
		d.SucceededAt, d.TriedAt = r.LastDrill.SucceededAt, r.LastDrill.TriedAt
	}
	if d.Outcome != DrillSkipped {
		d.TriedAt = d.At
	}
	if d.Outcome == DrillSucceeded {
		d.SucceededAt = d.At
	}
	r.LastDrill = &d
}

// ID identifies a data source in the catalog: access id and name, compared
// case-insensitively as SDS does.
type ID struct {
	AccessID string
	Name     string
}

func (id ID) String() string { return id.AccessID + "/" + id.Name }

// Key is the comparison form of id.
func (id ID) Key() string { return strings.ToLower(id.AccessID + "/" + id.Name) }

// ID returns the record's identity.
func (r *Record) ID() ID { return ID{r.AccessID, r.Name} }

// StartJob records a download job started at created, dropping entries too
// old to matter.
func (r *Record) StartJob(id string, created time.Time) {
	r.Jobs = slices.DeleteFunc(r.Jobs, func(j Job) bool {
		return created.Sub(j.Created) > jobHistory || strings.EqualFold(j.ID, id)
	})
	r.Jobs = append(r.Jobs, Job{ID: id, Created: created.UTC()})
	if len(r.Jobs) > maxJobs {
		r.Jobs = r.Jobs[len(r.Jobs)-maxJobs:]
	}
}

// EndJob marks a recorded job as done; unknown ids are ignored.
func (r *Record) EndJob(id string) {
	for i := range r.Jobs {
		if strings.EqualFold(r.Jobs[i].ID, id) {
			r.Jobs[i].Done = true
		}
	}
}

// Verified records a verified archive of version and clears the pending
// state and the last error.
func (r *Record) Verified(a Archive) {
	r.VerifiedVersion, r.VerifiedAt = a.Version, a.At.UTC()
	r.ArchiveKey, r.GeoJSONKey, r.SHA256, r.EntityCount = a.ArchiveKey, a.GeoJSONKey, strings.ToLower(a.SHA256), a.EntityCount
	r.PendingSince = time.Time{}
	r.LastError, r.LastErrorAt = "", time.Time{}
	r.NeedsKey, r.KeyRef = false, ""
}

// Archive describes a verified archive for Record.Verified.
type Archive struct {
	Version     string // SDS job id of the archived version
	At          time.Time
	ArchiveKey  string
	GeoJSONKey  string
	SHA256      string
	EntityCount int64
}

// Failed records an error of an operation on the data source.
func (r *Record) Failed(msg string, at time.Time) {
	r.LastError, r.LastErrorAt = msg, at.UTC()
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ErrInvalidRecord: a record breaks the format (also returned for a
// mutation that would).
var ErrInvalidRecord = errors.New("invalid catalog record")

// validate checks the invariants every stored record keeps.
func (r *Record) validate(want ID) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidRecord, want, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Schema != SchemaVersion:
		return bad("schema %d, want %d", r.Schema, SchemaVersion)
	case r.ID().Key() != want.Key():
		return bad("record names %s", r.ID())
	case r.VerifiedVersion != "" && sds.ValidateJobID(r.VerifiedVersion) != nil:
		return bad("verified version is not a job id")
	case (r.VerifiedVersion == "") != r.VerifiedAt.IsZero():
		return bad("verified version and time must be set together")
	case r.SHA256 != "" && !sha256Pattern.MatchString(r.SHA256):
		return bad("sha256 must be 64 lower-case hex digits")
	case r.EntityCount < 0:
		return bad("negative entity count")
	case r.Visibility != "" && r.Visibility != Public && r.Visibility != Private:
		return bad("visibility %q, want %q or %q", r.Visibility, Public, Private)
	case len(r.Jobs) > maxJobs:
		return bad("%d jobs, at most %d", len(r.Jobs), maxJobs)
	case r.LastDrill != nil && !slices.Contains([]string{DrillSucceeded, DrillFailed, DrillSkipped}, r.LastDrill.Outcome):
		return bad("last drill's outcome %q, want %q, %q or %q", r.LastDrill.Outcome, DrillSucceeded, DrillFailed, DrillSkipped)
	case r.LastDrill != nil && (r.LastDrill.At.IsZero() || r.LastDrill.Jobs < 0):
		return bad("last drill needs a time and a job count of 0 or more")
	}
	return nil
}

// decodeRecord parses a stored record, refusing newer formats.
func decodeRecord(data []byte, want ID) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("%w %s: %v", ErrInvalidRecord, want, err)
	}
	if r.Schema > SchemaVersion {
		return Record{}, fmt.Errorf("%w %s: schema %d is newer than this sdsops (%d)", ErrInvalidRecord, want, r.Schema, SchemaVersion)
	}
	if err := r.validate(want); err != nil {
		return Record{}, err
	}
	return r, nil
}

// IndexEntry is the summary of one record kept in the index.
type IndexEntry struct {
	AccessID        string    `json:"accessId"`
	Name            string    `json:"name"`
	VerifiedVersion string    `json:"verifiedVersion,omitempty"`
	VerifiedAt      time.Time `json:"verifiedAt,omitzero"`
	PendingSince    time.Time `json:"pendingSince,omitzero"`
	Visibility      string    `json:"visibility,omitempty"`
	NeedsKey        bool      `json:"needsKey"`
	HasError        bool      `json:"hasError"`
	LastSeen        time.Time `json:"lastSeen,omitzero"`
	DeletedAt       time.Time `json:"deletedAt,omitzero"`
	LastDrill       *Drill    `json:"lastDrill,omitempty"`
	// LastNight is the status of the data source in the last night's report.
	LastNight string    `json:"lastNight,omitempty"`
	Updated   time.Time `json:"updated"`
	Revision  int64     `json:"revision"`
}

// Index lists every record, sorted by access id and name.
type Index struct {
	Schema      int          `json:"schema"`
	Updated     time.Time    `json:"updated"`
	DataSources []IndexEntry `json:"dataSources"`
	// Damaged lists the records the last nightly discovery or index
	// rebuild could not read; a record written since leaves the list.
	Damaged []Damaged `json:"damaged,omitempty"`
}

func entryOf(r Record) IndexEntry {
	e := IndexEntry{
		AccessID: r.AccessID, Name: r.Name,
		VerifiedVersion: r.VerifiedVersion, VerifiedAt: r.VerifiedAt, PendingSince: r.PendingSince,
		Visibility: r.Visibility, NeedsKey: r.NeedsKey, HasError: r.LastError != "",
		LastSeen: r.LastSeen, DeletedAt: r.DeletedAt, LastDrill: r.LastDrill, Updated: r.Updated, Revision: r.Revision,
	}
	if r.LastNight != nil {
		e.LastNight = r.LastNight.Status
	}
	return e
}

// merge puts the entries of recs into x, keeping whichever revision of a
// record is newer, so index writes arriving out of order never go back.
func (x *Index) merge(recs []Record) bool {
	changed := false
	for _, r := range recs {
		if n := len(x.Damaged); n > 0 {
			x.Damaged = slices.DeleteFunc(x.Damaged, func(d Damaged) bool { return ID{d.AccessID, d.Name}.Key() == r.ID().Key() })
			changed = changed || len(x.Damaged) != n
		}
		e := entryOf(r)
		i, found := slices.BinarySearchFunc(x.DataSources, r.ID().Key(), func(a IndexEntry, k string) int {
			return strings.Compare(ID{a.AccessID, a.Name}.Key(), k)
		})
		switch {
		case !found:
			x.DataSources = slices.Insert(x.DataSources, i, e)
			changed = true
		case x.DataSources[i].Revision < e.Revision:
			x.DataSources[i] = e
			changed = true
		}
	}
	return changed
}
