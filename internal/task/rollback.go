package task

import (
	"context"

	"github.com/sdsops/sdsops/internal/sds"
)

// Rollback starts a rollback to one of a data source's prior versions.
// confirm must repeat the name: the published version is replaced.
func (s *Service) Rollback(ctx context.Context, raw []byte) (any, error) {
	var ev VersionEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := sds.ValidateName(ev.DataSourceName); err != nil {
		return nil, invalid("field \"dataSourceName\": %v", err)
	}
	if ev.Confirm != ev.DataSourceName {
		return nil, invalid("field \"confirm\" must repeat dataSourceName exactly; nothing was rolled back")
	}
	if err := validateJobID(ev.JobID); err != nil {
		return nil, err
	}
	return s.startVersionJob(ctx, ev, OpRollback, func(c *sds.Client) (*sds.Job, error) {
		return c.Rollback(ctx, ev.DataSourceName, ev.JobID)
	})
}
