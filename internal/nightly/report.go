package nightly

import (
	"path"
	"time"
)

// The heartbeat: every nightly run puts one data point as it starts (an
// EMF line of discover), also when there is nothing to do; the template's
// NightlyHeartbeatAlarm fires when none arrived for NightlyHeartbeatHours,
// missing data counting as breaching. The alarm's metric is these names,
// in MetricNamespace.
const (
	MetricHeartbeat = "NightlyHeartbeat"
	// DimensionStack is the heartbeat's only dimension: the stack's name,
	// so that two stacks in one account keep separate heartbeats.
	DimensionStack = "Stack"
	// DefaultStackName is the dimension's value when STACK_NAME is unset.
	DefaultStackName = "sdsops"
	// DefaultHeartbeat is NightlyHeartbeatHours' default: a daily
	// schedule plus 6 hours of slack.
	DefaultHeartbeat = 30 * time.Hour
)

// HeartbeatLine is the EMF line of one heartbeat of stack at.
func HeartbeatLine(stack string, at time.Time) ([]byte, error) {
	return EMFLine(MetricNamespace, at, map[string]string{DimensionStack: stack}, []Metric{{MetricHeartbeat, "Count", 1}})
}

// ReportSchema is the version of the report format written. Fields do not
// change meaning within a version; new fields are optional.
const ReportSchema = 1

// reportDir holds the reports under the catalog's prefix (beside
// catalog/v1/, outside the archive prefix: never taken for an archive).
const reportDir = "reports/nightly/"

// ReportKey is the key of a night's report: <prefix>reports/nightly/
// <YYYY-MM-DD of the run's start, UTC>/<execution name>.json.
func ReportKey(prefix string, started time.Time, execution string) string {
	return prefix + reportDir + started.UTC().Format(time.DateOnly) + "/" + path.Base(execution) + ".json"
}

// LatestReportKey is the key of a copy of the newest report.
func LatestReportKey(prefix string) string { return prefix + reportDir + "latest.json" }

// Outcomes of a night.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
)

// Statuses of a data source in a report beyond the item statuses of the
// run (Archived, Failed, Throttled, NeedsKey, Skipped).
const (
	ReportUpToDate    = "UpToDate"
	ReportCarriedOver = "CarriedOver"
	ReportExcluded    = "Excluded"
)

// Report is what one nightly run did, written to S3 as JSON before its
// summary is published.
type Report struct {
	Schema       int       `json:"schema"`
	Execution    string    `json:"execution"`
	ExecutionARN string    `json:"executionArn"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt"`
	Outcome      string    `json:"outcome"`
	// RunError is the error that stopped the run before its backups
	// (discovery) or the retention step's; nil otherwise.
	RunError *RunError `json:"runError,omitempty"`
	Counts   Counts    `json:"counts"`
	Jobs     JobUse    `json:"jobs"`
	// DataSources lists every data source seen tonight, failures first.
	DataSources []Entry `json:"dataSources"`
	// DamagedRecords are catalog records discovery could not read.
	DamagedRecords []string         `json:"damagedRecords"`
	Retention      *RetentionReport `json:"retention"`
}

// RunError is an error and its cause, as Step Functions reports them.
type RunError struct {
	Error string `json:"error"`
	Cause string `json:"cause,omitempty"`
}

// Counts are the night's totals by status.
type Counts struct {
	Seen        int `json:"seen"`
	UpToDate    int `json:"upToDate"`
	Scheduled   int `json:"scheduled"`
	Archived    int `json:"archived"`
	Failed      int `json:"failed"`
	Throttled   int `json:"throttled"`
	Skipped     int `json:"skipped"`
	NeedsKey    int `json:"needsKey"`
	CarriedOver int `json:"carriedOver"`
	Excluded    int `json:"excluded"`
	PastRPO     int `json:"pastRpo"`
}

// JobUse is the SDS job budget as the run found and used it.
type JobUse struct {
	Budget int `json:"budget"`
	// InWindowAtStart: jobs the account had started in the 24 hours before
	// the run (everyone's); StartedTonight: download jobs this run started.
	InWindowAtStart  int `json:"inWindowAtStart"`
	StartedTonight   int `json:"startedTonight"`
	ConcurrencyCap   int `json:"concurrencyCap"`
	InProcessAtStart int `json:"inProcessAtStart"`
	// CarryCause is why the plan carried data sources over (absent when
	// it carried none); with "horizon", BudgetFreesAt is when the budget
	// would have had room. HorizonHours is how long a run waits for room.
	CarryCause    CarryCause `json:"carryCause,omitempty"`
	BudgetFreesAt time.Time  `json:"budgetFreesAt,omitzero"`
	HorizonHours  float64    `json:"horizonHours,omitempty"`
}

// Entry is one data source in the report.
type Entry struct {
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
	Status         string `json:"status"`
	// Error is the error type of a failure; Reason says why in words (a
	// failure's cause, why it was skipped or carried over). Neither ever
	// holds a key.
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MaxProtectedListed bounds the protected archives a report lists: the
// list travels in the execution's state (256 KB at most), and a bucket
// under Object Lock would otherwise list every old archive every night.
const MaxProtectedListed = 100

// RetentionReport is what the retention step did.
type RetentionReport struct {
	Enabled      bool `json:"enabled"`
	KeepVersions int  `json:"keepVersions"`
	KeepDays     int  `json:"keepDays"`
	// Deleted are the archives deleted tonight, every object of each.
	Deleted []DeletedArchive `json:"deleted"`
	// Protected are archives the policy would delete but that were kept:
	// under Object Lock, or of a data source a restore or drill is using.
	// At most MaxProtectedListed are listed; ProtectedTotal counts all.
	Protected      []ProtectedArchive `json:"protected"`
	ProtectedTotal int                `json:"protectedTotal"`
	// More is true when the night's deletion cap was reached: the rest
	// follows the next night.
	More   bool     `json:"more,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// DeletedArchive is one archive retention deleted.
type DeletedArchive struct {
	AccessID       string    `json:"accessId"`
	DataSourceName string    `json:"dataSourceName"`
	Key            string    `json:"key"`
	Version        string    `json:"version,omitempty"`
	Verified       bool      `json:"verified"`
	FinishedAt     time.Time `json:"finishedAt,omitzero"`
	Objects        int       `json:"objects"`
	Reason         string    `json:"reason"`
}

// ProtectedArchive is one archive retention kept against the policy.
type ProtectedArchive struct {
	AccessID       string `json:"accessId"`
	DataSourceName string `json:"dataSourceName"`
	Key            string `json:"key"`
	Reason         string `json:"reason"`
}
