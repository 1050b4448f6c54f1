package task

import (
	"context"

	"github.com/sdsops/sdsops/internal/sds"
)

// SetPublic makes a data source public or private.
func (s *Service) SetPublic(ctx context.Context, raw []byte) (any, error) {
	var ev SetPublicEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
		return nil, err
	}
	if ev.Public == nil {
		return nil, invalid("field \"public\" is required: true or false")
	}
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	ds := sds.DataSource{AccessID: ev.AccessID, Name: ev.DataSourceName}
	var job *sds.Job
	err := s.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) (err error) {
		job, err = c.SetPublic(ctx, ds, *ev.Public)
		return err
	})
	if err != nil {
		return nil, err
	}
	return State{
		AccessID:          ev.AccessID,
		DataSourceName:    ev.DataSourceName,
		Operation:         OpSetPublic,
		MasterKeySecretID: ev.MasterKeySecretID,
		Status:            reportStatus(job.Status),
		JobID:             job.ID,
		Public:            ev.Public,
		RequestedAt:       formatTime(s.now()),
		NextWaitSeconds:   s.nextWait(0),
	}, nil
}

// checkSetPublic follows the DataSourceAccess job by the id set public
// returned.
func (s *Service) checkSetPublic(ctx context.Context, st *State) error {
	if err := validateJobID(st.JobID); err != nil {
		return err
	}
	return s.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) error {
		jobs, err := c.ListJobs(ctx)
		if err != nil {
			return err
		}
		st.Status = StatusPending
		if j := findJob(jobs, st.JobID, "", "", timeZero); j != nil {
			st.Status = reportStatus(j.Status)
			if st.Status == StatusAborted {
				st.ErrorMessage = jobMessage(j)
			}
		}
		return nil
	})
}
