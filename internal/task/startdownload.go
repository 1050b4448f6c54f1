package task

import (
	"context"
	"fmt"
	"strings"

	"github.com/sdsops/sdsops/internal/nightly"
	"github.com/sdsops/sdsops/internal/sds"
)

// StartDownload creates a download job and returns the chained state
// checkstatus polls.
func (s *Service) StartDownload(ctx context.Context, raw []byte) (any, error) {
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
	err := s.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) (err error) {
		switch {
		case ev.IsStaging:
			version, err = stagedVersion(ctx, c, ds)
		case version == "":
			// The download is pinned to the version looked up, so that the
			// archive can be recorded as that version's, exactly as a
			// nightly backup (which names it) is: SDS does not say which
			// version a download job exported.
			version, err = publishedVersion(ctx, c, ds)
		}
		if err != nil {
			return err
		}
		job, err = c.CreateDownloadJob(ctx, ds, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := s.now()
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
		IsStaging:         ev.IsStaging,
		StatusURL:         sds.StripLink(job.StatusURL()),
		CreatedDate:       formatTime(created),
		StartedAt:         formatTime(now),
		NextWaitSeconds:   s.nextWait(0),
	}, nil
}

// publishedVersion finds the job id of the data source's published version.
func publishedVersion(ctx context.Context, c *sds.Client, ds sds.DataSource) (string, error) {
	versions, err := c.DataSourceInfo(ctx, ds, true)
	if err != nil {
		return "", err
	}
	src, err := nightly.Published(versions)
	if err != nil {
		return "", &Error{Type: DataSourceNotFound, Message: fmt.Sprintf("data source %s has no published version to back up (name a version with jobId, or isStaging): %v", ds, err), Err: err}
	}
	return src.Version, nil
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

// checkDownload is CheckStatus for a download job.
func (s *Service) checkDownload(ctx context.Context, st *State) error {
	if err := validateJobID(st.JobID); err != nil {
		return err
	}
	var job *sds.Job
	err := s.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) error {
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
	st.TotalEntityCount = nil
	if job.HasTotal {
		st.TotalEntityCount = &job.TotalEntityCount
	}
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
