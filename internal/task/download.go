package task

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/archive"
	"github.com/sdsops/sdsops/internal/sds"
)

// StartDownload creates a download job and returns the chained state
// checkstatus polls.
func (r *Runner) StartDownload(ctx context.Context, raw []byte) (any, error) {
	var ev StartDownloadEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
		return nil, err
	}
	if ev.JobID != "" {
		if err := validateJobID(ev.JobID); err != nil {
			return nil, err
		}
	}
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	if ev.IsStaging && ev.JobID != "" {
		return nil, invalid("give jobId or isStaging, not both")
	}
	ds := sds.DataSource{AccessID: ev.AccessID, Name: ev.DataSourceName}
	var job *sds.Job
	version := ev.JobID
	err := r.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) (err error) {
		if ev.IsStaging {
			if version, err = stagedVersion(ctx, c, ds); err != nil {
				return err
			}
		}
		job, err = c.CreateDownloadJob(ctx, ds, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := r.now()
	created := now
	if job.CreatedDate != nil {
		created = *job.CreatedDate
	}
	return State{
		AccessID:          ev.AccessID,
		DataSourceName:    ev.DataSourceName,
		Operation:         OpDownload,
		MasterKeySecretID: ev.MasterKeySecretID,
		Status:            reportStatus(job.Status),
		JobID:             job.ID,
		VersionJobID:      version,
		StatusURL:         sds.StripLink(job.StatusURL()),
		CreatedDate:       formatTime(created),
		StartedAt:         formatTime(now),
		NextWaitSeconds:   r.nextWait(0),
	}, nil
}

// stagedVersion finds the job id of the data source's staged version.
func stagedVersion(ctx context.Context, c *sds.Client, ds sds.DataSource) (string, error) {
	versions, err := c.DataSourceInfo(ctx, ds, true)
	if err != nil {
		return "", err
	}
	for _, v := range versions {
		if v.IsStaging && v.JobID != "" {
			return v.JobID, nil
		}
	}
	return "", &Error{Type: DataSourceNotFound, Message: fmt.Sprintf("data source %s has no staged version", ds)}
}

// reportStatus maps SDS statuses onto the three a state machine branches on.
func reportStatus(s sds.Status) string {
	switch s {
	case sds.StatusCompleted:
		return StatusCompleted
	case sds.StatusAborted:
		return StatusAborted
	}
	return StatusPending
}

// decodeChainedState decodes a chained event and checks the identifiers
// every chained function needs.
func decodeChainedState(raw []byte) (*chained, error) {
	st, err := decodeChained(raw)
	if err != nil {
		return nil, err
	}
	if err := validateDataSource(st.AccessID, st.DataSourceName); err != nil {
		return nil, err
	}
	if err := validateSecretID(st.MasterKeySecretID); err != nil {
		return nil, err
	}
	return st, nil
}

// CheckStatus reads the status of the job a chained state describes.
func (r *Runner) CheckStatus(ctx context.Context, raw []byte) (any, error) {
	st, err := decodeChainedState(raw)
	if err != nil {
		return nil, err
	}
	switch st.Operation {
	case OpDownload:
		err = r.checkDownload(ctx, &st.State)
	case OpDelete:
		err = r.checkDelete(ctx, &st.State)
	case OpSetPublic:
		err = r.checkSetPublic(ctx, &st.State)
	default:
		return nil, invalid("field \"operation\" must be %q, %q or %q, got %q", OpDownload, OpDelete, OpSetPublic, truncate(st.Operation, 40))
	}
	if err != nil {
		return nil, err
	}
	st.PollCount++
	st.NextWaitSeconds = 0
	st.DeadlinePassed = false
	if st.Status == StatusPending {
		st.NextWaitSeconds = r.nextWait(st.PollCount)
		since, err := st.pendingSince()
		if err != nil {
			return nil, err
		}
		st.DeadlinePassed = r.now().Sub(since) > r.cfg.JobDeadline
	}
	return st.output(nil)
}

func (r *Runner) checkDownload(ctx context.Context, st *State) error {
	if err := validateJobID(st.JobID); err != nil {
		return err
	}
	var job *sds.Job
	err := r.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) error {
		statusURL := st.StatusURL
		if statusURL == "" {
			u, err := c.StatusURLFor(st.dataSource(), st.JobID)
			if err != nil {
				return err
			}
			statusURL = u
		}
		var err error
		job, err = c.DownloadJobStatus(ctx, statusURL)
		return err
	})
	if err != nil {
		return err
	}
	// The documented status link names only the data source, so it could
	// start describing a newer job; archiving that job's data under this
	// job's name would be wrong.
	if !strings.EqualFold(job.ID, st.JobID) {
		return &Error{Type: JobAborted, Message: fmt.Sprintf("the status link now reports job %s, not download job %s (another download of %s was started?); start the backup again", job.ID, st.JobID, st.dataSource())}
	}
	st.Status = reportStatus(job.Status)
	st.TotalEntityCount = job.TotalEntityCount
	st.ProcessedEntityCount = job.ProcessedEntityCount
	st.FailedEntityCount = job.FailedEntityCount
	st.DownloadURL = ""
	st.ErrorMessage = ""
	switch st.Status {
	case StatusCompleted:
		st.DownloadURL = sds.StripLink(job.DownloadURL())
		if st.DownloadURL == "" {
			return &Error{Type: SdsUnavailable, Message: fmt.Sprintf("download job %s is Completed but has no output link", job.ID)}
		}
	case StatusAborted:
		st.ErrorMessage = job.ErrorMessage
		if st.ErrorMessage == "" {
			st.ErrorMessage = "the service gave no error message"
		}
	}
	return nil
}

// CopyToS3 streams a completed download job's export into the archive.
func (r *Runner) CopyToS3(ctx context.Context, raw []byte) (any, error) {
	st, err := decodeChainedState(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Operation != OpDownload:
		return nil, invalid("field \"operation\" must be %q for a copy, got %q", OpDownload, truncate(st.Operation, 40))
	case st.Status != StatusCompleted:
		return nil, invalid("field \"status\" must be %q for a copy, got %q", StatusCompleted, truncate(st.Status, 40))
	case st.DownloadURL == "":
		return nil, invalid("field \"downloadUrl\" is missing")
	}
	if err := validateJobID(st.JobID); err != nil {
		return nil, err
	}
	if r.archive == nil {
		return nil, &Error{Type: Internal, Message: "no archive configured: set ARCHIVE_BUCKET"}
	}
	created, err := parseStateTime("createdDate", st.CreatedDate)
	if err != nil {
		return nil, err
	}
	if created.Year() < 2000 {
		return nil, invalid("field \"createdDate\" %q is not a download job's creation time", st.CreatedDate)
	}
	if st.TotalEntityCount < 0 {
		return nil, invalid("field \"totalEntityCount\" must not be negative, got %d", st.TotalEntityCount)
	}
	started := created
	if st.StartedAt != "" {
		if started, err = parseStateTime("startedAt", st.StartedAt); err != nil {
			return nil, err
		}
	}
	req := archive.Request{
		AccessID:         st.AccessID,
		DataSourceName:   st.DataSourceName,
		JobID:            st.JobID,
		VersionJobID:     st.VersionJobID,
		JobCreated:       created,
		ExpectedEntities: st.TotalEntityCount,
		StartedAt:        started,
	}
	var res archive.Result
	err = r.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) (err error) {
		req.Redact = c.Redact
		res, err = r.archive.Copy(ctx, req, func(ctx context.Context) (*sds.Export, error) {
			return c.OpenExportURL(ctx, st.DownloadURL)
		})
		if errors.Is(err, archive.ErrUnverified) {
			return &Error{Type: ArchiveUnverified, Err: err, Message: fmt.Sprintf(
				"the export is archived at s3://%s/%s with its manifest %s, but not verified: %s",
				res.Bucket, res.Key, res.ManifestKey, strings.Join(res.Problems, "; "))}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return st.output(map[string]any{
		"bucket":      res.Bucket,
		"key":         res.Key,
		"manifestKey": res.ManifestKey,
		"bytes":       res.Bytes,
		"sha256":      res.SHA256,
		"entityCount": res.EntityCount,
		"reused":      res.Reused,
		"verified":    res.Verified,
	})
}

// findJob returns the newest listed job of the given type for the data
// source created at or after since (with a margin for clock skew), or the
// job whose id is id when id is given.
func findJob(jobs []sds.Job, id, description, name string, since time.Time) *sds.Job {
	var best *sds.Job
	for i := range jobs {
		j := &jobs[i]
		if id != "" {
			if strings.EqualFold(j.ID, id) {
				return j
			}
			continue
		}
		if !strings.EqualFold(j.Description, description) || !strings.EqualFold(strings.TrimSpace(j.Name), name) {
			continue
		}
		if j.CreatedDate != nil && j.CreatedDate.Before(since.Add(-5*time.Minute)) {
			continue
		}
		if best == nil || best.CreatedDate == nil || (j.CreatedDate != nil && j.CreatedDate.After(*best.CreatedDate)) {
			best = j
		}
	}
	return best
}

var timeZero time.Time

// pendingSince is when the job a state describes was asked for.
func (s *State) pendingSince() (time.Time, error) {
	if s.Operation == OpDownload {
		return parseStateTime("startedAt", s.StartedAt)
	}
	return parseStateTime("requestedAt", s.RequestedAt)
}
