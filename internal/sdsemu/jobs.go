package sdsemu

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// JobKind is the job type as the job list names it.
type JobKind string

// Job kinds the emulator creates.
const (
	JobDownload JobKind = "DataSourceDownload"
	JobDelete   JobKind = "DataSourceDelete"
	JobAccess   JobKind = "DataSourceAccess"
)

// JobStatus is a job's state. A job is in process while Pending.
type JobStatus string

// Job states.
const (
	StatusPending   JobStatus = "Pending"
	StatusCompleted JobStatus = "Completed"
	StatusAborted   JobStatus = "Aborted"
)

// Job is a snapshot of one job.
type Job struct {
	ID             string    `json:"id"`
	Kind           JobKind   `json:"kind"`
	Account        string    `json:"account"`
	AccessID       string    `json:"accessId"`
	DataSourceName string    `json:"dataSourceName"`
	Status         JobStatus `json:"status"`
	Created        time.Time `json:"created"`
	Completed      time.Time `json:"completed,omitzero"`
	ErrorMessage   string    `json:"errorMessage,omitempty"`
	// Polls counts the status requests (download) or job-list and information requests
	// (delete, set public) seen while the job was pending.
	Polls int `json:"polls"`
	// VersionJobID and EntityCount describe the downloaded version (download jobs).
	VersionJobID string `json:"versionJobId,omitempty"`
	EntityCount  int    `json:"entityCount,omitempty"`
	// IsStaging is set on a delete job that removes only the staged version.
	IsStaging bool `json:"isStaging,omitempty"`
	// SetPublic is the requested flag of a set-public job.
	SetPublic *bool `json:"setPublic,omitempty"`
	// FailedEntityCount counts the entities of a load that failed validation.
	FailedEntityCount int `json:"failedEntityCount,omitempty"`
}

// job is the live job; guarded by Server.mu.
type job struct {
	Job
	acct      *account
	masterKey string
	dataset   Dataset // download jobs: what the output link serves
	// abortWith is set by an abort fault: the job ends Aborted with this message instead of
	// completing.
	abortWith string
	load      *loadJob // load jobs: the uploaded data
}

// Errors returned by CompleteJob and AbortJob.
var (
	ErrJobNotFound   = errors.New("job not found")
	ErrJobNotPending = errors.New("job is not pending")
)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// createJobLocked enforces the account limits and registers a new pending job. path is the
// request path, used to match abort faults.
func (s *Server) createJobLocked(kind JobKind, op, path string, acct *account, d *DataSource, now time.Time) (*job, *apiError) {
	if e := s.checkLimitsLocked(acct, now); e != nil {
		return nil, e
	}
	j := &job{
		Job: Job{
			ID:             newID(),
			Kind:           kind,
			Account:        acct.name,
			AccessID:       d.AccessID,
			DataSourceName: d.Name,
			Status:         StatusPending,
			Created:        now,
		},
		acct:      acct,
		masterKey: d.MasterKey,
	}
	if msg, ok := s.takeAbortLocked(op, path); ok {
		j.abortWith = msg
	}
	s.jobs = append(s.jobs, j)
	return j, nil
}

// checkLimitsLocked applies the per-account job limits. The docs give no status code for an
// exceeded limit; 429 with Retry-After is our choice (sds-api.md treats 429 and 503 alike).
func (s *Server) checkLimitsLocked(acct *account, now time.Time) *apiError {
	var inProcess, today int
	var oldestToday time.Time
	var nextDue time.Time
	for _, j := range s.jobs {
		if j.acct != acct {
			continue
		}
		if j.Status == StatusPending {
			inProcess++
			if at, ok := s.timeDueLocked(j); ok && (nextDue.IsZero() || at.Before(nextDue)) {
				nextDue = at
			}
		}
		if now.Sub(j.Created) < jobsPerDayWindow {
			today++
			if oldestToday.IsZero() || j.Created.Before(oldestToday) {
				oldestToday = j.Created
			}
		}
	}
	if today >= s.cfg.MaxJobsPerDay {
		return &apiError{
			status:     http.StatusTooManyRequests,
			details:    []string{fmt.Sprintf("The account has reached its limit of %d jobs in a 24 hour period.", s.cfg.MaxJobsPerDay)},
			retryAfter: retrySeconds(oldestToday.Add(jobsPerDayWindow).Sub(now)),
		}
	}
	if inProcess >= s.cfg.MaxConcurrentJobs {
		wait := time.Minute // nothing will finish by itself: suggest a minute
		if !nextDue.IsZero() {
			wait = nextDue.Sub(now)
		}
		return &apiError{
			status:     http.StatusTooManyRequests,
			details:    []string{fmt.Sprintf("The account has reached its limit of %d jobs in process at the same time.", s.cfg.MaxConcurrentJobs)},
			retryAfter: retrySeconds(wait),
		}
	}
	return nil
}

func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

func (s *Server) durationOf(j *job) time.Duration {
	if j.Kind == JobDownload {
		return s.cfg.DownloadJobDuration
	}
	return s.cfg.JobDuration
}

// timeDueLocked is when the clock alone finishes the job, if it ever does.
func (s *Server) timeDueLocked(j *job) (time.Time, bool) {
	d := s.durationOf(j)
	if s.cfg.Manual || d < 0 {
		return time.Time{}, false
	}
	return j.Created.Add(d), true
}

// advanceLocked finishes every pending job that is due at now, in the order they fell due, and
// forgets finished jobs older than the job list's window. Jobs advance lazily: every request
// calls this before looking at state, so no timer goroutines are needed.
func (s *Server) advanceLocked(now time.Time) {
	type due struct {
		j  *job
		at time.Time
	}
	var dues []due
	for _, j := range s.jobs {
		if j.Status != StatusPending || s.cfg.Manual {
			continue
		}
		if at, ok := s.timeDueLocked(j); ok && !now.Before(at) {
			dues = append(dues, due{j, at})
		} else if n := s.cfg.CompleteAfterPolls; n > 0 && j.Polls >= n {
			dues = append(dues, due{j, now})
		}
	}
	// Stable: jobs due at the same instant finish in creation order.
	slices.SortStableFunc(dues, func(a, b due) int { return a.at.Compare(b.at) })
	for _, d := range dues {
		s.finishLocked(d.j, d.at, "")
	}
	s.jobs = slices.DeleteFunc(s.jobs, func(j *job) bool {
		return j.Status != StatusPending && now.Sub(j.Created) > jobListWindow
	})
}

// finishLocked ends a pending job at time at. A non-empty abortMsg, or an abort armed by a
// fault, aborts it; otherwise it completes and its effect on the data source is applied.
func (s *Server) finishLocked(j *job, at time.Time, abortMsg string) {
	if abortMsg == "" {
		abortMsg = j.abortWith
	}
	j.Completed = at
	if abortMsg == "" {
		abortMsg = s.applyVersionJobLocked(j, at)
	}
	if abortMsg != "" {
		j.Status = StatusAborted
		j.ErrorMessage = abortMsg
		discardUpload(j)
		return
	}
	j.Status = StatusCompleted
	switch j.Kind {
	case JobDelete:
		// The data source may already be gone (two delete jobs); then there is nothing to do.
		acct, d := s.findDataSourceLocked(j.AccessID, j.DataSourceName)
		if d == nil {
			return
		}
		if j.IsStaging {
			d.Staged = nil
		} else {
			acct.remove(d)
		}
	case JobAccess:
		if _, d := s.findDataSourceLocked(j.AccessID, j.DataSourceName); d != nil {
			d.IsPublic = *j.SetPublic
		}
	}
}

// pollAccountJobsLocked counts one poll for every pending delete or set-public job of acct.
func (s *Server) pollAccountJobsLocked(acct *account) {
	for _, j := range s.jobs {
		if j.acct == acct && j.Kind != JobDownload && j.Status == StatusPending {
			j.Polls++
		}
	}
}

func (s *Server) findJobLocked(id string) *job {
	for _, j := range s.jobs {
		if strings.EqualFold(j.ID, id) {
			return j
		}
	}
	return nil
}

// CompleteJob finishes a pending job now, as if its time had come: it completes, or aborts if
// an abort fault marked it.
func (s *Server) CompleteJob(id string) error {
	return s.endJob(id, "")
}

// AbortJob ends a pending job as Aborted with the given message.
func (s *Server) AbortJob(id, message string) error {
	if message == "" {
		message = defaultAbortMessage
	}
	return s.endJob(id, message)
}

func (s *Server) endJob(id, abortMsg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.advanceLocked(now)
	j := s.findJobLocked(id)
	if j == nil {
		return fmt.Errorf("%s: %w", id, ErrJobNotFound)
	}
	if j.Status != StatusPending {
		return fmt.Errorf("%s is %s: %w", id, j.Status, ErrJobNotPending)
	}
	s.finishLocked(j, now, abortMsg)
	return nil
}

// Jobs returns a snapshot of all jobs, oldest first.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.cfg.Now())
	out := make([]Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j.snapshot())
	}
	return out
}

func (j *job) snapshot() Job {
	c := j.Job
	if c.SetPublic != nil {
		v := *c.SetPublic
		c.SetPublic = &v
	}
	return c
}

// Timing is how jobs move: the timing fields of Config.
type Timing struct {
	JobDuration         time.Duration
	DownloadJobDuration time.Duration
	CompleteAfterPolls  int
	Manual              bool
}

// SetTiming changes how jobs move from now on, for jobs already pending
// too; tests sharing one emulator use it between scenarios.
func (s *Server) SetTiming(t Timing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.JobDuration, s.cfg.DownloadJobDuration = t.JobDuration, t.DownloadJobDuration
	s.cfg.CompleteAfterPolls, s.cfg.Manual = t.CompleteAfterPolls, t.Manual
}
