package task

import (
	"context"
	"errors"

	"github.com/sdsops/sdsops/internal/drill"
	"github.com/sdsops/sdsops/internal/sds"
)

// Delete deletes a data source, or only its staged version. The event's
// confirm field must repeat the data source name: a guard against deleting
// a mistyped target.
func (s *Service) Delete(ctx context.Context, raw []byte) (any, error) {
	var ev DeleteEvent
	if err := decodeStrict(raw, &ev); err != nil {
		return nil, err
	}
	if err := validateDataSource(ev.AccessID, ev.DataSourceName); err != nil {
		return nil, err
	}
	switch {
	case ev.Confirm == "":
		return nil, invalid("field \"confirm\" is required and must repeat dataSourceName exactly")
	case ev.Confirm != ev.DataSourceName:
		return nil, invalid("field \"confirm\" (%q) does not match dataSourceName (%q); nothing was deleted", truncate(ev.Confirm, 60), ev.DataSourceName)
	}
	if err := validateSecretID(ev.MasterKeySecretID); err != nil {
		return nil, err
	}
	if ev.Scratch && !drill.IsScratch(ev.DataSourceName) {
		return nil, invalid("scratch: %s is not a restore drill's scratch data source (%s...); nothing was deleted", ev.DataSourceName, drill.ScratchPrefix)
	}
	ds := sds.DataSource{AccessID: ev.AccessID, Name: ev.DataSourceName}
	err := s.withSDS(ctx, ev.MasterKeySecretID, func(c *sds.Client) error {
		return c.DeleteDataSource(ctx, ds, ev.IsStaging)
	})
	if errors.Is(err, sds.ErrNotFound) && ev.RetryCount > 0 {
		// The attempt before this one was cut off after sending its DELETE.
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return State{
		AccessID:          ev.AccessID,
		DataSourceName:    ev.DataSourceName,
		Operation:         OpDelete,
		MasterKeySecretID: ev.MasterKeySecretID,
		Status:            StatusAccepted,
		IsStaging:         ev.IsStaging,
		RequestedAt:       formatTime(s.now()),
		NextWaitSeconds:   s.nextWait(0),
	}, nil
}

// checkDelete: a deleted data source answers 404 (its staged version no
// longer shows among its versions); an aborted DataSourceDelete job in the
// job list ends the wait with Aborted.
func (s *Service) checkDelete(ctx context.Context, st *State) error {
	requested, err := parseStateTime("requestedAt", st.RequestedAt)
	if err != nil {
		return err
	}
	return s.withSDS(ctx, st.MasterKeySecretID, func(c *sds.Client) error {
		infos, err := c.DataSourceInfo(ctx, st.dataSource(), st.IsStaging)
		if errors.Is(err, sds.ErrNotFound) {
			st.Status = StatusCompleted
			return nil
		}
		if err != nil {
			return err
		}
		if st.IsStaging && !hasStaging(infos) {
			st.Status = StatusCompleted
			return nil
		}
		jobs, err := c.ListJobs(ctx)
		if err != nil {
			return err
		}
		st.Status = StatusPending
		if j := findJob(jobs, "", "DataSourceDelete", st.DataSourceName, requested); j != nil && j.Status == sds.StatusAborted {
			st.Status = StatusAborted
			st.ErrorMessage = jobMessage(j)
		}
		return nil
	})
}

func hasStaging(infos []sds.DataSourceInfo) bool {
	for _, i := range infos {
		if i.IsStaging {
			return true
		}
	}
	return false
}
