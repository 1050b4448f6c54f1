package task

import (
	"context"
	"strings"
	"time"

	"github.com/sdsops/sdsops/internal/sds"
)

// CheckStatus reads the status of the job a chained state describes.
func (s *Service) CheckStatus(ctx context.Context, raw []byte) (any, error) {
	st, err := decodeChainedState(raw)
	if err != nil {
		return nil, err
	}
	switch st.Operation {
	case OpDownload:
		err = s.checkDownload(ctx, &st.State)
	case OpDelete:
		err = s.checkDelete(ctx, &st.State)
	case OpSetPublic:
		err = s.checkSetPublic(ctx, &st.State)
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
		st.NextWaitSeconds = s.nextWait(st.PollCount)
		since, err := st.pendingSince()
		if err != nil {
			return nil, err
		}
		st.DeadlinePassed = s.now().Sub(since) > s.cfg.JobDeadline
	}
	return st.output(nil)
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

// pendingSince is when the job a state describes was asked for.
func (s *State) pendingSince() (time.Time, error) {
	if s.Operation == OpDownload {
		return parseStateTime("startedAt", s.StartedAt)
	}
	return parseStateTime("requestedAt", s.RequestedAt)
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

// jobMessage is why a listed job was aborted.
func jobMessage(j *sds.Job) string {
	if j.ErrorMessage != "" {
		return j.ErrorMessage
	}
	return "job " + j.ID + " (" + j.Description + ") was aborted by the service"
}
