package sds

import (
	"strings"
	"time"
)

// Status is a job's status, normalised to the documented spelling whatever
// case the service used.
type Status string

// Documented job statuses. Created is what set public/private answers with
// for a job that has just been accepted.
const (
	StatusPending   Status = "Pending"
	StatusCompleted Status = "Completed"
	StatusAborted   Status = "Aborted"
	StatusCreated   Status = "Created"
)

func parseStatus(s string) Status {
	s = strings.TrimSpace(s)
	for _, known := range []Status{StatusPending, StatusCompleted, StatusAborted, StatusCreated} {
		if strings.EqualFold(s, string(known)) {
			return known
		}
	}
	return Status(s)
}

// Done reports whether the job has stopped: Completed or Aborted. A job is
// "in process", and counts against the account's job limits, until then.
func (s Status) Done() bool { return s == StatusCompleted || s == StatusAborted }

// Link is a URL the service returned, with its role ("self", "output",
// "dataSource") and name ("succeeded", "failed", "service").
type Link struct {
	Role string
	Name string
	URL  string
}

// Job is a DataflowJob or DataServiceJob resource.
type Job struct {
	Type          string // "DataflowJob", "DataServiceJob", ... without the namespace
	ID            string
	Name          string // in the job list: the data source name
	Description   string // in the job list: the job type, e.g. "DataSourceDelete"
	Status        Status
	Links         []Link
	CreatedDate   *time.Time
	CompletedDate *time.Time
	// Entity counts. The docs say only TotalEntityCount is used by download
	// jobs; the others are kept as sent (0 when empty).
	TotalEntityCount int64
	// HasTotal says that TotalEntityCount was given as a number: a total
	// of 0 (an empty data source) is then a count, not a missing one
	// (absent, empty, null or xsi:nil).
	HasTotal             bool
	ProcessedEntityCount int64
	FailedEntityCount    int64
	ErrorMessage         string
}

// Link returns the first link with the given role and, when name is not
// empty, that name (both compared case-insensitively).
func (j *Job) Link(role, name string) (Link, bool) {
	for _, l := range j.Links {
		if strings.EqualFold(l.Role, role) && (name == "" || strings.EqualFold(l.Name, name)) {
			return l, true
		}
	}
	return Link{}, false
}

// StatusURL is the job's self link, without a key.
func (j *Job) StatusURL() string {
	l, _ := j.Link("self", "")
	return l.URL
}

// DownloadURL is the output link of a completed download job (role output,
// name succeeded), without a key. Empty when the job has none.
func (j *Job) DownloadURL() string {
	if l, ok := j.Link("output", "succeeded"); ok {
		return l.URL
	}
	// One documented example names the output link by an "output" field we
	// map into Name; a nameless output link is still the data.
	if l, ok := j.Link("output", ""); ok && l.Name == "" {
		return l.URL
	}
	return ""
}

// DataSourceInfo is one entry of a data source information response: a data
// source, or one version of it when all versions were asked for.
type DataSourceInfo struct {
	AccessID   string // from the collection URL; empty when the response has none
	Name       string
	EntitySets []string
	IsPublic   bool
	// Version details, present with showAllVersions.
	JobID     string
	IsStaging bool
	IsActive  bool
	Updated   *time.Time
	Uploaded  *time.Time
	QueryURL  string // the collection URL, for querying
}
