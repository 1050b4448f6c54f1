package sdsemu

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/loadrules"
)

// Limits from the "Geocode and Data Source Limits" page. The enterprise values are the defaults; a
// basic account would use 2 concurrent jobs, 50 jobs a day and 5 data sources.
const (
	DefaultMaxConcurrentJobs = 10
	DefaultMaxJobsPerDay     = 50
	DefaultMaxDataSources    = 25

	// MaxEntities is the documented maximum number of entities in a data source.
	MaxEntities = loadrules.MaxEntities

	// maxPriorVersions: a data source keeps up to two versions before the published one.
	maxPriorVersions = 2
	// maxPaddingBytes keeps a fixture from asking for absurd exports by mistake.
	maxPaddingBytes = 1 << 16

	jobsPerDayWindow = 24 * time.Hour
	jobListWindow    = 15 * 24 * time.Hour
)

// Config describes the emulated service: who exists, how fast jobs run, which limits apply and
// which faults are armed at start.
type Config struct {
	// Accounts are the Bing Maps accounts and their data sources.
	Accounts []Account

	// JobDuration is how long a delete or set-public job stays Pending, measured on Now.
	// Zero completes the job the first time it is looked at after creation; a negative value
	// disables completion by time.
	JobDuration time.Duration
	// DownloadJobDuration is the same for download jobs.
	DownloadJobDuration time.Duration
	// CompleteAfterPolls, when positive, completes a job on its Nth poll even if its duration
	// has not elapsed. A download job is polled through its status URL; a delete or set-public
	// job by every job-list or data-source-information request of its account.
	CompleteAfterPolls int
	// Manual freezes jobs: they only move through CompleteJob and AbortJob (or the admin API).
	Manual bool

	// Account limits; zero means the enterprise default.
	MaxConcurrentJobs int
	MaxJobsPerDay     int
	MaxDataSources    int
	// MaxLoadEntities caps the entities of one upload; zero means MaxEntities. Tests lower it
	// to reach the limit cheaply.
	MaxLoadEntities int

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PublicBaseURL is the scheme and host put in links ("http://127.0.0.1:8080"). Empty means
	// the address the request was sent to.
	PublicBaseURL string
	// DownloadEncoding packs every download: "" (plain XML), "zip" (a ZIP archive holding
	// the XML file) or "gzip" (Content-Encoding: gzip).
	DownloadEncoding string
	// Faults are armed when the server starts.
	Faults []Fault
	// Logger receives one line per SDS request, with the key redacted. Nil means no logging.
	Logger *slog.Logger
}

// Account is one Bing Maps account. Every key of the account (the master and query keys of its
// data sources plus Keys) may read the account's data source information and job list.
type Account struct {
	Name string `json:"name"`
	// Keys are further Bing Maps keys of the account that are not tied to a data source.
	Keys        []string     `json:"keys,omitempty"`
	DataSources []DataSource `json:"dataSources"`
}

// DataSource is one data source and its versions.
type DataSource struct {
	AccessID       string `json:"accessId"`
	Name           string `json:"name"`
	EntityTypeName string `json:"entityTypeName"`
	MasterKey      string `json:"masterKey"`
	QueryKey       string `json:"queryKey"`
	IsPublic       bool   `json:"isPublic"`
	// Published is the live version.
	Published Version `json:"published"`
	// Staged is a version uploaded for staging, not yet published.
	Staged *Version `json:"staged,omitempty"`
	// Prior holds up to two earlier published versions, newest first.
	Prior []Version `json:"prior,omitempty"`
	// EntityPaddingBytes, when positive, adds a Notes field of this many bytes to every
	// downloaded entity so that large exports can be produced for benchmarks.
	EntityPaddingBytes int `json:"entityPaddingBytes,omitempty"`
	// Shapes makes the download look like what Microsoft's own tools write for a data source
	// with geography: a byte order mark, the root element {Name}Data, typed columns (xs:double,
	// xs:dateTime in UTC), two xs:anyType geography columns holding WKT of every type (points,
	// lines, polygons with holes, multi-geometries, collections), and omitted values.
	Shapes bool `json:"shapes,omitempty"`
}

// Version is one version of a data source, named by the job that produced it.
type Version struct {
	JobID       string `json:"jobId"`
	EntityCount int    `json:"entityCount"`
	// Updated is when the version was published (for a staged version: uploaded).
	Updated time.Time `json:"updated"`

	data       *storedData // an uploaded version; nil: generated
	entityType string      // the version's entity type when it differs from the data source's
}

func (d DataSource) clone() DataSource {
	if d.Staged != nil {
		v := *d.Staged
		d.Staged = &v
	}
	d.Prior = append([]Version(nil), d.Prior...)
	return d
}

// versions lists published, staged and prior versions in that order.
func (d *DataSource) versions() []Version {
	vs := []Version{d.Published}
	if d.Staged != nil {
		vs = append(vs, *d.Staged)
	}
	return append(vs, d.Prior...)
}

func (c Config) withDefaults() Config {
	if c.MaxConcurrentJobs <= 0 {
		c.MaxConcurrentJobs = DefaultMaxConcurrentJobs
	}
	if c.MaxJobsPerDay <= 0 {
		c.MaxJobsPerDay = DefaultMaxJobsPerDay
	}
	if c.MaxDataSources <= 0 {
		c.MaxDataSources = DefaultMaxDataSources
	}
	if c.MaxLoadEntities <= 0 {
		c.MaxLoadEntities = MaxEntities
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.PublicBaseURL = strings.TrimSuffix(c.PublicBaseURL, "/")
	return c
}

var (
	// Data source names: the docs' alphabet plus '-', which Microsoft's own client accepts.
	namePattern = regexp.MustCompile("^[A-Za-z0-9~`!$^_={}-]{1,50}$")
	// Entity type names are also XML element names in the download.
	entityTypePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,49}$`)
	accessIDPattern   = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	jobIDPattern      = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
)

// validate checks the accounts against the documented limits and the emulator's own needs.
// Error texts name data sources, never keys.
func (c Config) validate() error {
	if len(c.Accounts) == 0 {
		return fmt.Errorf("no account configured")
	}
	type keyUse struct {
		account int
		master  bool
	}
	keys := map[string]keyUse{}
	useKey := func(acct int, key string, master bool, what string) error {
		if key == "" || strings.ContainsAny(key, " \t\r\n") {
			return fmt.Errorf("%s: key missing or contains white space", what)
		}
		if prev, ok := keys[key]; ok {
			if prev.account != acct {
				return fmt.Errorf("%s: key is also used by another account", what)
			}
			if prev.master != master {
				return fmt.Errorf("%s: key is used both as a master key and as a query or account key", what)
			}
		}
		keys[key] = keyUse{acct, master}
		return nil
	}
	names := map[string]bool{}
	for ai, a := range c.Accounts {
		acctName := a.Name
		if acctName == "" {
			acctName = fmt.Sprintf("#%d", ai+1)
		}
		if len(a.DataSources) > c.MaxDataSources {
			return fmt.Errorf("account %s: %d data sources, the limit is %d", acctName, len(a.DataSources), c.MaxDataSources)
		}
		for i, k := range a.Keys {
			if err := useKey(ai, k, false, fmt.Sprintf("account %s, key #%d", acctName, i+1)); err != nil {
				return err
			}
		}
		for _, d := range a.DataSources {
			what := fmt.Sprintf("account %s, data source %s/%s", acctName, d.AccessID, d.Name)
			if err := d.validate(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			id := strings.ToLower(d.AccessID + "/" + d.Name)
			if names[id] {
				return fmt.Errorf("%s: defined twice (names are compared case-insensitively)", what)
			}
			names[id] = true
			if d.MasterKey == d.QueryKey {
				return fmt.Errorf("%s: master and query keys must differ", what)
			}
			if err := useKey(ai, d.MasterKey, true, what+", master key"); err != nil {
				return err
			}
			if err := useKey(ai, d.QueryKey, false, what+", query key"); err != nil {
				return err
			}
		}
	}
	switch c.DownloadEncoding {
	case "", string(FaultZip), string(FaultGzip):
	default:
		return fmt.Errorf("download encoding %q is not one of zip, gzip", c.DownloadEncoding)
	}
	for i, f := range c.Faults {
		if err := f.validate(); err != nil {
			return fmt.Errorf("fault #%d: %w", i+1, err)
		}
	}
	return nil
}

func (d DataSource) validate() error {
	if !accessIDPattern.MatchString(d.AccessID) {
		return fmt.Errorf("access ID must be 1 to 64 letters or digits")
	}
	if !namePattern.MatchString(d.Name) {
		return fmt.Errorf("name must be 1 to 50 letters, digits or ~ ` ! $ ^ _ = { } -")
	}
	if !entityTypePattern.MatchString(d.EntityTypeName) {
		return fmt.Errorf("entity type name must be a letter or underscore followed by up to 49 letters, digits, underscores or hyphens")
	}
	if len(d.Prior) > maxPriorVersions {
		return fmt.Errorf("%d prior versions, at most %d are kept", len(d.Prior), maxPriorVersions)
	}
	if d.EntityPaddingBytes < 0 || d.EntityPaddingBytes > maxPaddingBytes {
		return fmt.Errorf("entity padding must be between 0 and %d bytes", maxPaddingBytes)
	}
	seen := map[string]bool{}
	for _, v := range d.versions() {
		if !jobIDPattern.MatchString(v.JobID) {
			return fmt.Errorf("version job ID %q must be 1 to 64 letters, digits or hyphens", v.JobID)
		}
		if seen[strings.ToLower(v.JobID)] {
			return fmt.Errorf("version job ID %s used twice", v.JobID)
		}
		seen[strings.ToLower(v.JobID)] = true
		if v.EntityCount < 0 || v.EntityCount > MaxEntities {
			return fmt.Errorf("version %s: entity count %d outside 0..%d", v.JobID, v.EntityCount, MaxEntities)
		}
		if v.Updated.IsZero() {
			return fmt.Errorf("version %s: updated time missing", v.JobID)
		}
	}
	return nil
}
