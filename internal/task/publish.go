package task

import (
	"context"

	"github.com/sdsops/sdsops/internal/sds"
)

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
func (s *Service) Publish(ctx context.Context, raw []byte) (any, error) {
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
	return s.startVersionJob(ctx, ev, OpPublish, func(c *sds.Client) (*sds.Job, error) {
		return c.PublishStaged(ctx, sds.DataSource{AccessID: ev.AccessID, Name: ev.DataSourceName})
	})
}

func (s *Service) startVersionJob(ctx context.Context, ev VersionEvent, op string, start func(*sds.Client) (*sds.Job, error)) (*JobState, error) {
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	var job *sds.Job
	err := s.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) (err error) {
		job, err = start(c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &JobState{Operation: op, DataSourceName: ev.DataSourceName, AccessID: ev.AccessID,
		MasterKeySecretID: ev.MasterKeySecretID, JobID: job.ID, StatusURL: sds.StripLink(job.StatusURL()),
		Status: reportStatus(job.Status), RequestedAt: formatTime(s.now()), NextWaitSeconds: s.nextWait(0)}, nil
}
